import { bfloat16ToFloat, floatToBfloat16, halfToFloat } from "../io/half.ts";
import { Tensor, shapeError } from "../tensor/tensor.ts";
import { transpose } from "../tensor/transpose.ts";
import { BF16_LANE_ORDER } from "../wasm/kernels.ts";
import { Q8_BLOCK, Q8_RECORD, Q8_SCALES, WEIGHT_LEVELS, flipWeight, paddedK, quantize, weightScaleBits } from "./q8.ts";

export type WeightDtype = "f32" | "bf16" | "q8";
type PackedData = Float32Array | Uint16Array | Int8Array;

/**
 * A [K,N] weight matrix — a matmul's B — stored as column panels: panel p holds columns
 * p·w … p·w+w−1 for every k, row after row, so a kernel reads `w` neighbouring outputs' weights
 * from one contiguous run. The last panel is padded with zeros. Values are float32, or bfloat16
 * (half the bytes; computed in float32), or q8: signed bytes in blocks of 32 k with one float16
 * scale per block and column (src/kernels/q8.ts), for the integer SIMD kernels.
 *
 * With w = 1 the layout is Bᵀ row-major — exactly how GPT-2 stores wte [V,d]. That is how the
 * model holds wte: as the tied LM head's B = wteᵀ [d,V], whose embedding rows are its columns.
 */
export class PackedMatrix {
  readonly dtype: WeightDtype;
  /** Where each column of a panel sits in a panel row (the bf16 SIMD kernels interleave them). */
  readonly laneOrder: readonly number[];
  /** q8: the stored bytes read as float16 bits (for the scales). */
  private readonly halves: Uint16Array;

  /** `valueless`: the shape and dtype alone, no values (see PackedMatrix.valueless). */
  private constructor(
    readonly data: PackedData,
    readonly k: number,
    readonly n: number,
    readonly panelWidth: number,
    valueless = false,
  ) {
    this.dtype = data instanceof Uint16Array ? "bf16" : data instanceof Int8Array ? "q8" : "f32";
    this.laneOrder = laneOrder(this.dtype, panelWidth);
    const expected = storedCount(k, n, panelWidth, this.dtype);
    if (this.dtype === "q8" && panelWidth !== 8) throw new Error("PackedMatrix: q8 weights come in panels of 8");
    if (!valueless && data.length !== expected) throw new Error(`PackedMatrix: ${data.length} values, but [${k},${n}] in panels of ${panelWidth} needs ${expected}`);
    const q8 = this.dtype === "q8";
    this.halves = new Uint16Array(data.buffer, q8 ? data.byteOffset : 0, q8 ? data.length / 2 : 0);
  }

  /** Where a kernel's B starts in its memory. */
  get kernelAddress(): number {
    return this.data.byteOffset;
  }

  /** Bytes a product streams per weight: the weights as stored (for q8 the byte and its share of the block's scale). */
  get bytesPerWeight(): number {
    return bytesPerWeight(this.dtype);
  }

  get shape(): readonly number[] {
    return [this.k, this.n];
  }

  /**
   * Index of element (row, col) of the logical [K,N] matrix in `data`. q8 panels are a run of
   * block records (Q8_RECORD bytes each, one stream for a kernel to read): the 32 k × 8 columns
   * as 8 steps of 4 k — 16 bytes for columns 0–3 (each column's 4 k together), what one relaxed
   * integer dot product takes, then 16 for columns 4–7 — then the 8 columns' float16 scales.
   */
  index(row: number, col: number): number {
    const w = this.panelWidth;
    const panel = Math.floor(col / w);
    const c = col - panel * w;
    if (this.dtype === "q8") return this.record(row, col) + ((row & (Q8_BLOCK - 1)) >> 2) * 32 + (c >> 2) * 16 + (c & 3) * 4 + (row & 3);
    return panel * this.k * w + row * w + this.laneOrder[c];
  }

  /** q8: where the record of element (row, col)'s block starts, from the first record. */
  private record(row: number, col: number): number {
    return ((col >> 3) * (paddedK(this.k) / Q8_BLOCK) + Math.floor(row / Q8_BLOCK)) * Q8_RECORD;
  }

  /** q8: the scale of element (row, col)'s block. */
  scaleOf(row: number, col: number): number {
    return halfToFloat(this.halves[(this.record(row, col) + Q8_SCALES) / 2 + (col & 7)]);
  }

  /** q8: the quantized weight at (row, col), as stored with its top bit flipped back. */
  quantized(row: number, col: number): number {
    return flipWeight(this.data[this.index(row, col)]);
  }

