import { type FunctionDef, I32, V128, op } from "./emitter.ts";
import { Q8_BLOCK, Q8_SCALES, WEIGHT_LEVELS } from "../kernels/q8.ts";

/*
 * Weights to q8 block records (src/kernels/q8.ts) on f32x4 lanes, a band of 32 rows of a
 * row-major [K,N] matrix at a time, 8 columns (one panel) per pass: what PackedMatrix does in
 * TypeScript, byte for byte, without a function call per weight. Per column, scale = max|w| / 127
 * rounded to float16 (ties to even), then q = nearest(w / scale) held to ±127 (0 where the scale
 * rounded to 0), stored with its top bit flipped; 4 rows × 4 columns of bytes turn column-major
 * with one shuffle.
 *
 *   packQ8Band(src, rowFloats, columns, dst, panelStride) → the largest float16 scale's bits
 *
 * src: 32 rows, rowFloats apart, of which the first `columns` (a multiple of 8) are packed; dst:
 * panel 0's block record for this band, the next panel's panelStride bytes on. A result of
 * HALF_INFINITY (q8.ts) or more is a scale float16 cannot hold (or a NaN): the caller packs that
 * band again in TypeScript, which says which.
 */

const STEPS = Q8_BLOCK / 4;
/** float16's smallest normal number; the float32 exponent bias less float16's, where a half's exponent sits. */
const HALF_MIN_NORMAL = 2 ** -14;
const REBIAS = (127 - 15) << 10;

