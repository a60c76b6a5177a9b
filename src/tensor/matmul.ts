import { opEnd, opStart } from "../clock/clock.ts";
import { matmulKernelFor } from "../kernels/select.ts";
import { Tensor, shapeError } from "./tensor.ts";

/**
 * [M,K] × [K,N] → [M,N].
 * Cost: M·K·N cycles — one multiply-accumulate per cycle, the article's unit of work.
 * `role` says what the product is for (qkv, mlp up, …) so reports can split matmul time by use.
 */
export function matmul(a: Tensor, b: Tensor, role = ""): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw shapeError("matmul", "expects two matrices", a.shape, b.shape);
  const [m, k] = a.shape;
  const n = b.shape[1];
  if (b.shape[0] !== k) throw shapeError("matmul", "inner dimensions differ", a.shape, b.shape);
  const t0 = opStart();
  const out = new Float32Array(m * n);
  matmulKernelFor(m, k, n)(a.data, b.data, out, m, k, n);
  opEnd("matmul", role, [a.shape, b.shape], [m, n], m * k * n, t0);
  return new Tensor(out, [m, n]);
}
