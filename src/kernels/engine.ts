import type { Platform } from "../platform/platform.ts";
import { Tensor } from "../tensor/tensor.ts";
import { Ambient } from "../util/ambient.ts";
import { WasmHeap, simdAvailable } from "../wasm/runtime.ts";
import { PassArena } from "./arena.ts";
import { PackedMatrix, type WeightDtype, bytesPerWeight, packedBytes } from "./packed-matrix.ts";
import { POOL_KERNELS, type KernelFn, WorkerPool } from "./pool.ts";
import { type KernelWisdom, SimdMatmul } from "./simd.ts";

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
  { name: "simd", layout: "simd-panels", fn: null, about: "WebAssembly SIMD, generated per K; fp32, bf16 or q8 weights" },
];

/** Below this many multiply-accumulates a hand-off to the workers costs more than it saves. */
const PARALLEL_MIN_MACS = 1 << 17;

export interface EngineSettings {
  /** "auto" (fastest available per shape) or a kernel name. */
  kernel: string;
  threads: number;
  /** How weights are held; bf16 and q8 need the SIMD kernels. */
  dtype: WeightDtype;
}

const active = new Ambient<Engine>();

/** The engine whose `run` is on the stack: the one ops use for their kernels (null: plain TypeScript). */
export function activeEngine(): Engine | null {
  return active.current;
}

/**
 * Where a model's work runs: the kernel choice, the threads, the weight dtype, and the memory the
 * weights, caches and scratch live in (one WebAssembly memory per engine for the SIMD kernels).
 * A model is created with its engine and owns it; `dispose` gives the memory and the threads back.
 */
export class Engine {
  readonly kernel: string;
  readonly dtype: WeightDtype;
  /** The WebAssembly memory, when the SIMD kernels run this engine's products. */
  readonly heap: WasmHeap | null;
  private threadCount: number;
  private pool: WorkerPool | null = null;
  /** The pool, once all its threads run (until then products run on this thread alone). */
  private readyPool: WorkerPool | null = null;
  private readonly simd: SimdMatmul | null;
  private disposed = false;
  /** Whether the running pass's rows are sequences of a decode batch (see pass). */
  private sequenceRows = false;
  /** Where op outputs live during a forward pass. */
  private readonly arena: PassArena;
  private inPass = false;

  constructor(readonly platform: Platform, options: Partial<EngineSettings> = {}) {
    const kernel = options.kernel ?? "auto";
    const threads = options.threads ?? platform.cores();
    const dtype = options.dtype ?? "f32";
    if (kernel !== "auto" && !KERNELS.some((k) => k.name === kernel)) {
      throw new Error(`unknown kernel "${kernel}"; choose auto or one of: ${KERNELS.map((k) => k.name).join(", ")}`);
    }
    Engine.checkThreads(threads);
    if (dtype !== "f32" && dtype !== "bf16" && dtype !== "q8") throw new Error(`dtype must be f32, bf16 or q8, got ${String(dtype)}`);
    if (kernel === "simd" && !simdAvailable) throw new Error("this runtime has no WebAssembly SIMD: choose a TypeScript kernel");
    const simd = kernel === "simd" || (kernel === "auto" && simdAvailable);
    if (dtype !== "f32" && !simd) {
      throw new Error(simdAvailable
        ? `${dtype} weights need the WebAssembly SIMD kernels (kernel auto or simd), not ${kernel}`
        : `${dtype} weights need WebAssembly SIMD, which this runtime lacks: use --dtype f32`);
    }
    this.kernel = kernel;
    this.dtype = dtype;
    this.threadCount = threads;
    this.heap = simd ? new WasmHeap() : null;
    this.simd = this.heap === null ? null : new SimdMatmul(this.heap);
    const heap = this.heap;
    // Op outputs in the kernels' memory: the next op's kernel reads them where they are.
    this.arena = new PassArena(heap === null
      ? { take: (floats) => new Float32Array(floats), give: () => {} }
      : { take: (floats) => heap.f32View(heap.allocate(4 * floats), floats).fill(0), give: (slab) => heap.release(slab.byteOffset, slab.byteLength) });
  }

  private static checkThreads(threads: number): void {
    if (!Number.isInteger(threads) || threads < 1 || threads > 64) throw new Error(`threads must be 1..64, got ${threads}`);
  }

  get settings(): EngineSettings {
    return { kernel: this.kernel, threads: this.threadCount, dtype: this.dtype };
  }

  get threads(): number {
    return this.threadCount;
  }

  /** Whether matmuls (and attention and gelu with them) run on the WebAssembly SIMD kernels. */
  get usesSimd(): boolean {
    return this.heap !== null;
  }

