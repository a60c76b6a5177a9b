import type { WasmHeap } from "../wasm/runtime.ts";

/*
 * Add, scale, layer norm and causal softmax on the WebAssembly SIMD kernels
 * (src/wasm/small-op-kernels.ts), where they pay: the engine has the kernels, every operand lives
 * in its memory (a forward pass's outputs and the model's weights do), and rows are whole f32x4
 * vectors. Each returns false where the TypeScript op runs instead — a copy into the kernels'
 * memory and back would cost what the op saves.
 */

function inPlace(heap: WasmHeap | null, ...views: Float32Array[]): heap is WasmHeap {
  return heap !== null && views.every((v) => heap.holds(v));
}

/** out = a + b, b of a's size or one row of `cols` added to every row. */
export function simdAdd(heap: WasmHeap | null, a: Float32Array, b: Float32Array, out: Float32Array, cols: number, rowBroadcast: boolean): boolean {
  if (cols % 4 !== 0 || !inPlace(heap, a, b, out)) return false;
  const [rows, width] = rowBroadcast ? [a.length / cols, cols] : [1, a.length];
  heap.smallOps().add(a.byteOffset, b.byteOffset, out.byteOffset, rows, width, 0);
  return true;
}

export function simdScale(heap: WasmHeap | null, x: Float32Array, s: number, out: Float32Array): boolean {
  if (x.length % 4 !== 0 || !inPlace(heap, x, out)) return false;
  heap.smallOps().scale(x.byteOffset, out.byteOffset, x.length, s);
  return true;
}

export function simdLayerNorm(heap: WasmHeap | null, x: Float32Array, gamma: Float32Array, beta: Float32Array, out: Float32Array, cols: number, eps: number): boolean {
  if (cols % 4 !== 0 || !inPlace(heap, x, gamma, beta, out)) return false;
  heap.smallOps().layerNorm(x.byteOffset, gamma.byteOffset, beta.byteOffset, out.byteOffset, x.length / cols, cols, eps);
  return true;
}

/** Causal softmax of scores [heads, tq, tk]; out's masked entries are left as they are (zero). */
export function simdCausalSoftmax(heap: WasmHeap | null, scores: Float32Array, out: Float32Array, heads: number, tq: number, tk: number, past: number): boolean {
  if (!inPlace(heap, scores, out)) return false;
  heap.smallOps().softmax(scores.byteOffset, out.byteOffset, heads, tq, tk, past);
  return true;
}
