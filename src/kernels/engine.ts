import { Clock, type OpEntry, activeClock, unclocked } from "../clock/clock.ts";
import type { Platform } from "../platform/platform.ts";
import { firstNonFinite } from "../tensor/finite.ts";
import { Tensor } from "../tensor/tensor.ts";
import { Ambient } from "../util/ambient.ts";
import { WasmHeap, simdAvailable } from "../wasm/runtime.ts";
import { ARENA_BYTES, PassArena } from "./arena.ts";
import { matmulDot } from "./dot.ts";
import { matmulIkj } from "./ikj.ts";
import { matvecPacked } from "./matvec.ts";
import { matmulNaive } from "./naive.ts";
import { type BandPacker, PackedMatrix, type WeightDtype, bytesPerWeight, packedBytes } from "./packed-matrix.ts";
import { matmulPacked } from "./packed.ts";
import { type KernelRef, type Launcher, Plan, type Span, type Split, immediately } from "./plan.ts";
import { HALF_INFINITY } from "./q8.ts";
import { type KernelWisdom, SimdMatmul } from "./simd.ts";
import { PassTemplate, type Repeat } from "./replay.ts";
import { ThreadTeam } from "./threads.ts";
import { matmulTiled } from "./tiled.ts";

/** Signature every TypeScript matmul kernel shares: out[:, j0:j1] of a[M,K] × B, B in the kernel's layout. */
export type KernelFn = (a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number) => void;

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
  { name: "naive", layout: "row-major", fn: matmulNaive, about: "i-j-k, the reference" },
  { name: "ikj", layout: "row-major", fn: matmulIkj, about: "i-k-j, streams B's rows" },
  { name: "packed", layout: "panels", fn: matmulPacked, about: "4×4 register block over 4-column panels" },
  { name: "tiled", layout: "panels", fn: matmulTiled, about: "packed, cache-tiled (K 256, M 64)" },
  { name: "matvec", layout: "panels", fn: matvecPacked, about: "one row at a time over panels (decode)" },
  { name: "dot", layout: "transposed", fn: matmulDot, about: "dot products against Bᵀ rows (LM head)" },
  { name: "simd", layout: "simd-panels", fn: null, about: "WebAssembly SIMD, generated per K; fp32, bf16 or q8 weights" },
];

export interface EngineSettings {
  /** "auto" (fastest available per shape) or a kernel name. */
  kernel: string;
  /** Threads a forward pass runs on; the TypeScript kernels run on one. */
  threads: number;
  /** How weights are held; bf16 and q8 need the SIMD kernels. */
  dtype: WeightDtype;
}

/** What the last forward pass was, as the threads saw it. */
export interface PassShape {
  /** Kernel calls in the pass (each split into chunks among the threads). */
  calls: number;
  /** Barriers: the points where every thread waited for the others. */
  barriers: number;
  /** Threads that ran it. */
  threads: number;
  /** Milliseconds the calling thread spent recording it, and running it. */
  recordMs: number;
  runMs: number;
  /** Whether it was restored from earlier recordings rather than recorded (see replay.ts). */
  restored: boolean;
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
export class Engine implements Launcher {
  readonly kernel: string;
  readonly dtype: WeightDtype;
  /**
   * The ops only count: every op reports its cycles and bytes from its shapes, and no kernel runs
   * (weights are valueless, see PackedMatrix.valueless). How a pass is predicted without running
   * it (generate.ts --predict-only): the same forward pass, the same counts.
   */
  readonly countsOnly: boolean;
  /** The WebAssembly memory, when the SIMD kernels run this engine's products. */
  readonly heap: WasmHeap | null;
  private threadCount: number;
  /** The threads a pass runs on (the SIMD engine's; the TypeScript kernels run on the calling thread). */
  private team: ThreadTeam | null = null;
  private readonly simd: SimdMatmul | null;
  private disposed = false;
  /** Whether the running pass's rows are sequences of a decode batch (see pass). */
  private sequenceRows = false;
  /** Where op outputs live during a forward pass. */
  private readonly arena: PassArena;
  private inPass = false;
  /** The pass being recorded (SIMD engine, inside `pass`), else null: ops run as they are called. */
  private recording: Plan | null = null;
  /** The pass recorded for the thread team (SIMD engines: their kernels are what a plan calls). */
  private readonly plan: Plan | null;
  /** The decode steps being recorded, until they can be restored instead (see pass). */
  private template: PassTemplate | null = null;
  /** Where a rehearsed pass is recorded (see rehearse): never the threads' plan, which a late worker may still be reading. */
  private rehearsal: Plan | null = null;
  /** Outputs carved since the last op ended, while a pass is checked (firstNonFiniteOp). */
  private watched: Float32Array[] | null = null;
  /** The last pass's calls and barriers (for --verbose). */
  lastPass: PassShape = { calls: 0, barriers: 0, threads: 1, recordMs: 0, runMs: 0, restored: false };

