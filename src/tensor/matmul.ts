import { opEnd, opStart } from "../clock/clock.ts";
import { outputFloats } from "./alloc.ts";
import { matmulInto } from "../kernels/engine.ts";
import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/**
 * [M,K] × [K,N] → [M,N]; B is a tensor or a weight packed for the fast kernels.
 * Cost: M·K·N cycles — one multiply-accumulate per cycle, the article's unit of work —
 * whichever kernel runs it. Bytes: A read (4·M·K), B read once at its stored width (w·K·N:
 * w = 4 for fp32, 2 for bf16 weights), the output written (4·M·N).
 * `role` says what the product is for (qkv, mlp up, …) so reports can split matmul time by use.
 */
export function matmul(a: Tensor, b: Tensor | PackedMatrix, role = ""): Tensor {
  if (a.shape.length !== 2 || b.shape.length !== 2) throw shapeError("matmul", "expects two matrices", a.shape, b.shape);
  const [m, k] = a.shape;
  const n = b.shape[1];
  if (b.shape[0] !== k) throw shapeError("matmul", "inner dimensions differ", a.shape, b.shape);
  const t0 = opStart();
  const out = outputFloats(m * n);
  const kernel = matmulInto(a.data, b, out, m, k, n);
  opEnd("matmul", role, [a.shape, b.shape], [m, n], m * k * n, F32_BYTES * (m * k + m * n) + (b instanceof Tensor ? F32_BYTES : b.bytesPerWeight) * k * n, t0, kernel);
  return new Tensor(out, [m, n]);
}