export function packQ8Kernel(): FunctionDef {
  const [SRC, ROW_FLOATS, N, DST, STRIDE] = [0, 1, 2, 3, 4];
  const [P, ROW_BYTES] = [5, 6];
  const [MAXBITS, TOP, AMAX0, AMAX1, HALF0, HALF1, SCALE0, SCALE1, NONZERO0, NONZERO1, Q0, Q1, Q2, Q3] = Array.from({ length: 14 }, (_, i) => 7 + i);
  const [AMAX, HALF, SCALE, NONZERO, Q] = [[AMAX0, AMAX1], [HALF0, HALF1], [SCALE0, SCALE1], [NONZERO0, NONZERO1], [Q0, Q1, Q2, Q3]];
  const get = op.localGet;
  const set = op.localSet;
  /** Columns 4h..4h+3 of row r of the panel. */
  const load = (r: number, h: number): number[] => [...get(SRC), ...get(ROW_BYTES), ...op.i32Const(r), ...op.i32Mul, ...op.i32Add, ...op.v128Load(16 * h)];

  /** x ≥ 0 (a local) → its float16 bits, rounded to nearest, ties to even (as floatToHalf). */
  const toHalf = (x: number): number[] => [
    // a subnormal half: x in units of 2^-24, rounded
    ...get(x), ...op.f32x4Const(2 ** 24), ...op.f32x4Mul, ...op.f32x4Nearest, ...op.i32x4TruncSatF32x4S,
    // a normal one: 13 fraction bits dropped after adding 0xfff and the lowest kept bit; the exponent rebiased
    ...get(x), ...op.v128ConstI32x4(0xfff), ...op.i32x4Add,
    ...get(x), ...op.i32Const(13), ...op.i32x4ShrU, ...op.v128ConstI32x4(1), ...op.v128And, ...op.i32x4Add,
    ...op.i32Const(13), ...op.i32x4ShrU, ...op.v128ConstI32x4(REBIAS), ...op.i32x4Sub,
    ...get(x), ...op.f32x4Const(HALF_MIN_NORMAL), ...op.f32x4Lt, ...op.v128Bitselect,
  ];

  const panel: number[] = [...op.v128Zero, ...set(AMAX0), ...op.v128Zero, ...set(AMAX1)];
  for (let r = 0; r < Q8_BLOCK; r++) {
    for (const h of [0, 1]) panel.push(...get(AMAX[h]), ...load(r, h), ...op.f32x4Abs, ...op.f32x4Max, ...set(AMAX[h]));
  }
  for (const h of [0, 1]) {
    panel.push(
      ...get(AMAX[h]), ...op.f32x4Const(WEIGHT_LEVELS), ...op.f32x4Div, ...set(SCALE[h]),
      ...toHalf(SCALE[h]), ...set(HALF[h]),
      ...get(MAXBITS), ...get(HALF[h]), ...op.i32x4MaxS, ...set(MAXBITS),
      // the scale as the kernels read it: the half's bits shifted up 13, times 2^112
      ...get(HALF[h]), ...op.i32Const(13), ...op.i32x4Shl, ...op.f32x4Const(2 ** 112), ...op.f32x4Mul, ...set(SCALE[h]),
      // a scale of 0 (a block of zeros, or too small for float16) quantizes every weight to 0
      ...get(SCALE[h]), ...op.v128Zero, ...op.f32x4Ne, ...set(NONZERO[h]),
    );
  }
  panel.push(...get(DST), ...get(HALF0), ...get(HALF1), ...op.i16x8NarrowI32x4U, ...op.v128Store(Q8_SCALES));
  for (let s = 0; s < STEPS; s++) {
    for (const h of [0, 1]) {
      for (let r = 0; r < 4; r++) {
        panel.push(
          ...load(4 * s + r, h), ...get(SCALE[h]), ...op.f32x4Div, ...op.f32x4Nearest, ...op.i32x4TruncSatF32x4S,
          ...op.v128ConstI32x4(-WEIGHT_LEVELS), ...op.i32x4MaxS, ...op.v128ConstI32x4(WEIGHT_LEVELS), ...op.i32x4MinS,
          ...get(NONZERO[h]), ...op.v128And, ...set(Q[r]),
        );
      }
      // row r, column c as byte 4r + c; stored as byte 4c + r, top bit flipped
      panel.push(
        ...get(DST),
        ...get(Q0), ...get(Q1), ...op.i16x8NarrowI32x4S, ...get(Q2), ...get(Q3), ...op.i16x8NarrowI32x4S, ...op.i8x16NarrowI16x8S,
        ...op.v128Zero, ...op.i8x16Shuffle([0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15]),
        ...get(TOP), ...op.v128Xor, ...op.v128Store(32 * s + 16 * h),
      );
    }
  }

  /** Byte indices of a shuffle that puts i32 lane lanes[i] in lane i. */
  const swapped = (lanes: number[]) => lanes.flatMap((l) => [4 * l, 4 * l + 1, 4 * l + 2, 4 * l + 3]);
  const body = [
    ...op.v128ConstI32x4(0x80808080), ...set(TOP),
    ...get(ROW_FLOATS), ...op.i32Const(4), ...op.i32Mul, ...set(ROW_BYTES),
    ...op.i32Const(0), ...set(P),
    ...op.block, ...op.loop,
    ...get(P), ...get(N), ...op.i32GeU, ...op.brIf(1),
    ...panel,
    ...get(SRC), ...op.i32Const(32), ...op.i32Add, ...set(SRC),
    ...get(DST), ...get(STRIDE), ...op.i32Add, ...set(DST),
    ...get(P), ...op.i32Const(8), ...op.i32Add, ...set(P),
    ...op.br(0), ...op.end, ...op.end,
    // the largest of the lanes: against the lanes two over, then one over
    ...get(MAXBITS), ...get(MAXBITS), ...op.v128Zero, ...op.i8x16Shuffle(swapped([2, 3, 0, 1])), ...op.i32x4MaxS, ...set(MAXBITS),
    ...get(MAXBITS), ...get(MAXBITS), ...op.v128Zero, ...op.i8x16Shuffle(swapped([1, 0, 3, 2])), ...op.i32x4MaxS,
    ...op.i32x4ExtractLane(0),
  ];
  return { name: "packQ8Band", params: [I32, I32, I32, I32, I32], results: [I32], locals: [I32, I32, ...Array(14).fill(V128)], body };
}
