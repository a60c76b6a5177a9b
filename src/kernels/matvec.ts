/**
 * Decode's product: one row of activations against a weight matrix packed in panels of 4
 * (any number of rows works, one at a time). Two k-steps per iteration into 8 independent
 * sums keep more multiply-adds in flight than the 4 a single step would. Columns j0 ≤ j < j1,
 * j0 a multiple of 4. Self-contained: worker threads run it from its source text.
 */
export function matvecPacked(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  const kw = k * 4;
  for (let i = 0; i < m; i++) {
    const row = i * k;
    for (let col = j0; col < j1; col += 4) {
      let bp = (col >> 2) * kw;
      let s0 = 0, s1 = 0, s2 = 0, s3 = 0, t0 = 0, t1 = 0, t2 = 0, t3 = 0;
      let p = 0;
      for (; p + 2 <= k; p += 2, bp += 8) {
        const x = a[row + p], y = a[row + p + 1];
        s0 += x * b[bp]; s1 += x * b[bp + 1]; s2 += x * b[bp + 2]; s3 += x * b[bp + 3];
        t0 += y * b[bp + 4]; t1 += y * b[bp + 5]; t2 += y * b[bp + 6]; t3 += y * b[bp + 7];
      }
      if (p < k) {
        const x = a[row + p];
        s0 += x * b[bp]; s1 += x * b[bp + 1]; s2 += x * b[bp + 2]; s3 += x * b[bp + 3];
      }
      const o = i * n + col;
      const cols = j1 - col;
      out[o] = s0 + t0;
      if (cols > 1) out[o + 1] = s1 + t1;
      if (cols > 2) out[o + 2] = s2 + t2;
      if (cols > 3) out[o + 3] = s3 + t3;
    }
  }
}
