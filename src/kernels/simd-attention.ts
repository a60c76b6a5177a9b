import type { WasmHeap } from "../wasm/runtime.ts";

/*
 * Attention's products on the WebAssembly SIMD kernels, when the KV cache lives in the engine's
 * WebAssembly memory (the model allocates it there when the SIMD kernels run its matmuls) and
 * the head width is a multiple of 4. The cache is read where it is; so are the small operand
 * (queries, or attention weights) and the result when they live in that memory too (a forward
 * pass's outputs do), else they pass through scratch blocks.
 */

function usable(heap: WasmHeap | null, cache: Float32Array, d: number, heads: number): heap is WasmHeap {
  return heap !== null && heap.holds(cache) && (d / heads) % 4 === 0;
}

/** scores [H, tq, past+tq] of q [tq, d] against the cached keys; false when the SIMD path does not apply. */
export function simdScores(heap: WasmHeap | null, q: Float32Array, keys: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): boolean {
  if (!usable(heap, keys, d, heads)) return false;
  const qAt = heap.input("attention q", q);
  const outAt = heap.output("attention out", out, tq > 1); // the masked scores stay 0, as in the TypeScript op
  heap.attentionKernelsFor(d, heads).scores(qAt, keys.byteOffset, outAt, tq, past);
  heap.copyOut(outAt, out);
  return true;
}

/** out [tq, d] = attention weights [H, tq, past+tq] × the cached values; false when the SIMD path does not apply. */
export function simdValues(heap: WasmHeap | null, p: Float32Array, values: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): boolean {
  if (!usable(heap, values, d, heads)) return false;
  const pAt = heap.input("attention p", p);
  const outAt = heap.output("attention out", out);
  heap.attentionKernelsFor(d, heads).values(pAt, values.byteOffset, outAt, tq, past);
  heap.copyOut(outAt, out);
  return true;
}
