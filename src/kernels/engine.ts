import { availableParallelism } from "node:os";
import { Tensor } from "../tensor/tensor.ts";
import { allocateFor, f32View, reserve, available as simdBytesAvailable, simdAvailable } from "../wasm/runtime.ts";
import { PackedMatrix, type WeightDtype } from "./packed-matrix.ts";
import { POOL_KERNELS, type KernelFn, WorkerPool } from "./pool.ts";
import { allocateSimdWeight, simdMatmul } from "./simd.ts";

/**
 * How a kernel wants B. "row-major": [K,N] as Hugging Face stores Conv1D weights; "panels":
 * PackedMatrix with 4-column panels; "transposed": [N,K] rows (panel width 1, as wte is stored);
 * "simd-panels": 8-column panels in the WebAssembly memory, float32 or bfloat16.
 */
export type Layout = "row-major" | "panels" | "transposed" | "simd-panels";

export interface KernelInfo {
  name: string;
  layout: Layout;
  /** The TypeScript kernel; the SIMD kernels are generated WebAssembly (src/wasm/). */
  fn: KernelFn | null;
  about: string;
}

export const KERNELS: readonly KernelInfo[] = [
  { name: "naive", layout: "row-major", fn: POOL_KERNELS[0], about: "i-j-k, the reference" },
  { name: "ikj", layout: "row-major", fn: POOL_KERNELS[1], about: "i-k-j, streams B's rows" },
  { name: "packed", layout: "panels", fn: POOL_KERNELS[2], about: "4×4 register block over 4-column panels" },
  { name: "tiled", layout: "panels", fn: POOL_KERNELS[3], about: "packed, cache-tiled (K 256, M 64)" },
  { name: "matvec", layout: "panels", fn: POOL_KERNELS[4], about: "one row at a time over panels (decode)" },
  { name: "dot", layout: "transposed", fn: POOL_KERNELS[5], about: "dot products against Bᵀ rows (LM head)" },
  { name: "simd", layout: "simd-panels", fn: null, about: "WebAssembly SIMD, generated per K; fp32 or bf16 weights" },
];

/** Below this many multiply-accumulates a hand-off to the workers costs more than it saves. */
const PARALLEL_MIN_MACS = 1 << 17;

interface Settings {
  /** "auto" (fastest available per shape) or a kernel name. */
  kernel: string;
  threads: number;
  /** How weights are held; bf16 needs the SIMD kernels. */
  dtype: WeightDtype;
}

const settings: Settings = { kernel: "auto", threads: availableParallelism(), dtype: "f32" };
let pool: WorkerPool | null = null;

/** Whether matmuls (and attention and gelu with them) run on the WebAssembly SIMD kernels under these settings. */
export function usesSimd(s: Readonly<Settings> = settings): boolean {
  return s.kernel === "simd" || (s.kernel === "auto" && simdAvailable);
}

/** Chooses the kernel, the thread count and the weight dtype for everything loaded and run after. */
export function configureEngine(options: Partial<Settings>): void {
  const given = Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined));
  const next: Settings = { ...settings, ...given };
  if (next.kernel !== "auto" && !KERNELS.some((k) => k.name === next.kernel)) {
    throw new Error(`unknown kernel "${next.kernel}"; choose auto or one of: ${KERNELS.map((k) => k.name).join(", ")}`);
  }
  if (!Number.isInteger(next.threads) || next.threads < 1 || next.threads > 64) throw new Error(`threads must be 1..64, got ${next.threads}`);
  if (next.dtype !== "f32" && next.dtype !== "bf16") throw new Error(`dtype must be f32 or bf16, got ${String(next.dtype)}`);
  if (next.kernel === "simd" && !simdAvailable) throw new Error("this runtime has no WebAssembly SIMD: choose a TypeScript kernel");
  if (next.dtype === "bf16" && !usesSimd(next)) throw new Error(`bf16 weights need the WebAssembly SIMD kernels (kernel auto or simd), not ${next.kernel}`);
  if (next.threads !== settings.threads) {
    void pool?.close();
    pool = null;
  }
  Object.assign(settings, next);
}

/**
 * Whether matmul weights of this many parameters fit the SIMD kernels' memory (wasm32 addresses
 * 4 GiB), with room to spare for activations. gpt2-xl in fp32 does not; in bf16 it does.
 */
export function weightsFitSimd(parameters: number, dtype: WeightDtype = settings.dtype): boolean {
  return parameters * (dtype === "f32" ? 4 : 2) + 256 * 2 ** 20 <= simdBytesAvailable();
}

