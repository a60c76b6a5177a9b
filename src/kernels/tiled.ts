/**
 * The packed 4×4 kernel, cache-tiled for large shapes: K is cut into blocks of 256 and M into
 * blocks of 64 rows, so a 64×256 block of A (64 KiB) stays in L2 while every panel of B passes
 * over it, and each 256×4 slice of a panel (4 KiB) stays in L1 across the block's 16 row groups.
 * Partial sums of later K blocks are added to what earlier ones stored. Columns j0 ≤ j < j1,
 * j0 a multiple of 4. Self-contained: worker threads run it from its source text, which is why
 * it repeats the micro-kernel of packed.ts instead of calling a shared helper.
 */
export function matmulTiled(a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number): void {
  const KC = 256;
  const MC = 64;
  const kw = k * 4;
  for (let kb = 0; kb < k; kb += KC) {
    const kEnd = kb + KC < k ? kb + KC : k;
    const first = kb === 0;
    for (let ib = 0; ib < m; ib += MC) {
      const iEnd = ib + MC < m ? ib + MC : m;
      for (let col = j0; col < j1; col += 4) {
        const base = (col >> 2) * kw + kb * 4;
        const cols = j1 - col < 4 ? j1 - col : 4;
        let i = ib;
        for (; i + 4 <= iEnd; i += 4) {
          const r0 = i * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k;
          let c00 = 0, c01 = 0, c02 = 0, c03 = 0, c10 = 0, c11 = 0, c12 = 0, c13 = 0;
          let c20 = 0, c21 = 0, c22 = 0, c23 = 0, c30 = 0, c31 = 0, c32 = 0, c33 = 0;
          for (let p = kb, bp = base; p < kEnd; p++, bp += 4) {
            const b0 = b[bp], b1 = b[bp + 1], b2 = b[bp + 2], b3 = b[bp + 3];
            const x0 = a[r0 + p], x1 = a[r1 + p], x2 = a[r2 + p], x3 = a[r3 + p];
            c00 += x0 * b0; c01 += x0 * b1; c02 += x0 * b2; c03 += x0 * b3;
            c10 += x1 * b0; c11 += x1 * b1; c12 += x1 * b2; c13 += x1 * b3;
            c20 += x2 * b0; c21 += x2 * b1; c22 += x2 * b2; c23 += x2 * b3;
            c30 += x3 * b0; c31 += x3 * b1; c32 += x3 * b2; c33 += x3 * b3;
          }
          const o0 = i * n + col, o1 = o0 + n, o2 = o1 + n, o3 = o2 + n;
          if (!first) {
            c00 += out[o0]; c10 += out[o1]; c20 += out[o2]; c30 += out[o3];
            if (cols > 1) { c01 += out[o0 + 1]; c11 += out[o1 + 1]; c21 += out[o2 + 1]; c31 += out[o3 + 1]; }
            if (cols > 2) { c02 += out[o0 + 2]; c12 += out[o1 + 2]; c22 += out[o2 + 2]; c32 += out[o3 + 2]; }
            if (cols > 3) { c03 += out[o0 + 3]; c13 += out[o1 + 3]; c23 += out[o2 + 3]; c33 += out[o3 + 3]; }
          }
          out[o0] = c00; out[o1] = c10; out[o2] = c20; out[o3] = c30;
          if (cols > 1) { out[o0 + 1] = c01; out[o1 + 1] = c11; out[o2 + 1] = c21; out[o3 + 1] = c31; }
          if (cols > 2) { out[o0 + 2] = c02; out[o1 + 2] = c12; out[o2 + 2] = c22; out[o3 + 2] = c32; }
          if (cols > 3) { out[o0 + 3] = c03; out[o1 + 3] = c13; out[o2 + 3] = c23; out[o3 + 3] = c33; }
        }
        for (; i < iEnd; i++) {
          const r0 = i * k;
          let c0 = 0, c1 = 0, c2 = 0, c3 = 0;
          for (let p = kb, bp = base; p < kEnd; p++, bp += 4) {
            const x = a[r0 + p];
            c0 += x * b[bp]; c1 += x * b[bp + 1]; c2 += x * b[bp + 2]; c3 += x * b[bp + 3];
          }
          const o = i * n + col;
          if (!first) {
            c0 += out[o];
            if (cols > 1) c1 += out[o + 1];
            if (cols > 2) c2 += out[o + 2];
            if (cols > 3) c3 += out[o + 3];
          }
          out[o] = c0;
          if (cols > 1) out[o + 1] = c1;
          if (cols > 2) out[o + 2] = c2;
          if (cols > 3) out[o + 3] = c3;
        }
      }
    }
  }
}
