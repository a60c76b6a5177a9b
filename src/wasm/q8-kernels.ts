import { type FunctionDef, I32, V128, op } from "./emitter.ts";
import { KERNEL_PARAMS, columnSchedule } from "./kernels.ts";
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
 *            as q_w + 128 and Arm as q_w − 128 (`reading` says which: the runtime checks): the
 *            block's 128·Σ q_a, one number per row, comes back out. Or its `pairs` form: the
 *            i16x8.relaxed_dot_i8x16_i7x16_s of the same operands (a pair of products fits i16:
 *            activations are ±63), widened by i32x4.dot_i16x8_s against a vector of ones and
 *            added — three instructions for 16, what V8 makes of the one instruction on x86
 *            without AVX-VNNI (and faster written out there), and right where a runtime has the
 *            one wrong (Node 20). The widening is i32x4.extadd_pairwise_i16x8_s's sum, which V8
 *            makes a vpmaddwd against ones in memory, their address built each time; ones held
 *            in a local make it a vpmaddwd on a register
 *   i16      i32x4.dot_i16x8_s (plain SIMD): weights' top bit flipped back, both widened to
 *            i16, 8 per instruction; pairs of k land in neighbouring lanes, added once per block
 *
 * A float16 scale becomes float32 exactly: its bits shifted up 13 are a float32 2^112 too small
 * (subnormal halves included), so one multiply restores it.
 *
 * From 4 rows on, panel after panel, rows 4 at a time × 8 columns, then the rows left over;
 * below 4 (decode's one) each row against four panels (one in the i16 form) whose weights
 * stream side by side, as the float kernel does.
 */

/** How the relaxed integer dot product reads a byte with its top bit set. */
export type DotReading = "unsigned" | "signed";

/** A relaxed integer dot product that computes right here: its reading, and which form (above). */
export interface RelaxedDot {
  reading: DotReading;
  form: "add" | "pairs";
}

const STEPS = 8; // k-steps of 4 per block of 32
/** Bytes of one step's q_w per panel: 4 k × 8 columns. */
const STEP_BYTES = 32;

/** `dot`: the relaxed dot product this runtime computes right; null for the i16 kernels. */
export function q8Kernel(k: number, dot: RelaxedDot | null): FunctionDef {
  const relaxed = dot !== null;
  const kp = Math.ceil(k / 32) * 32;
  const blocks = kp / 32;
  const [A, B, OUT, M, LDO, J0, J1] = [0, 1, 2, 3, 4, 5, 6];
  const locals: number[] = [];
  const local = (type: number): number => {
    locals.push(type);
    return KERNEL_PARAMS.length + locals.length - 1;
  };
  const [J, I, BP, AP, ASP, SSP, COUNT, STEP, O, Q, G] = Array.from({ length: 11 }, () => local(I32));
  // decode's streams of weights (see pass): four, or one for the i16 form, whose four
  // accumulators per panel do not fit the registers more than once (Node 20, GPT-2 small, one
  // thread: 120–124 tokens/s on one stream, 83–86 on two, 64 on four)
  const STREAMS = relaxed ? 4 : 1;
  const STREAM_BP = [BP, ...Array.from({ length: STREAMS - 1 }, () => local(I32))];
  const [X, W0, W1] = Array.from({ length: 3 }, () => local(V128));
  // per block: the 8 columns' weight scales; relaxed, per row: 128·Σ q_a, to take out
  const SCALE = [local(V128), local(V128)];
  const OFFSET = relaxed ? local(V128) : -1;
  // pairs: i16 lanes of 1, set before the loops (a v128.const in the loop is rebuilt where it stands)
  const ONES = dot?.form === "pairs" ? local(V128) : -1;
  // i16 only: x widened, and w0 low/high, w1 low/high widened
  const XI = relaxed ? -1 : local(V128);
  const WIDE = relaxed ? [] : Array.from({ length: 4 }, () => local(V128));
  const IACC = Array.from({ length: 4 }, () => Array.from({ length: relaxed ? 2 : 4 }, () => local(V128)));
  const FACC = Array.from({ length: 4 }, () => [local(V128), local(V128)]);

  const get = op.localGet;
  const set = op.localSet;
  const bump = (l: number, by: number): number[] => [...get(l), ...op.i32Const(by), ...op.i32Add, ...set(l)];

  /** The step's weights at `bp` into W0 and W1 (for i16: q_w, widened into WIDE). */
  const loadWeights = (bp: number): number[] => {
    const out: number[] = [...get(bp), ...op.v128Load(0), ...set(W0), ...get(bp), ...op.v128Load(16), ...set(W1)];
    if (relaxed) return out;
    // q_w: the stored byte with its top bit flipped back
    for (const w of [W0, W1]) out.push(...get(w), ...op.v128ConstI32x4(0x80808080), ...op.v128Xor, ...set(w));
    out.push(
      ...get(W0), ...op.i16x8ExtendLowI8x16S, ...set(WIDE[0]), ...get(W0), ...op.i16x8ExtendHighI8x16S, ...set(WIDE[1]),
      ...get(W1), ...op.i16x8ExtendLowI8x16S, ...set(WIDE[2]), ...get(W1), ...op.i16x8ExtendHighI8x16S, ...set(WIDE[3]),
    );
    return out;
  };
  /** X = 4 activation bytes at AP + `at`, in every lane (for i16 also widened into XI). */
  const loadX = (at: number): number[] => [...get(AP), ...op.v128Load32Splat(at), ...set(X), ...(relaxed ? [] : [...get(X), ...op.i16x8ExtendLowI8x16S, ...set(XI)])];
  /** The integer products of X and the loaded weights into one slot's accumulators. */
  const dots = (slot: number): number[] => {
    if (dot?.form === "add") return [0, 1].flatMap((h) => [...get(X), ...get(h === 0 ? W0 : W1), ...get(IACC[slot][h]), ...op.i32x4RelaxedDotI8x16I7x16AddS, ...set(IACC[slot][h])]);
    if (dot?.form === "pairs") return [0, 1].flatMap((h) => [...get(IACC[slot][h]), ...get(X), ...get(h === 0 ? W0 : W1), ...op.i16x8RelaxedDotI8x16I7x16S, ...get(ONES), ...op.i32x4DotI16x8S, ...op.i32x4Add, ...set(IACC[slot][h])]);
    // x's 4 bytes twice, widened: [x0 x1 x2 x3 x0 x1 x2 x3] against [c k0..k3, c+1 k0..k3]
    return [0, 1, 2, 3].flatMap((q) => [...get(IACC[slot][q]), ...get(WIDE[q]), ...get(XI), ...op.i32x4DotI16x8S, ...op.i32x4Add, ...set(IACC[slot][q])]);
  };
  /** One step of 4 k for `rows` rows of one panel: the integer products into IACC. */
  const step = (rows: number): number[] => [
    ...loadWeights(BP),
    ...Array.from({ length: rows }, (_, r) => [...loadX(r * kp), ...dots(r)]).flat(),
  ];

  /** Columns 4h..4h+3 of row r's block sum, as i32x4 on the stack. */
  const blockSum = (r: number, h: number): number[] => {
    if (relaxed) return get(IACC[r][h]);
    // lanes (c, k0+k1), (c, k2+k3), (c+1, …), (c+1, …) of two accumulators: even lanes plus odd lanes
    const [lo, hi] = [IACC[r][2 * h], IACC[r][2 * h + 1]];
    const pick = (first: number) => [0, 2, 4, 6].flatMap((lane) => [0, 1, 2, 3].map((b) => 4 * (lane + first) + b));
    return [...get(lo), ...get(hi), ...op.i8x16Shuffle(pick(0)), ...get(lo), ...get(hi), ...op.i8x16Shuffle(pick(1)), ...op.i32x4Add];
  };

  /**
   * Rows i … i+rows−1 of the panel at column j; or (`streams`) row i of STREAMS panels, each q
   * panels further on than the one before — streams of weights side by side, which one core
   * reads about a third faster than one. Every panel's sums are the same either way.
   */
  const pass = (slots: number, streams: boolean): number[] => {
    const panels = streams ? STREAM_BP : [BP];
    const body: number[] = [
      // bp = b + (j/8)·blocks·record: the panel's first block record
      ...get(B), ...get(J), ...op.i32Const((blocks * Q8_RECORD) / 8), ...op.i32Mul, ...op.i32Add, ...set(BP),
      ...panels.slice(1).flatMap((bp, s) => [...get(panels[s]), ...get(Q), ...op.i32Const(blocks * Q8_RECORD), ...op.i32Mul, ...op.i32Add, ...set(bp)]),
      // ap = a + i·kp; asp = a + m·kp + i·blocks·4
      ...get(A), ...get(I), ...op.i32Const(kp), ...op.i32Mul, ...op.i32Add, ...set(AP),
      ...get(A), ...get(M), ...op.i32Const(kp), ...op.i32Mul, ...op.i32Add, ...get(I), ...op.i32Const(4 * blocks), ...op.i32Mul, ...op.i32Add, ...set(ASP),
      // ssp = asp + m·blocks·4: the rows' block sums follow their scales (only relaxed kernels read them)
      ...(relaxed ? [...get(ASP), ...get(M), ...op.i32Const(4 * blocks), ...op.i32Mul, ...op.i32Add, ...set(SSP)] : []),
      ...FACC.slice(0, slots).flat().flatMap((acc) => [...op.v128Zero, ...set(acc)]),
      ...op.i32Const(blocks), ...set(COUNT),
      ...op.loop,
      ...IACC.slice(0, slots).flat().flatMap((acc) => [...op.v128Zero, ...set(acc)]),
    ];
    // The block's steps, a loop of them, not unrolled: Node 20's V8 hoisted the loads of 8
    // unrolled steps to the top and spilled them (q8 products ran at half the speed); Node 24's
    // runs the loop as fast. It leaves the weights at the block's scales and the activations at
    // the next block.
    body.push(...op.i32Const(STEPS), ...set(STEP), ...op.loop);
    body.push(...(streams ? [...loadX(0), ...panels.flatMap((bp, p) => [...loadWeights(bp), ...dots(p)])] : step(slots)));
    body.push(
      ...panels.flatMap((bp) => bump(bp, STEP_BYTES)), ...bump(AP, 4),
      ...get(STEP), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(STEP), ...op.brIf(0), ...op.end,
    );
    for (let slot = 0; slot < slots; slot++) {
      const r = streams ? 0 : slot;
      // the panel's 8 weight scales for this block
      if (streams || slot === 0) {
        for (const h of [0, 1]) {
          body.push(...get(panels[streams ? slot : 0]), ...op.v128Load16x4U(Q8_SCALES - STEPS * STEP_BYTES + 8 * h), ...op.i32Const(13), ...op.i32x4Shl, ...op.f32x4Const(2 ** 112), ...op.f32x4Mul, ...set(SCALE[h]));
        }
      }
      // the row's 128·Σ q_a for this block
      if (relaxed && (!streams || slot === 0)) body.push(...get(SSP), ...op.v128Load32Splat(4 * blocks * r), ...op.i32Const(7), ...op.i32x4Shl, ...set(OFFSET));
      for (const h of [0, 1]) {
        body.push(
          ...get(FACC[slot][h]),
          ...blockSum(slot, h), ...(relaxed ? [...get(OFFSET), ...(dot.reading === "unsigned" ? op.i32x4Sub : op.i32x4Add)] : []), ...op.f32x4ConvertI32x4S,
          ...get(SCALE[h]), ...op.f32x4Mul,
          ...get(ASP), ...op.v128Load32Splat(4 * blocks * r), ...op.f32x4Mul,
          ...op.f32x4Add, ...set(FACC[slot][h]),
        );
      }
    }
    body.push(
      ...panels.flatMap((bp) => bump(bp, Q8_RECORD - STEPS * STEP_BYTES)), ...bump(ASP, 4), ...(relaxed ? bump(SSP, 4) : []),
      ...get(COUNT), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(COUNT), ...op.brIf(0), ...op.end,
      // o = out + (i·ldo + j)·4; each row's 8 sums ldo floats apart, or each stream's q panels on
      ...get(OUT), ...get(I), ...get(LDO), ...op.i32Mul, ...get(J), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(O),
    );
    for (let slot = 0; slot < slots; slot++) {
      body.push(...get(O), ...get(FACC[slot][0]), ...op.v128Store(0), ...get(O), ...get(FACC[slot][1]), ...op.v128Store(16));
      body.push(...get(O), ...(streams ? [...get(Q), ...op.i32Const(4 * 8), ...op.i32Mul] : [...get(LDO), ...op.i32Const(2), ...op.i32Shl]), ...op.i32Add, ...set(O));
    }
    return body;
  };

  /** `while (i + rows ≤ m) { pass; i += rows }` */
  const rowLoop = (rows: number, body: number[]): number[] => [
    ...op.block, ...op.loop,
    ...get(I), ...op.i32Const(rows), ...op.i32Add, ...get(M), ...op.i32GtU, ...op.brIf(1),
    ...body,
    ...bump(I, rows), ...op.br(0),
    ...op.end, ...op.end,
  ];
  const body = [
    ...(ONES >= 0 ? [...op.v128ConstI32x4(0x00010001), ...set(ONES)] : []),
    ...columnSchedule({ m: M, j0: J0, j1: J1, j: J, i: I, q: Q, g: G }, STREAMS, {
      fours: rowLoop(4, pass(4, false)),
      ones: rowLoop(1, pass(1, false)),
      streamed: rowLoop(1, pass(STREAMS, true)),
    }),
  ];
  return { name: "matmul_q8", params: KERNEL_PARAMS, results: [], locals, body };
}
