import { type FunctionDef, I32, V128, op } from "./emitter.ts";
import { KERNEL_PARAMS } from "./kernels.ts";
import { Q8_RECORD, Q8_SCALES } from "../kernels/q8.ts";

/*
 * Matmul kernels for q8 weights (src/kernels/q8.ts), specialised for one K, with the shared
 * signature (a, b, out, m, ldo, j0, j1) of the float kernels:
 *
 *   a    activations quantized per row: [m, kp] bytes of q, then [m, kp/32] float scales, then
 *        [m, kp/32] i32 block sums Σ q
 *   b    weights: per panel of 8 columns, kp/32 block records (src/kernels/q8.ts): 8 steps × 32
 *        bytes of q + 128, 8 float16 scales — one stream
 *   out  [m, ldo] floats
 *
 * Per block of 32 k the products Σ q_w·q_a accumulate exactly in i32, become float and are
 * scaled by both scales. Two ways to the integer sums, the same integers either way:
 *
 *   relaxed  i32x4.relaxed_dot_i8x16_i7x16_add_s: 16 multiply-accumulates in one instruction,
 *            activations the signed operand and the stored weights the other, which x86 reads
 *            as q_w + 128 and Arm as q_w − 128 (`weights` says which: the runtime checks): the
 *            block's 128·Σ q_a, one number per row, comes back out
 *   i16      i32x4.dot_i16x8_s (plain SIMD): weights' top bit flipped back, both widened to
 *            i16, 8 per instruction; pairs of k land in neighbouring lanes, added once per block
 *
 * A float16 scale becomes float32 exactly: its bits shifted up 13 are a float32 2^112 too small
 * (subnormal halves included), so one multiply restores it.
 *
 *   matvec_q8  decode: one row at a time, two phases of accumulators (latency hidden)
 *   matmul_q8  prefill: 4 rows × 8 columns per pass, left-over rows one at a time
 */

/** How the relaxed integer dot product reads a byte with its top bit set. */
export type DotReading = "unsigned" | "signed";

const STEPS = 8; // k-steps of 4 per block of 32