export function engineSettings(): Readonly<Settings> {
  return settings;
}

function sharedWeights(): boolean {
  return settings.threads > 1;
}

/** A Float32Array for a parameter that is not a matmul's B: in shared memory when threads will read it. */
export function allocWeight(floats: number): Float32Array {
  return sharedWeights() ? new Float32Array(new SharedArrayBuffer(4 * floats)) : new Float32Array(floats);
}

/**
 * Room for `floats` of activations that kernels read in place (the KV cache): in the WebAssembly
 * memory for the SIMD kernels, given back when `owner` is garbage-collected.
 */
export function allocCache(owner: object, floats: number): Float32Array {
  return usesSimd() ? f32View(allocateFor(owner, 4 * floats), floats) : new Float32Array(floats);
}

/** Makes room now for `count` caches of `floats` each (see reserve: no grow inside a timed run). */
export function reserveCaches(count: number, floats: number): void {
  if (usesSimd()) reserve(4 * floats * count, count);
}

function allocPacked(count: number, dtype: WeightDtype): Float32Array | Uint16Array {
  if (usesSimd()) return allocateSimdWeight(count, dtype);
  return new Float32Array(sharedWeights() ? new SharedArrayBuffer(4 * count) : new ArrayBuffer(4 * count));
}

/**
 * A [K,N] weight in the layout the configured kernels read, replacing the row-major copy (which
 * the caller drops): 8-column panels in the WebAssembly memory, 4-column panels, or row-major —
 * in shared memory whenever worker threads will read it.
 */
export function prepareWeight(w: Tensor): Tensor | PackedMatrix {
  if (usesSimd()) return PackedMatrix.pack(w, 8, settings.dtype, allocPacked);
  const layout = KERNELS.find((k) => k.name === settings.kernel)?.layout;
  if (layout !== "row-major") return PackedMatrix.pack(w, 4, "f32", allocPacked);
  if (!sharedWeights() || WorkerPool.canShare(w.data)) return w;
  const shared = allocWeight(w.size);
  shared.set(w.data);
  return new Tensor(shared, w.shape);
}

/**
 * The token embedding wte [V,d] as the tied LM head's B = wteᵀ [d,V]: packed in 8-column panels
 * for the SIMD kernels, else wte's own rows read as they are (panel width 1). `readRows(first,
 * into)` fills `into` with the rows of wte from `first` on, so wte is read piece by piece.
 */
export function prepareHead(vocab: number, d: number, readRows: (first: number, into: Float32Array) => void): PackedMatrix {
  if (usesSimd()) return PackedMatrix.packTransposedRows(vocab, d, 8, settings.dtype, allocPacked, readRows);
  const rows = allocWeight(vocab * d);
  readRows(0, rows);
  return PackedMatrix.transposedView(new Tensor(rows, [vocab, d]));
}

/** The TypeScript kernel for a product: the configured one if it fits B's layout, else the fastest for the shape. */
function kernelFor(layout: Layout, m: number): KernelInfo {
  const forced = KERNELS.find((k) => k.name === settings.kernel);
  if (forced !== undefined && forced.layout === layout) return forced;
  const name = layout === "row-major" ? "ikj" : layout === "transposed" ? "dot" : m < 4 ? "matvec" : "packed";
  return KERNELS.find((k) => k.name === name)!;
}

function layoutOf(b: Tensor | PackedMatrix): Layout {
  if (b instanceof Tensor) return "row-major";
  return b.panelWidth === 1 ? "transposed" : b.panelWidth === 4 ? "panels" : "simd-panels";
}

/** Runs out[M,N] = a × B on the chosen kernel, across the worker threads when it pays; returns the kernel's name. */
export function matmulInto(a: Float32Array, b: Tensor | PackedMatrix, out: Float32Array, m: number, k: number, n: number): string {
  const parallel = settings.threads > 1 && m * k * n >= PARALLEL_MIN_MACS;
  if (parallel) pool ??= new WorkerPool(settings.threads);
  const layout = layoutOf(b);
  if (layout === "simd-panels") return simdMatmul(a, b as PackedMatrix, out, m, k, n, parallel ? pool : null);
  const kernel = kernelFor(layout, m);
  const data = b.data as Float32Array;
  if (parallel && WorkerPool.canShare(data)) pool!.run(POOL_KERNELS.indexOf(kernel.fn!), a, data, out, m, k, n, 4);
  else kernel.fn!(a, data, out, m, k, n, 0, n);
  return kernel.name;
}
