import { opEnd, opStart } from "../clock/clock.ts";
import { Tensor } from "./tensor.ts";

/** x · s for a scalar s. Cost: 1 cycle per element. */
export function scale(x: Tensor, s: number): Tensor {
  const t0 = opStart();
  const src = x.data;
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = src[i] * s;
  opEnd("scale", "", [x.shape], x.shape, src.length, t0);
  return new Tensor(out, x.shape);
}
