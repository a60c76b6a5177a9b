/**
 * The reference matmul: out[M,N] = a[M,K] × b[K,N], i-j-k order, one dot product per output,
 * for output columns j0 ≤ j < j1. Every faster kernel is checked against this one.
 */
export function matmulNaive(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  for (let i = 0; i < m; i++) {
    const aRow = i * k;
    for (let j = j0; j < j1; j++) {
      let sum = 0;
      for (let p = 0; p < k; p++) sum += a[aRow + p] * b[p * n + j];
      out[i * n + j] = sum;
    }
  }
}
