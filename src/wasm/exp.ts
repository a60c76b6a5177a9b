import { op } from "./emitter.ts";

/*
 * e^t on f32x4 lanes, for the kernels that need it (WebAssembly has no exp): e^t = 2^k · e^r with
 * k = round(t / ln 2), r = t − k·ln 2 (|r| ≤ ln2/2), e^r by its Taylor polynomial to r⁸/8!
 * (relative error below 1e-8, under float32's rounding), and 2^k built from its exponent bits.
 * t is clamped to ±80; below −80 the result is 0 (e^−80 is 1.8e-35: nothing a sum of such
 * terms, or GELU's x·e/(e+1), can tell from 0).
 */

const LN2_HI = 0.693145751953125; // ln 2 split so that k·LN2_HI is exact in float32
const LN2_LO = 1.428606765330187e-6;

/** Bytes that set local `e` to e^t for the v128 local `t` (overwritten), using locals `k` and `keep`. */
export function exp(t: number, k: number, e: number, keep: number): number[] {
  const vec = op.localGet;
  return [
    ...vec(t), ...op.f32x4Const(-80), ...op.f32x4Ge, ...op.localSet(keep),
    ...vec(t), ...op.f32x4Const(80), ...op.f32x4Min, ...op.f32x4Const(-80), ...op.f32x4Max, ...op.localSet(t),
    // k = round(t·log2 e); r = t − k·ln 2 (in t)
    ...vec(t), ...op.f32x4Const(Math.LOG2E), ...op.f32x4Mul, ...op.f32x4Nearest, ...op.localSet(k),
    ...vec(t), ...vec(k), ...op.f32x4Const(LN2_HI), ...op.f32x4Mul, ...op.f32x4Sub, ...vec(k), ...op.f32x4Const(LN2_LO), ...op.f32x4Mul, ...op.f32x4Sub, ...op.localSet(t),
    // e = Σ r^i / i!, i ≤ 8, by Horner
    ...op.f32x4Const(1 / 40320), ...op.localSet(e),
    ...[1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1].flatMap((c) => [...vec(e), ...vec(t), ...op.f32x4Mul, ...op.f32x4Const(c), ...op.f32x4Add, ...op.localSet(e)]),
    // e ·= 2^k: (k + 127) << 23 are the bits of 2^k
    ...vec(e), ...vec(k), ...op.i32x4TruncSatF32x4S, ...op.i32Const(127), ...op.i32x4Splat, ...op.i32x4Add, ...op.i32Const(23), ...op.i32x4Shl, ...op.f32x4Mul,
    ...vec(keep), ...op.v128And, ...op.localSet(e),
  ];
}
