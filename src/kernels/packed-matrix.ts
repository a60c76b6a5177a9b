import { Tensor, shapeError } from "../tensor/tensor.ts";

/**
 * A [K,N] weight matrix stored as column panels: panel p holds columns p·w … p·w+w−1 for every
 * k, row after row, so a kernel reads `w` neighbouring outputs' weights from one contiguous run.
 * The last panel is padded with zeros. With w = 1 the layout is Bᵀ row-major — exactly how GPT-2
 * stores wte [V,d], so the tied LM head is a panel-1 view of wte with no copy.
 */
export class PackedMatrix {
  constructor(
    readonly data: Float32Array,
    readonly k: number,
    readonly n: number,
    readonly panelWidth: number,
  ) {
    const expected = Math.ceil(n / panelWidth) * panelWidth * k;
    if (data.length !== expected) throw new Error(`PackedMatrix: ${data.length} floats, but [${k},${n}] in panels of ${panelWidth} needs ${expected}`);
  }

  get shape(): readonly number[] {
    return [this.k, this.n];
  }

  /**
   * Packs a row-major [K,N] tensor. `alloc` lets the caller place the result (in shared memory
   * for the worker threads).
   */
  static pack(b: Tensor, panelWidth: number, alloc: (floats: number) => Float32Array = (f) => new Float32Array(f)): PackedMatrix {
    if (b.shape.length !== 2) throw shapeError("pack", "expects a matrix", b.shape);
    const [k, n] = b.shape;
    const w = panelWidth;
    const panels = Math.ceil(n / w);
    const data = alloc(panels * w * k);
    const src = b.data;
    for (let p = 0; p < panels; p++) {
      const base = p * k * w;
      const cols = Math.min(w, n - p * w);
      for (let kk = 0; kk < k; kk++) {
        for (let c = 0; c < cols; c++) data[base + kk * w + c] = src[kk * n + p * w + c];
      }
    }
    return new PackedMatrix(data, k, n, w);
  }

  /** A [N,K] row-major tensor read as the [K,N] matrix it is the transpose of (panel width 1, no copy). */
  static transposedView(bt: Tensor): PackedMatrix {
    if (bt.shape.length !== 2) throw shapeError("transposedView", "expects a matrix", bt.shape);
    return new PackedMatrix(bt.data, bt.shape[1], bt.shape[0], 1);
  }

  /** Back to a row-major [K,N] tensor (for tests and for kernels that want the plain layout). */
  unpack(): Tensor {
    const { k, n, panelWidth: w } = this;
    const out = new Float32Array(k * n);
    for (let j = 0; j < n; j++) {
      const p = Math.floor(j / w);
      const c = j - p * w;
      for (let kk = 0; kk < k; kk++) out[kk * n + j] = this.data[p * k * w + kk * w + c];
    }
    return new Tensor(out, [k, n]);
  }
}
