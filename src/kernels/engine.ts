import { availableParallelism } from "node:os";
import { Tensor } from "../tensor/tensor.ts";
import { PackedMatrix } from "./packed-matrix.ts";
import { POOL_KERNELS, type KernelFn, WorkerPool } from "./pool.ts";

/**
 * How B is laid out in memory. "row-major": [K,N] as Hugging Face stores Conv1D weights;
 * "panels": PackedMatrix with 4-column panels; "transposed": [N,K] row-major (the tied wte).
 */
export type Layout = "row-major" | "panels" | "transposed";

export interface KernelInfo {
  name: string;
  layout: Layout;
  fn: KernelFn;
  about: string;
}

export const KERNELS: readonly KernelInfo[] = [
  { name: "naive", layout: "row-major", fn: POOL_KERNELS[0], about: "i-j-k, the reference" },
  { name: "ikj", layout: "row-major", fn: POOL_KERNELS[1], about: "i-k-j, streams B's rows" },
  { name: "packed", layout: "panels", fn: POOL_KERNELS[2], about: "4×4 register block over 4-column panels" },
  { name: "tiled", layout: "panels", fn: POOL_KERNELS[3], about: "packed, cache-tiled (K 256, M 64)" },
  { name: "matvec", layout: "panels", fn: POOL_KERNELS[4], about: "one row at a time over panels (decode)" },
  { name: "dot", layout: "transposed", fn: POOL_KERNELS[5], about: "dot products against Bᵀ rows (LM head)" },
];

/** Below this many multiply-accumulates a hand-off to the workers costs more than it saves. */
const PARALLEL_MIN_MACS = 1 << 17;

interface Settings {
  /** "auto" (fastest per shape) or a kernel name. */
  kernel: string;
  threads: number;
}

const settings: Settings = { kernel: "auto", threads: availableParallelism() };
let pool: WorkerPool | null = null;

/** Chooses the matmul kernel ("auto" or a name) and the thread count for everything that follows. */
export function configureEngine(options: Partial<Settings>): void {
  if (options.kernel !== undefined) {
    if (options.kernel !== "auto" && !KERNELS.some((k) => k.name === options.kernel)) {
      throw new Error(`unknown kernel "${options.kernel}"; choose auto or one of: ${KERNELS.map((k) => k.name).join(", ")}`);
    }
    settings.kernel = options.kernel;
  }
  if (options.threads !== undefined) {
    if (!Number.isInteger(options.threads) || options.threads < 1 || options.threads > 64) throw new Error(`threads must be 1..64, got ${options.threads}`);
    if (options.threads !== settings.threads) {
      void pool?.close();
      pool = null;
    }
    settings.threads = options.threads;
  }
}

export function engineSettings(): Readonly<Settings> {
  return settings;
}

/** The layout weights should be packed into for the configured kernel. */
export function weightLayout(): Layout {
  return KERNELS.find((k) => k.name === settings.kernel)?.layout === "row-major" ? "row-major" : "panels";
}

/** Whether weights should be allocated in shared memory, for the worker threads. */
export function sharedWeights(): boolean {
  return settings.threads > 1;
}

/** The kernel for a product: the configured one if it fits B's layout, else the fastest for the shape. */
export function kernelFor(layout: Layout, m: number): KernelInfo {
  const forced = KERNELS.find((k) => k.name === settings.kernel);
  if (forced !== undefined && forced.layout === layout) return forced;
  const name = layout === "row-major" ? "ikj" : layout === "transposed" ? "dot" : m < 4 ? "matvec" : "packed";
  return KERNELS.find((k) => k.name === name)!;
}

/** Runs out[M,N] = a × B on the chosen kernel, across the worker threads when it pays. */
export function matmulInto(a: Float32Array, b: Float32Array, layout: Layout, out: Float32Array, m: number, k: number, n: number): KernelInfo {
  const kernel = kernelFor(layout, m);
  if (settings.threads > 1 && m * k * n >= PARALLEL_MIN_MACS && WorkerPool.canShare(b)) {
    pool ??= new WorkerPool(settings.threads);
    pool.run(POOL_KERNELS.indexOf(kernel.fn), a, b, out, m, k, n, 4);
  } else {
    kernel.fn(a, b, out, m, k, n, 0, n);
  }
  return kernel;
}

/** A Float32Array for a weight: in shared memory when worker threads will read it. */
export function allocWeight(floats: number): Float32Array {
  return sharedWeights() ? new Float32Array(new SharedArrayBuffer(4 * floats)) : new Float32Array(floats);
}

/**
 * A [K,N] weight in the layout the configured kernels read: packed into panels (replacing the
 * row-major copy, which the caller drops), or kept row-major — in shared memory either way when
 * threads will read it.
 */
export function prepareWeight(w: Tensor): Tensor | PackedMatrix {
  if (weightLayout() === "panels") return PackedMatrix.pack(w, 4, allocWeight);
  if (!sharedWeights() || WorkerPool.canShare(w.data)) return w;
  const shared = allocWeight(w.size);
  shared.set(w.data);
  return new Tensor(shared, w.shape);
}
