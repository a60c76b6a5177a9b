import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdCopyRows } from "../kernels/simd-ops.ts";
import { compute, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * [T, parts·w] → parts tensors [T, w], column blocks in order. Cost: 0 cycles; bytes: x read, the
 * parts written — none for one row, whose blocks are views of it.
 */
export function splitColumns(x: Tensor, parts: number): Tensor[] {
  if (x.shape.length !== 2 || x.shape[1] % parts !== 0) throw shapeError("split", `columns do not divide into ${parts} parts`, x.shape);
  const [t, n] = x.shape;
  const w = n / parts;
  const t0 = opStart();
  if (t === 1) {
    const views = Array.from({ length: parts }, (_, p) => new Tensor(x.data.subarray(p * w, (p + 1) * w), [1, w]));
    opEnd("split", "", [x.shape], [parts, t, w], 0, 0, t0);
    return views;
  }
  const out: Tensor[] = [];
  for (let p = 0; p < parts; p++) {
    const data = outputFloats(t * w);
    if (!simdCopyRows(activeEngine(), x.data, p * w, n, data, 0, w, t, w)) {
      compute(() => {
        for (let i = 0; i < t; i++) data.set(x.data.subarray(i * n + p * w, i * n + p * w + w), i * w);
      });
    }
    out.push(new Tensor(data, [t, w]));
  }
  opEnd("split", "", [x.shape], [parts, t, w], 0, 2 * F32_BYTES * x.size, t0);
  return out;
}
