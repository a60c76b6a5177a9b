/**
 * i-k-j order: for each a[i,p], stream row p of B into row i of out (columns j0 ≤ j < j1).
 * The inner loop walks both arrays contiguously, which the naive order (striding down B's
 * columns) does not.
 */
export function matmulIkj(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  for (let i = 0; i < m; i++) {
    const outRow = i * n;
    for (let j = j0; j < j1; j++) out[outRow + j] = 0;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      const bRow = p * n;
      for (let j = j0; j < j1; j++) out[outRow + j] += aip * b[bRow + j];
    }
  }
}
