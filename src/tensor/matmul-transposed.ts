import { opEnd, opStart } from "../clock/clock.ts";
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
  const x = a.data;
  const w = b.data;
  for (let i = 0; i < m; i++) {
    const xRow = i * k;
    for (let j = 0; j < n; j++) {
      const wRow = j * k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
      let p = 0;
      for (; p + 4 <= k; p += 4) {
        s0 += x[xRow + p] * w[wRow + p];
        s1 += x[xRow + p + 1] * w[wRow + p + 1];
        s2 += x[xRow + p + 2] * w[wRow + p + 2];
        s3 += x[xRow + p + 3] * w[wRow + p + 3];
      }
      for (; p < k; p++) s0 += x[xRow + p] * w[wRow + p];
      out[i * n + j] = s0 + s1 + s2 + s3;
    }
  }
  opEnd("matmul", role, [a.shape, b.shape], [m, n], m * k * n, t0);
  return new Tensor(out, [m, n]);
}
