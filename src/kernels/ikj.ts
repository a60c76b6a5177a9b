/**
 * i-k-j order: for each a[i,p], stream row p of B into row i of out. The inner loop walks
 * both arrays contiguously, which the naive j-inner-p order (striding down B's columns) does not.
 */
export function matmulIkj(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number): void {
  out.fill(0, 0, m * n);
  for (let i = 0; i < m; i++) {
    const outRow = i * n;
    for (let p = 0; p < k; p++) {
      const aip = a[i * k + p];
      const bRow = p * n;
      for (let j = 0; j < n; j++) out[outRow + j] += aip * b[bRow + j];
    }
  }
}
