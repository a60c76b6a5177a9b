import { bfloat16ToFloat, floatToBfloat16 } from "../io/half.ts";
import { Tensor, shapeError } from "../tensor/tensor.ts";
import { BF16_LANE_ORDER } from "../wasm/kernels.ts";

export type WeightDtype = "f32" | "bf16";

/**
 * A [K,N] weight matrix — a matmul's B — stored as column panels: panel p holds columns
 * p·w … p·w+w−1 for every k, row after row, so a kernel reads `w` neighbouring outputs' weights
 * from one contiguous run. The last panel is padded with zeros. Values are float32, or bfloat16
 * (half the bytes; computed in float32).
 *
 * With w = 1 the layout is Bᵀ row-major — exactly how GPT-2 stores wte [V,d]. That is how the
 * model holds wte: as the tied LM head's B = wteᵀ [d,V], whose embedding rows are its columns.
 */
export class PackedMatrix {
  readonly dtype: WeightDtype;
  /** Where each column of a panel sits in a panel row (the bf16 SIMD kernels interleave them). */
  readonly laneOrder: readonly number[];

  constructor(
    readonly data: Float32Array | Uint16Array,
    readonly k: number,
    readonly n: number,
    readonly panelWidth: number,
  ) {
    this.dtype = data instanceof Uint16Array ? "bf16" : "f32";
    this.laneOrder = laneOrder(this.dtype, panelWidth);
    const expected = Math.ceil(n / panelWidth) * panelWidth * k;
    if (data.length !== expected) throw new Error(`PackedMatrix: ${data.length} values, but [${k},${n}] in panels of ${panelWidth} needs ${expected}`);
  }

  get shape(): readonly number[] {
    return [this.k, this.n];
  }

  /** Index of element (row, col) of the logical [K,N] matrix in `data`. */
  index(row: number, col: number): number {
    const w = this.panelWidth;
    const panel = Math.floor(col / w);
    return panel * this.k * w + row * w + this.laneOrder[col - panel * w];
  }

  /** Element (row, col) as a float. */
  get(row: number, col: number): number {
    const v = this.data[this.index(row, col)];
    return this.dtype === "bf16" ? bfloat16ToFloat(v) : v;
  }

  /**
   * Packs a row-major [K,N] tensor. `alloc` places the result (shared memory for worker threads,
   * the WebAssembly memory for the SIMD kernels); bf16 rounds to nearest even.
   */
  static pack(b: Tensor, panelWidth: number, dtype: WeightDtype = "f32", alloc: Allocator = defaultAlloc): PackedMatrix {
    if (b.shape.length !== 2) throw shapeError("pack", "expects a matrix", b.shape);
    const [k, n] = b.shape;
    return packStrided(b.data, k, n, n, 1, panelWidth, dtype, alloc);
  }

  /** Packs B = btᵀ from a row-major [N,K] tensor without forming the transpose. */
  static packTransposed(bt: Tensor, panelWidth: number, dtype: WeightDtype = "f32", alloc: Allocator = defaultAlloc): PackedMatrix {
    if (bt.shape.length !== 2) throw shapeError("packTransposed", "expects a matrix", bt.shape);
    const [n, k] = bt.shape;
    return packStrided(bt.data, k, n, 1, k, panelWidth, dtype, alloc);
  }

  /** A [N,K] row-major tensor read as the [K,N] matrix it is the transpose of (panel width 1, no copy). */
  static transposedView(bt: Tensor): PackedMatrix {
    if (bt.shape.length !== 2) throw shapeError("transposedView", "expects a matrix", bt.shape);
    return new PackedMatrix(bt.data, bt.shape[1], bt.shape[0], 1);
  }

  /** Bᵀ as a row-major float32 [N,K] tensor: for wte, its checkpoint layout [V,d]. */
  unpackTransposed(): Tensor {
    const out = new Float32Array(this.k * this.n);
    for (let j = 0; j < this.n; j++) for (let kk = 0; kk < this.k; kk++) out[j * this.k + kk] = this.get(kk, j);
    return new Tensor(out, [this.n, this.k]);
  }

  /** Back to a row-major float32 [K,N] tensor (for tests and for writing checkpoints). */
  unpack(): Tensor {
    const out = new Float32Array(this.k * this.n);
    for (let j = 0; j < this.n; j++) for (let kk = 0; kk < this.k; kk++) out[kk * this.n + j] = this.get(kk, j);
    return new Tensor(out, [this.k, this.n]);
  }
}

type Allocator = (count: number, dtype: WeightDtype) => Float32Array | Uint16Array;

function defaultAlloc(count: number, dtype: WeightDtype): Float32Array | Uint16Array {
  return dtype === "f32" ? new Float32Array(count) : new Uint16Array(count);
}

/**
 * bf16 panels of 8 store a row's columns as 0 4 1 5 2 6 3 7: each 32-bit word then holds columns
 * i and i+4, which the SIMD kernels split with one shift and one mask (src/wasm/kernels.ts).
 */
function laneOrder(dtype: WeightDtype, w: number): readonly number[] {
  return dtype === "bf16" && w === 8 ? BF16_LANE_ORDER : Array.from({ length: w }, (_, c) => c);
}

/** B[row, col] = src[row·rowStride + col·colStride], packed in panels of `w` columns. */
function packStrided(src: Float32Array, k: number, n: number, rowStride: number, colStride: number, w: number, dtype: WeightDtype, alloc: Allocator): PackedMatrix {
  const panels = Math.ceil(n / w);
  const data = alloc(panels * w * k, dtype);
  const order = laneOrder(dtype, w);
  for (let p = 0; p < panels; p++) {
    const cols = Math.min(w, n - p * w);
    for (let kk = 0; kk < k; kk++) {
      const from = kk * rowStride + p * w * colStride;
      const to = (p * k + kk) * w;
      if (dtype === "f32") for (let c = 0; c < cols; c++) data[to + c] = src[from + c * colStride];
      else for (let c = 0; c < cols; c++) data[to + order[c]] = floatToBfloat16(src[from + c * colStride]);
    }
  }
  return new PackedMatrix(data, k, n, w);
}
