import { bfloat16ToFloat, floatToBfloat16 } from "../io/half.ts";
import { Tensor, shapeError } from "../tensor/tensor.ts";
import { transpose } from "../tensor/transpose.ts";
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

  /** Bytes one weight takes as stored: what a product must stream per multiply-accumulate of a row. */
  get elementBytes(): number {
    return this.dtype === "bf16" ? 2 : 4;
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

  /** Column `col` of B (for wte: token col's embedding) into out[at .. at+K), as floats. */
  column(col: number, out: Float32Array, at: number): void {
    const w = this.panelWidth;
    const data = this.data;
    let from = this.index(0, col);
    if (this.dtype === "f32") for (let row = 0; row < this.k; row++, from += w) out[at + row] = data[from];
    else for (let row = 0; row < this.k; row++, from += w) out[at + row] = bfloat16ToFloat(data[from]);
  }

  /**
   * Packs a row-major [K,N] tensor. `alloc` places the result (shared memory for worker threads,
   * the WebAssembly memory for the SIMD kernels); bf16 rounds to nearest even.
   */
  static pack(b: Tensor, panelWidth: number, dtype: WeightDtype = "f32", alloc: Allocator = defaultAlloc): PackedMatrix {
    if (b.shape.length !== 2) throw shapeError("pack", "expects a matrix", b.shape);
    const [k, n] = b.shape;
    const packed = new PackedMatrix(alloc(Math.ceil(n / panelWidth) * panelWidth * k, dtype), k, n, panelWidth);
    packed.fill(b.data, 0, n, n, 1);
    return packed;
  }

  /** An all-zero [K,N] matrix in panels of `panelWidth`, placed by `alloc`, to be filled piece by piece. */
  static empty(k: number, n: number, panelWidth: number, dtype: WeightDtype, alloc: Allocator = defaultAlloc): PackedMatrix {
    return new PackedMatrix(alloc(Math.ceil(n / panelWidth) * panelWidth * k, dtype), k, n, panelWidth);
  }

  /**
   * Sets columns first … first+R−1 of B from R rows of Bᵀ (row-major [R,K]): how wte [V,d] is
   * packed as B = wteᵀ a few thousand rows at a time, so it never sits in memory whole (154 MB).
   */
  setTransposedRows(first: number, rows: Float32Array): void {
    const count = rows.length / this.k;
    if (!Number.isInteger(count) || first < 0 || first + count > this.n) throw new Error(`setTransposedRows: ${rows.length} values from column ${first} do not fit [${this.k},${this.n}]`);
    this.fill(rows, first, count, 1, this.k);
  }

  /** Writes columns [col0, col0+cols) of B, where B[row, col0+c] = src[row·rowStride + c·colStride]. */
  private fill(src: Float32Array, col0: number, cols: number, rowStride: number, colStride: number): void {
    const { data, k, panelWidth: w, laneOrder: order } = this;
    const f32 = this.dtype === "f32";
    // Panel by panel, row by row: the writes run in order through memory and the reads take the
    // panel's few columns of a row together (column by column, every read of a row-major source
    // would land on another cache line).
    for (let panel = Math.floor(col0 / w); panel * w < col0 + cols; panel++) {
      const first = Math.max(col0, panel * w);
      const end = Math.min(col0 + cols, (panel + 1) * w);
      for (let row = 0; row < k; row++) {
        const to = panel * k * w + row * w;
        let from = row * rowStride + (first - col0) * colStride;
        if (f32) for (let lane = first - panel * w; lane < end - panel * w; lane++, from += colStride) data[to + order[lane]] = src[from];
        else for (let lane = first - panel * w; lane < end - panel * w; lane++, from += colStride) data[to + order[lane]] = floatToBfloat16(src[from]);
      }
    }
  }

  /** A [N,K] row-major tensor read as the [K,N] matrix it is the transpose of (panel width 1, no copy). */
  static transposedView(bt: Tensor): PackedMatrix {
    if (bt.shape.length !== 2) throw shapeError("transposedView", "expects a matrix", bt.shape);
    return new PackedMatrix(bt.data, bt.shape[1], bt.shape[0], 1);
  }

  /** Bᵀ as a row-major float32 [N,K] tensor: for wte, its checkpoint layout [V,d]. */
  unpackTransposed(): Tensor {
    const out = new Float32Array(this.k * this.n);
    for (let j = 0; j < this.n; j++) this.column(j, out, j * this.k);
    return new Tensor(out, [this.n, this.k]);
  }

  /** Back to a row-major float32 [K,N] tensor (for tests and for writing checkpoints). */
  unpack(): Tensor {
    return transpose(this.unpackTransposed());
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