  /** `stallMs`: how long a pass waits on a thread that makes no progress before it gives up (see ThreadTeam). */
  constructor(readonly platform: Platform, options: Partial<EngineSettings> & { countsOnly?: boolean } = {}, private readonly stallMs = 30_000) {
    this.countsOnly = options.countsOnly === true;
    const kernel = options.kernel ?? "auto";
    const threads = options.threads ?? platform.cores();
    const dtype = options.dtype ?? "f32";
    if (kernel !== "auto" && !KERNELS.some((k) => k.name === kernel)) {
      throw new Error(`unknown kernel "${kernel}"; choose auto or one of: ${KERNELS.map((k) => k.name).join(", ")}`);
    }
    Engine.checkThreads(threads);
    if (dtype !== "f32" && dtype !== "bf16" && dtype !== "q8") throw new Error(`dtype must be f32, bf16 or q8, got ${String(dtype)}`);
    if (kernel === "simd" && !simdAvailable) throw new Error("this runtime has no WebAssembly SIMD: choose a TypeScript kernel");
    const simd = !this.countsOnly && (kernel === "simd" || (kernel === "auto" && simdAvailable));
    if (dtype !== "f32" && !simd && !this.countsOnly) {
      throw new Error(simdAvailable
        ? `${dtype} weights need the WebAssembly SIMD kernels (kernel auto or simd), not ${kernel}`
        : `${dtype} weights need WebAssembly SIMD, which this runtime lacks: use --dtype f32`);
    }
    this.kernel = kernel;
    this.dtype = dtype;
    this.threadCount = threads;
    this.heap = simd ? new WasmHeap() : null;
    this.simd = this.heap === null ? null : new SimdMatmul(this.heap);
    this.plan = this.heap === null ? null : new Plan();
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

  /** Changes the thread count from the next pass on (the weights serve any count). */
  setThreads(threads: number): void {
    Engine.checkThreads(threads);
    if (threads === this.threadCount) return;
    void this.team?.close();
    this.team = null;
    this.template = null;
    this.threadCount = threads;
  }

  /** The SIMD engine's threads, started on first use. */
  private threadTeam(): ThreadTeam {
    if (this.heap === null) throw new Error("the TypeScript kernels run on the calling thread");
    return (this.team ??= new ThreadTeam(this.platform, this.threadCount, this.heap.memory, this.stallMs));
  }

  /**
   * Starts the threads and resolves once they all run; until then passes run on the calling
   * thread alone. (A page's workers start only after their creator yields to its event loop,
   * so threads cannot be started and used in one synchronous stretch.)
   */
  async ready(): Promise<void> {
    if (this.disposed || this.threadCount === 1 || this.heap === null) return;
    await this.threadTeam().started;
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
   * `repeat`: the pass is a decode step, which may be restored from the recordings of the steps
   * before it rather than recorded (replay.ts).
   */
  pass<T>(fn: () => T, sequences = false, repeat?: Repeat): T {
    return this.inPassScope(sequences, () => {
      const clock = activeClock();
      if (this.plan === null || this.watched !== null) return this.run(fn);
      // Recorded (or restored: replay.ts), and run as one parallel region while it is recorded (see plan.ts and threads.ts).
      const team = this.threadTeam();
      const plan = this.plan;
      const template = repeat === undefined ? null : this.templateFor(repeat, clock !== null);
      const restore = template !== null && template.canRestore(repeat!.position, this.memoryLayout());
      team.beginPass(plan);
      plan.clear();
      this.recording = plan;
      clock?.beginRecording({ position: () => plan.nodes });
      const firstEntry = clock?.entries.length ?? 0;
      let result: T;
      const recordStart = performance.now();
      try {
        if (restore) {
          this.run(repeat!.first);
          result = template.restore(plan, repeat!.position, clock, clock?.entries.slice(firstEntry) ?? []) as T;
          repeat!.skipped();
          team.publish(plan);
        } else {
          result = this.run(fn);
        }
      } catch (err) {
        // The threads finish what was published and leave; the error stands.
        team.cancel();
        throw err;
      } finally {
        this.recording = null;
      }
      const runStart = performance.now();
      let ran;
      try {
        ran = team.run(plan, clock !== null);
      } catch (err) {
        void this.dispose();
        throw err;
      }
      if (template !== null && !restore) template.observe(repeat!.position, this.memoryLayout(), plan, clock?.entries.slice(firstEntry) ?? [], result);
      clock?.settle(ran.stamps, ran.nodes);
      this.lastPass = { calls: ran.nodes, barriers: plan.barriers, threads: team.lastParticipants, recordMs: runStart - recordStart, runMs: performance.now() - runStart, restored: restore };
      return result;
    });
  }

  /** Runs fn as a forward pass: one at a time, its outputs carved from the arena anew. */
  private inPassScope<T>(sequences: boolean, fn: () => T): T {
    if (this.inPass) throw new Error("a forward pass is already running on this engine");
    this.inPass = true;
    this.sequenceRows = sequences;
    this.arena.begin();
    try {
      return fn();
    } finally {
      this.inPass = false;
      this.sequenceRows = false;
    }
  }

  /**
   * Records the pass `fn` makes and throws the recording away, running none of its kernels: the
   * arena's slabs for outputs that large are made now (and their pages faulted in, 70 ms for a
   * 128-token prefill of GPT-2 small on this project's VM, more than a third of the pass) and
   * its products' kernels are tuned, so that when the pass runs for real, under a clock, it runs
   * as a warm one does. Nothing else is computed but the op a pass runs as it is recorded (its
   * first TypeScript op), nothing reaches the threads, and no clock counts it.
   */
  rehearse(fn: () => unknown, sequences = false): void {
    if (this.plan === null) return;
    this.inPassScope(sequences, () => {
      const plan = (this.rehearsal ??= new Plan(64));
      plan.clear();
      this.recording = plan;
      try {
        unclocked(() => this.run(fn));
      } finally {
        this.recording = null;
        plan.clear();
      }
    });
  }

  /** The recordings of the kind of pass `repeat` describes (one kind at a time: a new kind starts anew). */
  private templateFor(repeat: Repeat, clocked: boolean): PassTemplate {
    if (this.template === null || !this.template.matches(repeat, clocked)) this.template = new PassTemplate(repeat.objects, repeat.signature, clocked);
    return this.template;
  }

  /** Changes whenever an output slab or a scratch block is placed anew: a pass restored in another layout would read and write the old addresses. */
  private memoryLayout(): number {
    return this.arena.slabsPlaced + (this.heap?.scratchPlaced ?? 0);
  }

  /** Passes so far that ran on the calling thread alone, because with the machine as busy as it was that was faster than all the threads. */
  get alonePasses(): number {
    return this.team?.alonePasses ?? 0;
  }

  /**
   * Calls a WebAssembly kernel on this engine's memory: now, over all its work, or inside a pass,
   * as a node of the pass's plan split into chunks for the threads. `reads` and `writes`: the
   * bytes it touches (the plan puts barriers by them; weights, never written, may be left out).
   */
  launch(ref: KernelRef, args: readonly number[], split: Split, reads: readonly Span[], writes: readonly Span[]): boolean {
    const plan = this.recording;
    if (plan === null) return immediately.launch(ref, args, split, reads, writes);
    const joined = plan.kernel(plan.functionIndex(ref), args, split, reads, writes, this.team?.participants ?? 1);
    if (plan === this.plan) this.team?.publish(plan);
    return joined;
  }

  /** TypeScript work on operands in this engine's memory: now, or inside a pass, in its place in the plan (on the calling thread). */
  compute(fn: () => void): void {
    if (this.countsOnly) return;
    const plan = this.recording;
    if (plan === null) fn();
    else if (plan.nodes === 0) plan.ranFirst(fn);
    else {
      plan.typescript(fn);
      if (plan === this.plan) this.team?.publish(plan);
    }
  }

  /** Inside a pass: a new transformer block starts (only its input crosses from the blocks before). */
  nextBlock(): void {
    if (this.inPass) this.arena.nextBlock();
  }

  /**
   * Room for an op's output: zeroed, as `new Float32Array(n)` gives, or from the arena inside a
   * pass. In a recorded pass it is not zeroed — zeros written while recording would be overwritten
   * by the calls recorded before it, which run first — and every kernel writes its whole output
   * but the scores and weights that causal attention masks, which no op reads.
   */
  floats(n: number): Float32Array {
    const view = this.inPass ? this.arena.floats(n, this.recording === null) : new Float32Array(n);
    this.watched?.push(view);
    return view;
  }

  /** Index of the first NaN or ±∞ in `values`, or −1: in WebAssembly where they lie in its memory (a pass's logits). */
  firstNonFinite(values: Float32Array): number {
    return this.heap !== null && this.heap.holds(values) ? this.heap.smallOps().exports.firstNonFinite(values.byteOffset, values.length) : firstNonFinite(values);
  }

  /**
   * Runs a pass op by op on the calling thread (not recorded), checking each op's output as the op
   * ends; returns the clock entry of the first op whose output holds a NaN or ±∞, or null. How a
   * run that went non-finite names where it did.
   */
  firstNonFiniteOp(fn: () => unknown, sequences: boolean): OpEntry | null {
    const clock = new Clock();
    const watched: Float32Array[] = [];
    let found: OpEntry | null = null;
    clock.afterOp = (entry) => {
      if (found === null && watched.some((view) => firstNonFinite(view) >= 0)) found = entry;
      watched.length = 0;
    };
    this.watched = watched;
    try {
      clock.run(() => this.pass(fn, sequences));
    } finally {
      this.watched = null;
    }
    return found;
  }

  /** Stops the threads and drops the WebAssembly memory; the engine cannot run anything after. */
  async dispose(): Promise<void> {
    this.disposed = true;
    const team = this.team;
    this.team = null;
    await team?.close();
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

  /** What the pass arena may still take of memoryLeft (its slabs, once a pass has made them, are no longer left). */
  arenaBytesToCome(): number {
    return this.heap === null ? 0 : Math.max(0, ARENA_BYTES - this.arena.bytes);
  }

  /** The SIMD kernels chosen per product shape (a machine profile stores them). */
  kernelWisdom(): KernelWisdom {
    return this.simd?.wisdom() ?? {};
  }

  adoptKernelWisdom(wisdom: KernelWisdom): void {
    this.template = null;
    this.simd?.adopt(wisdom);
  }

  /**
   * A Float32Array for a parameter that is not a matmul's B (biases, layer norms, wpe): in the
   * kernels' memory for the SIMD kernels, else in shared memory when threads will read it.
   */
  allocWeight(floats: number): Float32Array {
    return this.heap === null ? new Float32Array(floats) : this.heap.f32View(this.heap.allocate(4 * floats), floats);
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

  /** q8 weights packed by the SIMD packer, from a copy of each band in the engine's memory. */
  private readonly packQ8Band: BandPacker = (band, rowFloats, columns, record, panelStride) => {
    const heap = this.heap!;
    const at = heap.scratch("q8 band", 4 * band.length);
    heap.write(at, band);
    return heap.smallOps().exports.packQ8Band(at, rowFloats, columns, record, panelStride) < HALF_INFINITY;
  };

  private readonly allocPacked = (count: number, dtype: WeightDtype): Float32Array | Uint16Array | Int8Array => {
    const heap = this.heap;
    if (heap !== null) {
      if (dtype === "f32") return heap.f32View(heap.allocate(4 * count), count);
      if (dtype === "bf16") return heap.u16View(heap.allocate(2 * count), count);
      return heap.i8View(heap.allocate(count), count);
    }
    return new Float32Array(count);
  };

  /**
   * A [K,N] weight in the layout the kernels read, replacing the row-major copy (which the caller
   * drops): 8-column panels in the WebAssembly memory, 4-column panels, or row-major.
   */
  prepareWeight(w: Tensor): Tensor | PackedMatrix {
    if (this.heap !== null) return PackedMatrix.pack(w, 8, this.dtype, this.allocPacked, this.dtype === "q8" ? this.packQ8Band : undefined);
    const layout = KERNELS.find((k) => k.name === this.kernel)?.layout;
    return layout === "row-major" ? w : PackedMatrix.pack(w, 4, "f32", this.allocPacked);
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

  /** Runs out[M,N] = a × B on the chosen kernel (inside a pass, across the threads); returns the kernel's name. */
  matmulInto(a: Float32Array, b: Tensor | PackedMatrix, out: Float32Array, m: number, k: number, n: number): string {
    if (this.countsOnly) return "";
    const layout = layoutOf(b);
    if (layout === "simd-panels") {
      if (this.simd === null) throw new Error("a weight packed for the SIMD kernels reached an engine without them");
      return this.simd.run(this, a, b as PackedMatrix, out, m, k, n, this.sequenceRows);
    }
    const kernel = this.kernelFor(layout, this.sequenceRows ? 1 : m);
    this.compute(() => kernel.fn!(a, b.data as Float32Array, out, m, k, n, 0, n));
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
