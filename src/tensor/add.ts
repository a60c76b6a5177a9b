import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdAdd } from "../kernels/simd-ops.ts";
import { compute, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * Element-wise a + b. b either has a's shape, or is one row ([N] or [1,N]) added to every
 * row of a — how a bias is applied.
 * Cost: 1 cycle per output element; bytes: a and b read, the output written, 4 bytes each.
 */
export function add(a: Tensor, b: Tensor): Tensor {
  const sameShape = a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  const rowBroadcast = !sameShape && b.size === b.cols && b.cols === a.cols && a.shape.length >= 1;
  if (!sameShape && !rowBroadcast) throw shapeError("add", "shapes do not match and b is not one row of a", a.shape, b.shape);
  const t0 = opStart();
  const x = a.data;
  const y = b.data;
  const out = outputFloats(x.length);
  const simd = simdAdd(activeEngine(), x, y, out, a.cols, !sameShape);
  if (!simd && sameShape) {
    compute(() => {
      for (let i = 0; i < x.length; i++) out[i] = x[i] + y[i];
    });
  } else if (!simd) {
    const n = a.cols;
    compute(() => {
      for (let r = 0; r < x.length; r += n) {
        for (let j = 0; j < n; j++) out[r + j] = x[r + j] + y[j];
      }
    });
  }
  opEnd("add", "", [a.shape, b.shape], a.shape, x.length, F32_BYTES * (2 * x.length + y.length), t0, simd);
  return new Tensor(out, a.shape);
}