  /**
   * Changes the thread count from the next product on. Weights in the WebAssembly memory serve
   * any count; TypeScript-kernel weights loaded for one thread stay on one.
   */
  setThreads(threads: number): void {
    Engine.checkThreads(threads);
    if (threads === this.threadCount) return;
    void this.pool?.close();
    this.pool = null;
    this.readyPool = null;
    this.threadCount = threads;
  }

  /**
   * Starts the threads and resolves once they all run; until then every product runs on the
   * calling thread. (A page's workers start only after their creator yields to its event loop,
   * so a pool cannot be started and used in one synchronous stretch.)
   */
  async ready(): Promise<void> {
    if (this.disposed || this.threadCount === 1) return;
    const pool = (this.pool ??= new WorkerPool(this.platform, this.threadCount, this.heap?.memory ?? null));
    await pool.started;
    if (this.pool === pool) this.readyPool = pool;
  }

  /** Runs fn with this engine as the one ops use (nesting restores the outer one). */
  run<T>(fn: () => T): T {
    if (this.disposed) throw new Error("this engine was disposed: load the model again");
    return active.run(this, fn);
  }

  /**
   * Runs one forward pass: every op output inside is carved from the engine's arena (see
   * PassArena), which the next pass reuses, so nothing `fn` returns may outlive the pass
   * without being copied (model.step copies the logits). `sequences`: the pass decodes a batch,
   * one row per sequence, and its products keep each row's arithmetic what it is alone.
   */
  pass<T>(fn: () => T, sequences = false): T {
    if (this.inPass) throw new Error("a forward pass is already running on this engine");
    this.inPass = true;
    this.sequenceRows = sequences;
    this.arena.begin();
    try {
      return this.run(fn);
    } finally {
      this.inPass = false;
      this.sequenceRows = false;
    }
  }

  /** Inside a pass: a new transformer block starts (only its input crosses from the blocks before). */
  nextBlock(): void {
    if (this.inPass) this.arena.nextBlock();
  }

  /** Zeroed room for an op's output, as `new Float32Array(n)` gives: from the arena inside a pass. */
  floats(n: number): Float32Array {
    return this.inPass ? this.arena.floats(n) : new Float32Array(n);
  }

  /** Stops the threads and drops the WebAssembly memory; the engine cannot run anything after. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const pool = this.pool;
    this.pool = null;
    this.readyPool = null;
    await pool?.close();
  }

  /**
   * Whether matmul weights of this many parameters fit the SIMD kernels' memory (wasm32 addresses
   * 4 GiB), with room to spare for activations. gpt2-xl in fp32 does not; in bf16 or q8 it does.
   */
  weightsFit(parameters: number): boolean {
    return this.heap === null || parameters * bytesPerWeight(this.dtype) + 256 * 2 ** 20 <= this.heap.available();
  }

  /**
   * Bytes left for activations and caches: what the kernels' WebAssembly memory can still grow
   * by (wasm32 addresses 4 GiB), or for plain arrays the same 4 GiB as a budget.
   */
  memoryLeft(): number {
    return this.heap?.available() ?? 4 * 2 ** 30;
  }

  /** The SIMD kernels chosen per product shape (a machine profile stores them). */
  kernelWisdom(): KernelWisdom {
    return this.simd?.wisdom() ?? {};
  }

  adoptKernelWisdom(wisdom: KernelWisdom): void {
    this.simd?.adopt(wisdom);
  }

  private get sharedWeights(): boolean {
    return this.threadCount > 1;
  }

  /**
   * A Float32Array for a parameter that is not a matmul's B (biases, layer norms, wpe): in the
   * kernels' memory for the SIMD kernels, else in shared memory when threads will read it.
   */
  allocWeight(floats: number): Float32Array {
    if (this.heap !== null) return this.heap.f32View(this.heap.allocate(4 * floats), floats);
    return this.sharedWeights ? new Float32Array(new SharedArrayBuffer(4 * floats)) : new Float32Array(floats);
  }

  /**
   * Room for `floats` of activations that kernels read in place (the KV cache): in the WebAssembly
   * memory for the SIMD kernels, given back when `owner` is garbage-collected. Written once now,
   * as llama.cpp clears its cache when it makes it: memory touched for the first time costs a
   * page fault per 4 KiB, and inside decode that was a fault every position or two per layer
   * (36 µs per append of one position on this project's VM, against 2 µs on touched memory).
   */
  allocCache(owner: object, floats: number): Float32Array {
    const cache = this.heap === null ? new Float32Array(floats) : this.heap.f32View(this.heap.allocateFor(owner, 4 * floats), floats);
    return cache.fill(0);
  }

  /** Grows the kernels' memory once for matmul weights of these [K,N] shapes, before they are placed one by one. */
  reserveWeights(shapes: readonly number[][]): void {
    const bytes = shapes.reduce((sum, [k, n]) => sum + packedBytes(k, n, 8, this.dtype), 0);
    this.heap?.reserve(bytes, shapes.length);
  }

