import { attentionKernelsFor, f32View, inMemory, scratch, simdAvailable } from "../wasm/runtime.ts";

/*
 * Attention's products on the WebAssembly SIMD kernels, when the KV cache lives in the
 * WebAssembly memory (the model allocates it there when the SIMD kernels run its matmuls) and
 * the head width is a multiple of 4. The small operand (queries, or attention weights) and the
 * result pass through scratch blocks; the cache is read where it is.
 */

function usable(cache: Float32Array, d: number, heads: number): boolean {
  return simdAvailable && inMemory(cache) && (d / heads) % 4 === 0;
}

/** scores [H, tq, past+tq] of q [tq, d] against the cached keys; false when the SIMD path does not apply. */
export function simdScores(q: Float32Array, keys: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): boolean {
  if (!usable(keys, d, heads)) return false;
  const qAt = scratch("attention q", 4 * q.length);
  const outAt = scratch("attention out", 4 * out.length);
  f32View(qAt, q.length).set(q);
  if (tq > 1) f32View(outAt, out.length).fill(0); // the masked scores stay 0, as in the TypeScript op
  attentionKernelsFor(d, heads).scores(qAt, keys.byteOffset, outAt, tq, past);
  out.set(f32View(outAt, out.length));
  return true;
}

/** out [tq, d] = attention weights [H, tq, past+tq] × the cached values; false when the SIMD path does not apply. */
export function simdValues(p: Float32Array, values: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): boolean {
  if (!usable(values, d, heads)) return false;
  const pAt = scratch("attention p", 4 * p.length);
  const outAt = scratch("attention out", 4 * out.length);
  f32View(pAt, p.length).set(p);
  attentionKernelsFor(d, heads).values(pAt, values.byteOffset, outAt, tq, past);
  out.set(f32View(outAt, out.length));
  return true;
}
