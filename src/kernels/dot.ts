/**
 * The dot-product form: B given transposed ([N,K] row-major), so every output is the dot product
 * of two contiguous rows — GPT-2's tied LM head reads wte [V,d] this way, with no transposed copy.
 * Four rows of B at a time share each activation load, and two k-steps per iteration keep eight
 * sums in flight. Columns j0 ≤ j < j1. Self-contained: worker threads run it from its source text.
 */
export function matmulDot(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  for (let i = 0; i < m; i++) {
    const row = i * k;
    let j = j0;
    for (; j + 4 <= j1; j += 4) {
      const b0 = j * k, b1 = b0 + k, b2 = b1 + k, b3 = b2 + k;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      let p = 0;
      for (; p + 2 <= k; p += 2) {
        const x = a[row + p], y = a[row + p + 1];
        s0 += x * b[b0 + p]; s1 += x * b[b1 + p]; s2 += x * b[b2 + p]; s3 += x * b[b3 + p];
        t0 += y * b[b0 + p + 1]; t1 += y * b[b1 + p + 1]; t2 += y * b[b2 + p + 1]; t3 += y * b[b3 + p + 1];
      }
      if (p < k) {
        const x = a[row + p];
        s0 += x * b[b0 + p]; s1 += x * b[b1 + p]; s2 += x * b[b2 + p]; s3 += x * b[b3 + p];
      }
      const o = i * n + j;
      out[o] = s0 + t0; out[o + 1] = s1 + t1; out[o + 2] = s2 + t2; out[o + 3] = s3 + t3;
    }
    for (; j < j1; j++) {
      const bRow = j * k;
      let s = 0;
      for (let p = 0; p < k; p++) s += a[row + p] * b[bRow + p];
      out[i * n + j] = s;
    }
  }
}
