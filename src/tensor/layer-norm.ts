import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdLayerNorm } from "../kernels/simd-ops.ts";
import { compute, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * Cost: 7 cycles per element — 1 add (mean), a subtract and a multiply-add (variance),
 * then subtract, multiply by 1/σ, multiply by γ, add β. The per-row sqrt and divide are
 * not counted: they do not grow with the row. Bytes: x read and the output written, γ and β read
 * once (they stay in cache across rows).
 */
export const LAYER_NORM_CYCLES_PER_ELEMENT = 7;

/** Normalises each row over the last axis to mean 0, variance 1 (biased), then y = x̂·γ + β. */
export function layerNorm(x: Tensor, gamma: Tensor, beta: Tensor, eps = 1e-5): Tensor {
  const n = x.cols;
  if (x.shape.length === 0 || gamma.size !== n || beta.size !== n) {
    throw shapeError("layerNorm", "gamma and beta must match the last axis of x", x.shape, gamma.shape, beta.shape);
  }
  const t0 = opStart();
  const src = x.data;
  const g = gamma.data;
  const b = beta.data;
  const out = outputFloats(src.length);
  const simd = simdLayerNorm(activeEngine(), src, g, b, out, n, eps);
  if (!simd) {
    compute(() => {
      for (let r = 0; r < src.length; r += n) {
        let sum = 0;
        for (let j = 0; j < n; j++) sum += src[r + j];
        const mean = sum / n;
        let sq = 0;
        for (let j = 0; j < n; j++) {
          const d = src[r + j] - mean;
          sq += d * d;
        }
        const rstd = 1 / Math.sqrt(sq / n + eps);
        for (let j = 0; j < n; j++) out[r + j] = (src[r + j] - mean) * rstd * g[j] + b[j];
      }
    });
  }
  opEnd("layerNorm", "", [x.shape, gamma.shape, beta.shape], x.shape, LAYER_NORM_CYCLES_PER_ELEMENT * src.length, F32_BYTES * (2 * src.length + 2 * n), t0, simd ? "simd" : "");
  return new Tensor(out, x.shape);
}
