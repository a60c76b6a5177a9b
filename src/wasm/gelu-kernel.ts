import { type FunctionDef, I32, V128, op } from "./emitter.ts";

/*
 * GELU (tanh form) on f32x4 lanes. WebAssembly has no exp or tanh, so
 *   0.5·x·(1 + tanh(u)) = x · (e / (e + 1)),  e = e^{2u},  u = √(2/π)·(x + 0.044715·x³)
 * (a form with no cancellation — for large negative x it is a product of small factors, not a
 * difference — and no overflow, since e / (e + 1) ≤ 1),
 * with e^t = 2^n · e^r, n = round(t / ln 2), r = t − n·ln 2 (|r| ≤ ln2/2), e^r by its Taylor
 * polynomial to r⁸/8! (relative error below 1e-8, under float32's rounding), and 2^n built from
 * its exponent bits. t is clamped to ±80, where the result is x to float32 precision; below −80
 * e is set to 0, so that even x = −3e38 gives 0.
 *
 *   gelu(in, out, n)   n a multiple of 4
 */

const LOG2E = Math.LOG2E;
const LN2_HI = 0.693145751953125; // ln 2 split so that n·LN2_HI is exact in float32
const LN2_LO = 1.428606765330187e-6;

export function geluKernel(): FunctionDef {
  // params: in, out, n · locals: end, x, t, k (n as float), e, keep (lanes with t ≥ −80)
  const [IN, OUT, N, END, X, T, K, E, KEEP] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const vec = (local: number) => op.localGet(local);
  const body = [
    ...op.localGet(IN), ...op.localGet(N), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(END),
    ...op.block, ...op.loop,
    ...op.localGet(IN), ...op.localGet(END), ...op.i32GeU, ...op.brIf(1),
    ...op.localGet(IN), ...op.v128Load(0), ...op.localSet(X),
    // t = clamp(2·√(2/π)·(x + 0.044715·x³), ±80)
    ...vec(X), ...vec(X), ...op.f32x4Mul, ...vec(X), ...op.f32x4Mul, ...op.f32x4Const(0.044715), ...op.f32x4Mul, ...vec(X), ...op.f32x4Add,
    ...op.f32x4Const(2 * Math.sqrt(2 / Math.PI)), ...op.f32x4Mul, ...op.localSet(T),
    ...vec(T), ...op.f32x4Const(-80), ...op.f32x4Ge, ...op.localSet(KEEP),
    ...vec(T), ...op.f32x4Const(80), ...op.f32x4Min, ...op.f32x4Const(-80), ...op.f32x4Max, ...op.localSet(T),
    // k = round(t·log2 e); r = t − k·ln 2 (in T)
    ...vec(T), ...op.f32x4Const(LOG2E), ...op.f32x4Mul, ...op.f32x4Nearest, ...op.localSet(K),
    ...vec(T), ...vec(K), ...op.f32x4Const(LN2_HI), ...op.f32x4Mul, ...op.f32x4Sub, ...vec(K), ...op.f32x4Const(LN2_LO), ...op.f32x4Mul, ...op.f32x4Sub, ...op.localSet(T),
    // e = Σ r^i / i!, i ≤ 8, by Horner
    ...op.f32x4Const(1 / 40320), ...op.localSet(E),
    ...[1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1].flatMap((c) => [...vec(E), ...vec(T), ...op.f32x4Mul, ...op.f32x4Const(c), ...op.f32x4Add, ...op.localSet(E)]),
    // e ·= 2^k: (k + 127) << 23 are the bits of 2^k
    ...vec(E), ...vec(K), ...op.i32x4TruncSatF32x4S, ...op.i32Const(127), ...op.i32x4Splat, ...op.i32x4Add, ...op.i32Const(23), ...op.i32x4Shl, ...op.f32x4Mul,
    ...vec(KEEP), ...op.v128And, ...op.localSet(E),
    // out = x · (e / (e + 1))
    ...op.localGet(OUT), ...vec(X), ...vec(E), ...vec(E), ...op.f32x4Const(1), ...op.f32x4Add, ...op.f32x4Div, ...op.f32x4Mul, ...op.v128Store(0),
    ...op.localGet(IN), ...op.i32Const(16), ...op.i32Add, ...op.localSet(IN),
    ...op.localGet(OUT), ...op.i32Const(16), ...op.i32Add, ...op.localSet(OUT),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "gelu", params: [I32, I32, I32], results: [], locals: [I32, V128, V128, V128, V128, V128], body };
}
