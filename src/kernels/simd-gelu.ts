import type { WasmHeap } from "../wasm/runtime.ts";

/**
 * GELU on the WebAssembly SIMD kernel (src/wasm/gelu-kernel.ts), in place in the engine's memory
 * or through scratch blocks padded to whole f32x4 lanes; false without an engine on the SIMD kernels.
 */
export function simdGelu(heap: WasmHeap | null, input: Float32Array, out: Float32Array): boolean {
  if (heap === null) return false;
  const n = input.length;
  if (n % 4 === 0) {
    // In place where the arrays live in the engine's memory (a forward pass's outputs do).
    const outAt = heap.output("gelu out", out);
    heap.geluKernel()(heap.input("gelu in", input), outAt, n);
    heap.copyOut(outAt, out);
    return true;
  }
  const padded = Math.ceil(n / 4) * 4;
  const inAt = heap.scratch("gelu in", 4 * padded);
  const outAt = heap.scratch("gelu out", 4 * padded);
  heap.write(inAt, input);
  heap.geluKernel()(inAt, outAt, padded);
  out.set(heap.f32View(outAt, n));
  return true;
}
