import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdScale } from "../kernels/simd-ops.ts";
import { compute, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor } from "./tensor.ts";

/** x · s for a scalar s. Cost: 1 cycle per element; bytes: each element read and written. */
export function scale(x: Tensor, s: number): Tensor {
  const t0 = opStart();
  const src = x.data;
  const out = outputFloats(src.length);
  const simd = simdScale(activeEngine(), src, s, out);
  if (!simd) {
    compute(() => {
      for (let i = 0; i < src.length; i++) out[i] = src[i] * s;
    });
  }
  opEnd("scale", "", [x.shape], x.shape, src.length, 2 * F32_BYTES * src.length, t0, simd);
  return new Tensor(out, x.shape);
}