/** `weights`: how the relaxed dot product reads the stored weights; null for the i16 kernels. */
export function q8Kernel(k: number, fn: "matvec" | "matmul", weights: DotReading | null): FunctionDef {
  const relaxed = weights !== null;
  const kp = Math.ceil(k / 32) * 32;
  const blocks = kp / 32;
  const [A, B, OUT, M, LDO, J0, J1] = [0, 1, 2, 3, 4, 5, 6];
  const locals: number[] = [];
  const local = (type: number): number => {
    locals.push(type);
    return KERNEL_PARAMS.length + locals.length - 1;
  };
  const [J, I, BP, AP, ASP, SSP, COUNT, O] = Array.from({ length: 8 }, () => local(I32));
  const [X, W0, W1] = Array.from({ length: 3 }, () => local(V128));
  // per block: the 8 columns' weight scales; relaxed, per row: 128·Σ q_a, to take out
  const SCALE = [local(V128), local(V128)];
  const OFFSET = relaxed ? local(V128) : -1;
  // i16 only: x widened, and w0 low/high, w1 low/high widened
  const XI = relaxed ? -1 : local(V128);
  const WIDE = relaxed ? [] : Array.from({ length: 4 }, () => local(V128));
  const maxRows = fn === "matvec" ? 1 : 4;
  const phases = fn === "matvec" && relaxed ? 2 : 1;
  const perRow = relaxed ? 2 * phases : 4;
  const IACC = Array.from({ length: maxRows }, () => Array.from({ length: perRow }, () => local(V128)));
  const FACC = Array.from({ length: maxRows }, () => [local(V128), local(V128)]);

  const get = op.localGet;
  const set = op.localSet;
  const bump = (l: number, by: number): number[] => [...get(l), ...op.i32Const(by), ...op.i32Add, ...set(l)];

  /** One step of 4 k for `rows` rows: the integer products into IACC. */
  const step = (rows: number, s: number): number[] => {
    const phase = s % phases;
    const out: number[] = [...get(BP), ...op.v128Load(32 * s), ...set(W0), ...get(BP), ...op.v128Load(32 * s + 16), ...set(W1)];
    if (!relaxed) {
      // q_w: the stored byte with its top bit flipped back
      for (const w of [W0, W1]) out.push(...get(w), ...op.v128ConstI32x4(0x80808080), ...op.v128Xor, ...set(w));
      out.push(
        ...get(W0), ...op.i16x8ExtendLowI8x16S, ...set(WIDE[0]), ...get(W0), ...op.i16x8ExtendHighI8x16S, ...set(WIDE[1]),
        ...get(W1), ...op.i16x8ExtendLowI8x16S, ...set(WIDE[2]), ...get(W1), ...op.i16x8ExtendHighI8x16S, ...set(WIDE[3]),
      );
    }
    for (let r = 0; r < rows; r++) {
      out.push(...get(AP), ...op.v128Load32Splat(r * kp + 4 * s), ...set(X));
      if (relaxed) {
        for (const h of [0, 1]) {
          const acc = IACC[r][2 * phase + h];
          out.push(...get(X), ...get(h === 0 ? W0 : W1), ...get(acc), ...op.i32x4RelaxedDotI8x16I7x16AddS, ...set(acc));
        }
      } else {
        // x's 4 bytes twice, widened: [x0 x1 x2 x3 x0 x1 x2 x3] against [c k0..k3, c+1 k0..k3]
        out.push(...get(X), ...op.i16x8ExtendLowI8x16S, ...set(XI));
        for (let q = 0; q < 4; q++) out.push(...get(IACC[r][q]), ...get(WIDE[q]), ...get(XI), ...op.i32x4DotI16x8S, ...op.i32x4Add, ...set(IACC[r][q]));
      }
    }
    return out;
  };

  /** Columns 4h..4h+3 of row r's block sum, as i32x4 on the stack. */
  const blockSum = (r: number, h: number): number[] => {
    if (relaxed) return phases === 1 ? get(IACC[r][h]) : [...get(IACC[r][h]), ...get(IACC[r][2 + h]), ...op.i32x4Add];
    // lanes (c, k0+k1), (c, k2+k3), (c+1, …), (c+1, …) of two accumulators: even lanes plus odd lanes
    const [lo, hi] = [IACC[r][2 * h], IACC[r][2 * h + 1]];
    const pick = (first: number) => [0, 2, 4, 6].flatMap((lane) => [0, 1, 2, 3].map((b) => 4 * (lane + first) + b));
    return [...get(lo), ...get(hi), ...op.i8x16Shuffle(pick(0)), ...get(lo), ...get(hi), ...op.i8x16Shuffle(pick(1)), ...op.i32x4Add];
  };

  /** Rows i … i+rows−1 of the panel at column j. */
  const pass = (rows: number): number[] => {
    const body: number[] = [
      // bp = b + (j/8)·blocks·record: the panel's first block record
      ...get(B), ...get(J), ...op.i32Const((blocks * Q8_RECORD) / 8), ...op.i32Mul, ...op.i32Add, ...set(BP),
      // ap = a + i·kp; asp = a + m·kp + i·blocks·4
      ...get(A), ...get(I), ...op.i32Const(kp), ...op.i32Mul, ...op.i32Add, ...set(AP),
      ...get(A), ...get(M), ...op.i32Const(kp), ...op.i32Mul, ...op.i32Add, ...get(I), ...op.i32Const(4 * blocks), ...op.i32Mul, ...op.i32Add, ...set(ASP),
      // ssp = asp + m·blocks·4: the rows' block sums follow their scales (only relaxed kernels read them)
      ...(relaxed ? [...get(ASP), ...get(M), ...op.i32Const(4 * blocks), ...op.i32Mul, ...op.i32Add, ...set(SSP)] : []),
      ...FACC.slice(0, rows).flat().flatMap((acc) => [...op.v128Zero, ...set(acc)]),
      ...op.i32Const(blocks), ...set(COUNT),
      ...op.loop,
      ...IACC.slice(0, rows).flat().flatMap((acc) => [...op.v128Zero, ...set(acc)]),
    ];
    for (let s = 0; s < STEPS; s++) body.push(...step(rows, s));
    for (const h of [0, 1]) {
      body.push(...get(BP), ...op.v128Load16x4U(Q8_SCALES + 8 * h), ...op.i32Const(13), ...op.i32x4Shl, ...op.f32x4Const(2 ** 112), ...op.f32x4Mul, ...set(SCALE[h]));
    }
    for (let r = 0; r < rows; r++) {
      // the row's 128·Σ q_a for this block
      if (relaxed) body.push(...get(SSP), ...op.v128Load32Splat(4 * blocks * r), ...op.i32Const(7), ...op.i32x4Shl, ...set(OFFSET));
      for (const h of [0, 1]) {
        body.push(
          ...get(FACC[r][h]),
          ...blockSum(r, h), ...(relaxed ? [...get(OFFSET), ...(weights === "unsigned" ? op.i32x4Sub : op.i32x4Add)] : []), ...op.f32x4ConvertI32x4S,
          ...get(SCALE[h]), ...op.f32x4Mul,
          ...get(ASP), ...op.v128Load32Splat(4 * blocks * r), ...op.f32x4Mul,
          ...op.f32x4Add, ...set(FACC[r][h]),
        );
      }
    }
    body.push(
      ...bump(BP, Q8_RECORD), ...bump(AP, 32), ...bump(ASP, 4), ...(relaxed ? bump(SSP, 4) : []),
      ...get(COUNT), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(COUNT), ...op.brIf(0), ...op.end,
      // o = out + (i·ldo + j)·4; each row's 8 sums, ldo floats apart
      ...get(OUT), ...get(I), ...get(LDO), ...op.i32Mul, ...get(J), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(O),
    );
    for (let r = 0; r < rows; r++) {
      body.push(...get(O), ...get(FACC[r][0]), ...op.v128Store(0), ...get(O), ...get(FACC[r][1]), ...op.v128Store(16));
      body.push(...get(O), ...get(LDO), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(O));
    }
    return body;
  };

  /** Row groups of `rows` while they fit, starting at i. */
  const rowLoop = (rows: number): number[] => [
    ...op.block, ...op.loop,
    ...get(I), ...op.i32Const(rows), ...op.i32Add, ...get(M), ...op.i32GtU, ...op.brIf(1),
    ...pass(rows),
    ...bump(I, rows), ...op.br(0),
    ...op.end, ...op.end,
  ];
  const body: number[] = [
    ...get(J0), ...set(J),
    ...op.block, ...op.loop,
    ...get(J), ...get(J1), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...set(I),
    ...(maxRows > 1 ? rowLoop(maxRows) : []),
    ...rowLoop(1),
    ...bump(J, 8), ...op.br(0),
    ...op.end, ...op.end,
  ];
  return { name: `${fn}_q8`, params: KERNEL_PARAMS, results: [], locals, body };
}
