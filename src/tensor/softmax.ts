import { opEnd, opStart } from "../clock/clock.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdCausalSoftmax } from "../kernels/simd-ops.ts";
import { compute, contextFloats, outputFloats } from "./alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * Cost: 5 cycles per element that takes part — a compare (running max), a subtract and an
 * exp, an add (the sum), a multiply (by 1/sum). Bytes: each such element read and written.
 */
export const SOFTMAX_CYCLES_PER_ELEMENT = 5;

/** Softmax over the last axis. Subtracting the row max first keeps exp from overflowing. */
export function softmax(x: Tensor): Tensor {
  if (x.shape.length === 0) throw shapeError("softmax", "expects at least one axis", x.shape);
  const t0 = opStart();
  const out = outputFloats(x.size);
  const n = x.cols;
  compute(() => {
    for (let r = 0; r < x.size; r += n) softmaxRow(x.data, out, r, n);
  });
  opEnd("softmax", "", [x.shape], x.shape, SOFTMAX_CYCLES_PER_ELEMENT * x.size, 2 * F32_BYTES * x.size, t0);
  return new Tensor(out, x.shape);
}

/**
 * Softmax of attention scores [H, T, t] where query row i sits at position past + i and may
 * only see keys 0..past+i. Masked entries are neither read nor counted; they come out 0,
 * exactly what exp(-inf) would give (inside a recorded forward pass they are left unwritten:
 * no op reads them).
 */
export function causalSoftmax(scores: Tensor, past: number): Tensor {
  if (scores.shape.length !== 3) throw shapeError("causalSoftmax", "expects scores [heads, queries, keys]", scores.shape);
  const [h, tq, tk] = scores.shape;
  if (past + tq !== tk) throw shapeError("causalSoftmax", `${past} cached + ${tq} new positions ≠ ${tk} keys`, scores.shape);
  const t0 = opStart();
  const out = contextFloats(h * tq, tk);
  const simd = simdCausalSoftmax(activeEngine(), scores.data, out, h, tq, tk, past);
  const visible = h * (tq * past + (tq * (tq + 1)) / 2);
  if (!simd) {
    compute(() => {
      for (let head = 0; head < h; head++) {
        for (let i = 0; i < tq; i++) softmaxRow(scores.data, out, (head * tq + i) * tk, past + i + 1);
      }
    });
  }
  opEnd("softmax", "", [scores.shape], scores.shape, SOFTMAX_CYCLES_PER_ELEMENT * visible, 2 * F32_BYTES * visible, t0, simd);
  return new Tensor(out, scores.shape);
}

/** Softmax of src[at .. at+len) into out[at .. at+len). */
function softmaxRow(src: Float32Array, out: Float32Array, at: number, len: number): void {
  const end = at + len;
  let max = -Infinity;
  for (let j = at; j < end; j++) if (src[j] > max) max = src[j];
  let sum = 0;
  for (let j = at; j < end; j++) {
    const e = Math.exp(src[j] - max);
    out[j] = e;
    sum += e;
  }
  const inv = 1 / sum;
  for (let j = at; j < end; j++) out[j] *= inv;
}