  /** Makes room now for `count` caches of `floats` each (see WasmHeap.reserve: no grow inside a timed run). */
  reserveCaches(count: number, floats: number): void {
    this.heap?.reserve(4 * floats * count, count);
  }

  private readonly allocPacked = (count: number, dtype: WeightDtype): Float32Array | Uint16Array | Int8Array => {
    const heap = this.heap;
    if (heap !== null) {
      if (dtype === "f32") return heap.f32View(heap.allocate(4 * count), count);
      if (dtype === "bf16") return heap.u16View(heap.allocate(2 * count), count);
      return heap.i8View(heap.allocate(count), count);
    }
    return new Float32Array(this.sharedWeights ? new SharedArrayBuffer(4 * count) : new ArrayBuffer(4 * count));
  };

  /**
   * A [K,N] weight in the layout the kernels read, replacing the row-major copy (which the caller
   * drops): 8-column panels in the WebAssembly memory, 4-column panels, or row-major — in shared
   * memory whenever worker threads will read it.
   */
  prepareWeight(w: Tensor): Tensor | PackedMatrix {
    if (this.heap !== null) return PackedMatrix.pack(w, 8, this.dtype, this.allocPacked);
    const layout = KERNELS.find((k) => k.name === this.kernel)?.layout;
    if (layout !== "row-major") return PackedMatrix.pack(w, 4, "f32", this.allocPacked);
    if (!this.sharedWeights || WorkerPool.canShare(w.data)) return w;
    const shared = this.allocWeight(w.size);
    shared.set(w.data);
    return new Tensor(shared, w.shape);
  }

  /**
   * Room for the token embedding wte [V,d] as the tied LM head's B = wteᵀ [d,V], to be filled
   * with `setTransposedRows` piece by piece: 8-column panels for the SIMD kernels, else wte's own
   * rows as they are (panel width 1).
   */
  allocHead(vocab: number, d: number): PackedMatrix {
    const width = this.heap !== null ? 8 : 1;
    return PackedMatrix.empty(d, vocab, width, this.heap !== null ? this.dtype : "f32", this.allocPacked);
  }

  /** The TypeScript kernel for a product: the configured one if it fits B's layout, else the fastest for the shape. */
  private kernelFor(layout: Layout, m: number): KernelInfo {
    const forced = KERNELS.find((k) => k.name === this.kernel);
    if (forced !== undefined && forced.layout === layout) return forced;
    return plainKernel(layout, m);
  }

  /** Runs out[M,N] = a × B on the chosen kernel, across the worker threads when it pays; returns the kernel's name. */
  matmulInto(a: Float32Array, b: Tensor | PackedMatrix, out: Float32Array, m: number, k: number, n: number): string {
    const pool = this.readyPool !== null && m * k * n >= PARALLEL_MIN_MACS ? this.readyPool : null;
    const layout = layoutOf(b);
    if (layout === "simd-panels") {
      if (this.simd === null) throw new Error("a weight packed for the SIMD kernels reached an engine without them");
      return this.simd.run(a, b as PackedMatrix, out, m, k, n, pool, this.sequenceRows);
    }
    const kernel = this.kernelFor(layout, this.sequenceRows ? 1 : m);
    const data = b.data as Float32Array;
    if (pool !== null && WorkerPool.canShare(data)) pool.run(POOL_KERNELS.indexOf(kernel.fn!), a, data, out, m, k, n, 4);
    else kernel.fn!(a, data, out, m, k, n, 0, n);
    return kernel.name;
  }
}

/** The fastest TypeScript kernel for B's layout and the row count. */
function plainKernel(layout: Layout, m: number): KernelInfo {
  const name = layout === "row-major" ? "ikj" : layout === "transposed" ? "dot" : m < 4 ? "matvec" : "packed";
  return KERNELS.find((k) => k.name === name)!;
}

function layoutOf(b: Tensor | PackedMatrix): Layout {
  if (b instanceof Tensor) return "row-major";
  return b.panelWidth === 1 ? "transposed" : b.panelWidth === 4 ? "panels" : "simd-panels";
}

/**
 * out = a × B with the active engine's kernels, or — outside any engine (the article's 2×2
 * examples, a tensor a library user multiplies) — the plain TypeScript kernel for B's layout.
 */
export function matmulInto(a: Float32Array, b: Tensor | PackedMatrix, out: Float32Array, m: number, k: number, n: number): string {
  const engine = active.current;
  if (engine !== null) return engine.matmulInto(a, b, out, m, k, n);
  const layout = layoutOf(b);
  if (layout === "simd-panels") throw new Error("a weight packed for the SIMD kernels can only be multiplied inside its engine's run()");
  const kernel = plainKernel(layout, m);
  kernel.fn!(a, b.data as Float32Array, out, m, k, n, 0, n);
  return kernel.name;
}
