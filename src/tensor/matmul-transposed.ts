import { opEnd, opStart } from "../clock/clock.ts";
import { matmulInto } from "../kernels/engine.ts";
import { Tensor, shapeError } from "./tensor.ts";

/**
 * [M,K] × [N,K]ᵀ → [M,N]: every output is a dot product of two contiguous rows.
 * GPT-2's LM head is tied to the token embedding wte [V,d], so logits = x · wteᵀ
 * without ever materialising a transposed 50257×768 copy.
 * Cost: M·K·N cycles, the same multiply-accumulates as matmul.
 */
export function matmulTransposed(a: Tensor, b: Tensor, role = ""): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw shapeError("matmulTransposed", "expects two matrices", a.shape, b.shape);
  const [m, k] = a.shape;
  const n = b.shape[0];
  if (b.shape[1] !== k) throw shapeError("matmulTransposed", "row lengths differ", a.shape, b.shape);
  const t0 = opStart();
  const out = new Float32Array(m * n);
  matmulInto(a.data, b.data, "transposed", out, m, k, n);
  opEnd("matmul", role, [a.shape, b.shape], [m, n], m * k * n, t0);
  return new Tensor(out, [m, n]);
}
