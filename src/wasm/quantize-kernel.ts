import { type FunctionDef, I32, V128, op } from "./emitter.ts";
import { ACTIVATION_LEVELS, Q8_BLOCK } from "../kernels/q8.ts";

/*
 * Activations to q8 (src/kernels/q8.ts) on f32x4 lanes, for rows whose length is a multiple of
 * 32: per block, scale = max|x| / 63, q = nearest(x / scale) and Σ q — float32 division and
 * round-half-to-even, so the bytes equal quantizeActivations' exactly (a zero block divides 0 by
 * 0, and the NaN saturates to 0).
 *
 *   quantize(src, bytes, scales, sums, blocks)   src floats; bytes, scales and sums in the kernels' layout
 */

export function quantizeKernel(): FunctionDef {
  const [SRC, BYTES, SCALES, SUMS, COUNT, MAX, SCALE] = [0, 1, 2, 3, 4, 5, 6];
  const V = [7, 8, 9, 10, 11, 12, 13, 14];
  const TOTAL = 15;
  const get = op.localGet;
  /** Pairs of i32x4 → i16x8, pairs of those → i8x16: 16 bytes from V[first..first+4). */
  const narrow = (first: number) => [
    ...get(V[first]), ...get(V[first + 1]), ...op.i16x8NarrowI32x4S,
    ...get(V[first + 2]), ...get(V[first + 3]), ...op.i16x8NarrowI32x4S,
    ...op.i8x16NarrowI16x8S,
  ];
  const body = [
    ...op.block, ...op.loop,
    ...get(COUNT), ...op.i32Eqz, ...op.brIf(1),
    ...V.flatMap((v, i) => [...get(SRC), ...op.v128Load(16 * i), ...op.localSet(v)]),
    // the block's largest magnitude, then one lane at a time
    ...get(V[0]), ...op.f32x4Abs, ...V.slice(1).flatMap((v) => [...get(v), ...op.f32x4Abs, ...op.f32x4Max]), ...op.localSet(MAX),
    ...get(MAX), ...op.f32x4ExtractLane(0), ...[1, 2, 3].flatMap((l) => [...get(MAX), ...op.f32x4ExtractLane(l), ...op.f32Max]),
    ...op.f32Const(ACTIVATION_LEVELS), ...op.f32Div, ...op.f32x4Splat, ...op.localSet(SCALE),
    ...get(SCALES), ...get(SCALE), ...op.f32x4ExtractLane(0), ...op.f32Store(0),
    ...V.flatMap((v) => [...get(v), ...get(SCALE), ...op.f32x4Div, ...op.f32x4Nearest, ...op.i32x4TruncSatF32x4S, ...op.localSet(v)]),
    ...get(BYTES), ...narrow(0), ...op.v128Store(0),
    ...get(BYTES), ...narrow(4), ...op.v128Store(16),
    // Σ q: the eight vectors lane by lane, then the four lanes
    ...get(V[0]), ...V.slice(1).flatMap((v) => [...get(v), ...op.i32x4Add]), ...op.localSet(TOTAL),
    ...get(SUMS), ...get(TOTAL), ...op.i32x4ExtractLane(0), ...[1, 2, 3].flatMap((l) => [...get(TOTAL), ...op.i32x4ExtractLane(l), ...op.i32Add]), ...op.i32Store(0),
    ...get(SRC), ...op.i32Const(4 * Q8_BLOCK), ...op.i32Add, ...op.localSet(SRC),
    ...get(BYTES), ...op.i32Const(Q8_BLOCK), ...op.i32Add, ...op.localSet(BYTES),
    ...get(SCALES), ...op.i32Const(4), ...op.i32Add, ...op.localSet(SCALES),
    ...get(SUMS), ...op.i32Const(4), ...op.i32Add, ...op.localSet(SUMS),
    ...get(COUNT), ...op.i32Const(1), ...op.i32Sub, ...op.localSet(COUNT),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "quantize", params: [I32, I32, I32, I32, I32], results: [], locals: [V128, V128, ...V.map(() => V128), V128], body };
}
