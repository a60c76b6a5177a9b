import { opEnd, opStart } from "../clock/clock.ts";
import { outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/** [M,N] → [N,M]. Cost: 0 cycles — pure data movement (each element read and
 * written), though its time is still recorded. */
export function transpose(x: Tensor): Tensor {
  if (x.shape.length !== 2) throw shapeError("transpose", "expects a matrix", x.shape);
  const [m, n] = x.shape;
  const t0 = opStart();
  const src = x.data;
  const out = outputFloats(src.length);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) out[j * m + i] = src[i * n + j];
  }
  opEnd("transpose", "", [x.shape], [n, m], 0, 2 * F32_BYTES * src.length, t0);
  return new Tensor(out, [n, m]);
}
