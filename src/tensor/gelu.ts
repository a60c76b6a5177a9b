import { opEnd, opStart } from "../clock/clock.ts";
import { compute, outputFloats } from "./alloc.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdGelu } from "../kernels/simd-ops.ts";
import { F32_BYTES, Tensor } from "./tensor.ts";

/**
 * Cost: 9 cycles per element — x·x·x (2 multiplies), ·0.044715, +x, ·√(2/π), tanh,
 * +1, ·x, ·0.5 (tanh counted as one; the SIMD kernel computes it from an exp polynomial, which
 * the count does not see, as it does not see inside Math.tanh). Bytes: each element read and written.
 */
export const GELU_CYCLES_PER_ELEMENT = 9;

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** GELU, the tanh approximation GPT-2 was trained with (not the erf form). */
export function gelu(x: Tensor): Tensor {
  const t0 = opStart();
  const src = x.data;
  const out = outputFloats(src.length);
  const simd = simdGelu(activeEngine(), src, out, GELU_CYCLES_PER_ELEMENT);
  if (!simd) {
    compute(() => {
      for (let i = 0; i < src.length; i++) {
        const v = src[i];
        const inner = SQRT_2_OVER_PI * (v + 0.044715 * v * v * v);
        out[i] = 0.5 * v * (1 + Math.tanh(inner));
      }
    });
  }
  opEnd("gelu", "", [x.shape], x.shape, GELU_CYCLES_PER_ELEMENT * src.length, 2 * F32_BYTES * src.length, t0, simd);
  return new Tensor(out, x.shape);
}
