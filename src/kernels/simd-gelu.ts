import { f32View, geluKernelFn, scratch } from "../wasm/runtime.ts";
import { usesSimd } from "./engine.ts";

/**
 * GELU on the WebAssembly SIMD kernel (src/wasm/gelu-kernel.ts) through a scratch block, padded
 * to whole f32x4 lanes; false when the engine is set to the TypeScript kernels (or has no SIMD).
 */
export function simdGelu(input: Float32Array, out: Float32Array): boolean {
  if (!usesSimd()) return false;
  const n = input.length;
  const padded = Math.ceil(n / 4) * 4;
  const inAt = scratch("gelu in", 4 * padded);
  const outAt = scratch("gelu out", 4 * padded);
  f32View(inAt, n).set(input);
  geluKernelFn()(inAt, outAt, padded);
  out.set(f32View(outAt, n));
  return true;
}
