import { opEnd, opStart } from "../clock/clock.ts";
import { compute, outputFloats } from "./alloc.ts";
import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * Token plus position embedding: out[i] = wte[ids[i]] + wpe[positions[i]] (a prompt's tokens sit
 * at consecutive positions; a decode batch's rows each at its own sequence's). The model holds wte as
 * the tied LM head's B = wteᵀ [d,V] (see PackedMatrix), so token v's embedding is its column v.
 * Cost: 1 cycle per output element (the add; the lookups are data movement). Bytes: per token,
 * its wte row at the stored width and its wpe row read, the sum written.
 */
export function embed(wte: PackedMatrix, wpe: Tensor, ids: readonly number[], positions: readonly number[]): Tensor {
  const [d, vocab] = wte.shape;
  if (wpe.shape.length !== 2 || wpe.shape[1] !== d) throw shapeError("embed", "token and position tables need the same width", [vocab, d], wpe.shape);
  if (positions.length !== ids.length) throw new Error(`embed: ${ids.length} tokens but ${positions.length} positions`);
  const context = wpe.shape[0];
  for (const at of positions) {
    if (!Number.isInteger(at) || at < 0 || at >= context) throw new Error(`embed: position ${at} is outside the model's context of ${context} positions`);
  }
  const t0 = opStart();
  const out = outputFloats(ids.length * d);
  for (const id of ids) {
    if (!Number.isInteger(id) || id < 0 || id >= vocab) throw new Error(`embed: token id ${id} is outside the vocabulary (0..${vocab - 1})`);
  }
  compute(() => {
    for (let i = 0; i < ids.length; i++) {
      const pos = positions[i] * d;
      const row = i * d;
      wte.column(ids[i], out, row);
      for (let c = 0; c < d; c++) out[row + c] += wpe.data[pos + c];
    }
  });
  opEnd("embed", "", [[vocab, d], wpe.shape], [ids.length, d], ids.length * d, ids.length * d * (wte.bytesPerWeight + 2 * F32_BYTES), t0);
  return new Tensor(out, [ids.length, d]);
}
