import { type FunctionDef, I32, V128, op } from "./emitter.ts";
import { exp, hoistedConstants } from "./exp.ts";

/*
 * GELU (tanh form) on f32x4 lanes. WebAssembly has no exp or tanh, so
 *   0.5·x·(1 + tanh(u)) = x · (e / (e + 1)),  e = e^{2u},  u = √(2/π)·(x + 0.044715·x³)
 * (a form with no cancellation — for large negative x it is a product of small factors, not a
 * difference — and no overflow, since e / (e + 1) ≤ 1),
 * with e^t from src/wasm/exp.ts: t is clamped to ±80, where the result is x to
 * float32 precision; below −80 e is 0, so that even x = −3e38 gives 0.
 *
 *   gelu(in, out, n)   n a multiple of 4
 */

export function geluKernel(): FunctionDef {
  // params: in, out, n · locals: end, x, t, k (n as float), e, keep (lanes with t ≥ −80), then the constants
  const [IN, OUT, N, END, X, T, K, E, KEEP] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [CUBIC, SCALE] = [0.044715, 2 * Math.sqrt(2 / Math.PI)];
  const hoisted = hoistedConstants(9, [CUBIC, SCALE]);
  const c = hoisted.constants;
  const vec = (local: number) => op.localGet(local);
  const body = [
    ...hoisted.init,
    ...op.localGet(IN), ...op.localGet(N), ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(END),
    ...op.block, ...op.loop,
    ...op.localGet(IN), ...op.localGet(END), ...op.i32GeU, ...op.brIf(1),
    ...op.localGet(IN), ...op.v128Load(0), ...op.localSet(X),
    // t = clamp(2·√(2/π)·(x + 0.044715·x³), ±80)
    ...vec(X), ...vec(X), ...op.f32x4Mul, ...vec(X), ...op.f32x4Mul, ...c.f32(CUBIC), ...op.f32x4Mul, ...vec(X), ...op.f32x4Add,
    ...c.f32(SCALE), ...op.f32x4Mul, ...op.localSet(T),
    ...exp(T, K, E, KEEP, c),
    // out = x · (e / (e + 1))
    ...op.localGet(OUT), ...vec(X), ...vec(E), ...vec(E), ...c.f32(1), ...op.f32x4Add, ...op.f32x4Div, ...op.f32x4Mul, ...op.v128Store(0),
    ...op.localGet(IN), ...op.i32Const(16), ...op.i32Add, ...op.localSet(IN),
    ...op.localGet(OUT), ...op.i32Const(16), ...op.i32Add, ...op.localSet(OUT),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "gelu", params: [I32, I32, I32], results: [], locals: [I32, V128, V128, V128, V128, V128, ...new Array<number>(hoisted.locals).fill(V128)], body };
}