  /** Element (row, col) as a float. */
  get(row: number, col: number): number {
    if (this.dtype === "q8") return this.quantized(row, col) * this.scaleOf(row, col);
    const v = this.data[this.index(row, col)];
    return this.dtype === "bf16" ? bfloat16ToFloat(v) : v;
  }

  /** Column `col` of B (for wte: token col's embedding) into out[at .. at+K), as floats. */
  column(col: number, out: Float32Array, at: number): void {
    const w = this.panelWidth;
    const data = this.data;
    if (this.dtype === "q8") {
      // Block by block, as index() lays them out: a token's embedding each decode step.
      const lane = ((col & 7) >> 2) * 16 + (col & 3) * 4;
      for (let r0 = 0; r0 < this.k; r0 += Q8_BLOCK) {
        const record = this.record(r0, col);
        const scale = this.scaleOf(r0, col);
        const end = Math.min(this.k, r0 + Q8_BLOCK);
        for (let row = r0; row < end; row++) out[at + row] = flipWeight(data[record + ((row & (Q8_BLOCK - 1)) >> 2) * 32 + lane + (row & 3)]) * scale;
      }
      return;
    }
    let from = this.index(0, col);
    if (this.dtype === "f32") for (let row = 0; row < this.k; row++, from += w) out[at + row] = data[from];
    else for (let row = 0; row < this.k; row++, from += w) out[at + row] = bfloat16ToFloat(data[from]);
  }

  /**
   * Packs a row-major [K,N] tensor. `alloc` places the result (shared memory for worker threads,
   * the WebAssembly memory for the SIMD kernels); bf16 rounds to nearest even.
   */
  static pack(b: Tensor, panelWidth: number, dtype: WeightDtype = "f32", alloc: Allocator = defaultAlloc, packBand?: BandPacker): PackedMatrix {
    if (b.shape.length !== 2) throw shapeError("pack", "expects a matrix", b.shape);
    const [k, n] = b.shape;
    const packed = new PackedMatrix(alloc(storedCount(k, n, panelWidth, dtype), dtype), k, n, panelWidth);
    packed.fill(b.data, 0, n, n, 1, packBand);
    return packed;
  }

