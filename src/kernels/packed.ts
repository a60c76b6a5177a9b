/**
 * Register-blocked matmul over B packed in panels of 4 columns (PackedMatrix, width 4): each
 * step of the inner loop loads 4 weights and 4 activations and does 16 multiply-accumulates
 * into 16 locals, which V8 keeps in registers. Computes output columns j0 ≤ j < j1 (j0 a
 * multiple of 4). Self-contained (no imports, no helpers): worker threads run this very
 * function from its source text.
 */
export function matmulPacked(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  const kw = k * 4;
  for (let col = j0; col < j1; col += 4) {
    const base = (col >> 2) * kw;
    const cols = j1 - col < 4 ? j1 - col : 4;
    let i = 0;
    for (; i + 4 <= m; i += 4) {
      const r0 = i * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k;
      let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
      let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
      for (let p = 0, bp = base; p < k; p++, bp += 4) {
        const b0 = b[bp], b1 = b[bp + 1], b2 = b[bp + 2], b3 = b[bp + 3];
        const x0 = a[r0 + p], x1 = a[r1 + p], x2 = a[r2 + p], x3 = a[r3 + p];
        c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
        c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
        c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
        c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
      }
      const o0 = i * n + col, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
      if (cols === 4) {
        out[o0] = c00; out[o0 + 1] = c01; out[o0 + 2] = c02; out[o0 + 3] = c03;
        out[o1] = c10; out[o1 + 1] = c11; out[o1 + 2] = c12; out[o1 + 3] = c13;
        out[o2] = c20; out[o2 + 1] = c21; out[o2 + 2] = c22; out[o2 + 3] = c23;
        out[o3] = c30; out[o3 + 1] = c31; out[o3 + 2] = c32; out[o3 + 3] = c33;
      } else {
        out[o0] = c00; out[o1] = c10; out[o2] = c20; out[o3] = c30;
        if (cols > 1) { out[o0 + 1] = c01; out[o1 + 1] = c11; out[o2 + 1] = c21; out[o3 + 1] = c31; }
        if (cols > 2) { out[o0 + 2] = c02; out[o1 + 2] = c12; out[o2 + 2] = c22; out[o3 + 2] = c32; }
      }
    }
    for (; i < m; i++) {
      const r0 = i * k;
      let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
      for (let p = 0, bp = base; p < k; p++, bp += 4) {
        const x = a[r0 + p];
        c0 += x * b[bp]; c1 += x * b[bp + 1]; c2 += x * b[bp + 2]; c3 += x * b[bp + 3];
      }
      const o = i * n + col;
      out[o] = c0;
      if (cols > 1) out[o + 1] = c1;
      if (cols > 2) out[o + 2] = c2;
      if (cols > 3) out[o + 3] = c3;
    }
  }
}
