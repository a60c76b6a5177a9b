import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdCopyRows } from "../kernels/simd-ops.ts";
import { compute, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/** Matrices of one width stacked row-wise, in order (one part: itself, no copy). Cost: 0 cycles; bytes: the parts read, the result written. */
export function stackRows(parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const w = parts[0].shape[1];
  for (const p of parts) if (p.shape.length !== 2 || p.shape[1] !== w) throw shapeError("stack", `every part needs ${w} columns`, ...parts.map((q) => q.shape));
  const t0 = opStart();
  const rows = parts.reduce((sum, p) => sum + p.shape[0], 0);
  const out = outputFloats(rows * w);
  let at = 0;
  for (const p of parts) {
    const to = at;
    if (!simdCopyRows(activeEngine(), p.data, 0, p.size, out, to, p.size, 1, p.size)) compute(() => out.set(p.data, to));
    at += p.size;
  }
  opEnd("stack", "", parts.map((p) => p.shape), [rows, w], 0, 2 * F32_BYTES * rows * w, t0);
  return new Tensor(out, [rows, w]);
}