  /** An all-zero [K,N] matrix in panels of `panelWidth`, placed by `alloc`, to be filled piece by piece. */
  static empty(k: number, n: number, panelWidth: number, dtype: WeightDtype, alloc: Allocator = defaultAlloc): PackedMatrix {
    return new PackedMatrix(alloc(storedCount(k, n, panelWidth, dtype), dtype), k, n, panelWidth);
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

  /**
   * Writes columns [col0, col0+cols) of B, where B[row, col0+c] = src[row·rowStride + c·colStride].
   * `packBand`, for q8 from a row-major source: packs a whole band's whole panels at once.
   */
  private fill(src: Float32Array, col0: number, cols: number, rowStride: number, colStride: number, packBand?: BandPacker): void {
    const { data, k, panelWidth: w, laneOrder: order } = this;
    const panelStride = (paddedK(k) / Q8_BLOCK) * Q8_RECORD;
    // A band of 32 rows (q8's block) at a time across every panel: the band's rows stay in cache
    // while each panel takes its few columns of them, and q8 finds each block's values together.
    for (let r0 = 0; r0 < paddedK(k); r0 += Q8_BLOCK) {
      const r1 = Math.min(k, r0 + Q8_BLOCK);
      let first = Math.floor(col0 / w);
      const whole = Math.floor(cols / w) * w;
      if (packBand !== undefined && data instanceof Int8Array && colStride === 1 && col0 % w === 0 && r1 - r0 === Q8_BLOCK && whole > 0) {
        const band = src.subarray(r0 * rowStride, (r1 - 1) * rowStride + whole);
        // (false: a scale float16 cannot hold; the TypeScript below packs the band again and says so)
        if (packBand(band, rowStride, whole, data.byteOffset + this.record(r0, col0), panelStride)) first += whole / w;
      }
      for (let panel = first; panel * w < col0 + cols; panel++) {
        const first = Math.max(col0, panel * w);
        const lanes = Math.min(col0 + cols, (panel + 1) * w) - first;
        const from = (first - col0) * colStride;
        const lane0 = first - panel * w;
        if (data instanceof Int8Array) this.fillQ8Block(src, from, rowStride, colStride, panel, r0, lane0, lanes);
        else if (data instanceof Float32Array) {
          for (let lane = 0; lane < lanes; lane++) copyLane(src, from + lane * colStride + r0 * rowStride, rowStride, data, (panel * k + r0) * w + order[lane0 + lane], w, r1 - r0);
        } else {
          for (let lane = 0; lane < lanes; lane++) roundLane(src, from + lane * colStride + r0 * rowStride, rowStride, data, (panel * k + r0) * w + order[lane0 + lane], w, r1 - r0);
        }
      }
    }
  }

  /**
   * q8: block r0 of `lanes` columns of one panel (from lane0), each with a scale from its largest
   * magnitude, written where index() puts them (top bit flipped, see q8.ts).
   */
  private fillQ8Block(src: Float32Array, from: number, rowStride: number, colStride: number, panel: number, r0: number, lane0: number, lanes: number): void {
    const data = this.data as Int8Array;
    const record = this.record(r0, panel * 8);
    const end = Math.min(this.k, r0 + Q8_BLOCK);
    for (let lane = 0; lane < lanes; lane++) {
      const c = lane0 + lane;
      const base = from + lane * colStride;
      let amax = 0;
      for (let row = r0; row < end; row++) amax = Math.max(amax, Math.abs(src[base + row * rowStride]));
      const bits = weightScaleBits(amax);
      const scale = halfToFloat(bits);
      const at = record + (c >> 2) * 16 + (c & 3) * 4;
      for (let row = r0; row < end; row++) data[at + ((row - r0) >> 2) * 32 + (row & 3)] = flipWeight(quantize(src[base + row * rowStride], scale, WEIGHT_LEVELS));
      for (let row = end; row < r0 + Q8_BLOCK; row++) data[at + ((row - r0) >> 2) * 32 + (row & 3)] = flipWeight(0);
      this.halves[(record + Q8_SCALES) / 2 + c] = bits;
    }
  }

  /**
   * A [K,N] weight of `dtype` with no values: what a pass that only counts its cycles and bytes
   * multiplies by (an Engine with countsOnly), so predicting GPT-2 XL needs none of its memory.
   */
  static valueless(k: number, n: number, dtype: WeightDtype): PackedMatrix {
    const empty = dtype === "q8" ? new Int8Array(0) : dtype === "bf16" ? new Uint16Array(0) : new Float32Array(0);
    return new PackedMatrix(empty, k, n, 8, true);
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

type Allocator = (count: number, dtype: WeightDtype) => PackedData;

/**
 * Packs q8 block records for `columns` columns (whole panels) of a band of 32 rows, `rowFloats`
 * apart in `band`, the first panel's record at `record` and each next one `panelStride` bytes on
 * (src/wasm/pack-q8-kernel.ts); false if a scale would not fit float16.
 */
export type BandPacker = (band: Float32Array, rowFloats: number, columns: number, record: number, panelStride: number) => boolean;

/** to[at + i·step] = src[from + i·stride] for i < count: one column of a panel. */
function copyLane(src: Float32Array, from: number, stride: number, to: Float32Array, at: number, step: number, count: number): void {
  for (let i = 0; i < count; i++) to[at + i * step] = src[from + i * stride];
}

/** copyLane, rounding to bfloat16. */
function roundLane(src: Float32Array, from: number, stride: number, to: Uint16Array, at: number, step: number, count: number): void {
  for (let i = 0; i < count; i++) to[at + i * step] = floatToBfloat16(src[from + i * stride]);
}

const BYTES_PER_WEIGHT: Record<WeightDtype, number> = { f32: 4, bf16: 2, q8: Q8_RECORD / 256 };

/** Elements of `data` for [K,N] in panels of w: q8 counts bytes (its block records). */
function storedCount(k: number, n: number, w: number, dtype: WeightDtype): number {
  const columns = Math.ceil(n / w) * w;
  return dtype === "q8" ? columns * paddedK(k) * BYTES_PER_WEIGHT.q8 : columns * k;
}

/** Bytes per weight as held in memory and streamed by a product (q8: its share of the block's scale too). */
export const bytesPerWeight = (dtype: WeightDtype): number => BYTES_PER_WEIGHT[dtype];

/** Bytes a [K,N] weight takes in panels of w as `dtype` (q8 with its scales). */
export function packedBytes(k: number, n: number, w: number, dtype: WeightDtype): number {
  return storedCount(k, n, w, dtype) * (dtype === "q8" ? 1 : BYTES_PER_WEIGHT[dtype]);
}

function defaultAlloc(count: number, dtype: WeightDtype): PackedData {
  return dtype === "f32" ? new Float32Array(count) : dtype === "bf16" ? new Uint16Array(count) : new Int8Array(count);
}

/**
 * bf16 panels of 8 store a row's columns as 0 4 1 5 2 6 3 7: each 32-bit word then holds columns
 * i and i+4, which the SIMD kernels split with one shift and one mask (src/wasm/kernels.ts).
 */
function laneOrder(dtype: WeightDtype, w: number): readonly number[] {
  return dtype === "bf16" && w === 8 ? BF16_LANE_ORDER : Array.from({ length: w }, (_, c) => c);
}
