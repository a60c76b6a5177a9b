import { opEnd, opStart } from "../clock/clock.ts";
import { Tensor, shapeError } from "./tensor.ts";

/**
 * Token plus position embedding: out[i] = wte[ids[i]] + wpe[start + i].
 * Cost: 1 cycle per output element (the add; the row lookups are data movement).
 */
export function embed(wte: Tensor, wpe: Tensor, ids: readonly number[], start: number): Tensor {
  if (wte.shape.length !== 2 || wpe.shape.length !== 2 || wte.shape[1] !== wpe.shape[1]) {
    throw shapeError("embed", "token and position tables need the same width", wte.shape, wpe.shape);
  }
  const [vocab, d] = wte.shape;
  const positions = wpe.shape[0];
  if (start + ids.length > positions) {
    throw new Error(`embed: positions ${start}..${start + ids.length - 1} exceed the model's context of ${positions} positions`);
  }
  const t0 = opStart();
  const out = new Float32Array(ids.length * d);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (!Number.isInteger(id) || id < 0 || id >= vocab) {
      throw new Error(`embed: token id ${id} is outside the vocabulary (0..${vocab - 1})`);
    }
    const tok = id * d;
    const pos = (start + i) * d;
    const row = i * d;
    for (let c = 0; c < d; c++) out[row + c] = wte.data[tok + c] + wpe.data[pos + c];
  }
  opEnd("embed", "", [wte.shape, wpe.shape], [ids.length, d], ids.length * d, t0);
  return new Tensor(out, [ids.length, d]);
}
