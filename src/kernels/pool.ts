import { matmulDot } from "./dot.ts";
import { matmulIkj } from "./ikj.ts";
import { matvecPacked } from "./matvec.ts";
import { matmulNaive } from "./naive.ts";
import { matmulPacked } from "./packed.ts";
import { matmulTiled } from "./tiled.ts";
import type { Platform, PoolThread } from "../platform/platform.ts";
import { type KernelModule, WASM_FUNCTIONS, type WasmFunction } from "../wasm/runtime.ts";

/** Signature every matmul kernel shares: out[:, j0:j1] of a[M,K] × B, B in the kernel's layout. */
export type KernelFn = (a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, j0: number, j1: number) => void;

/** Kernels the workers can run, by index. Workers get their source text, so each must be self-contained. */
export const POOL_KERNELS: readonly KernelFn[] = [matmulNaive, matmulIkj, matmulPacked, matmulTiled, matvecPacked, matmulDot];

// Control block layout (Int32 slots in shared memory).
const SEQ = 0; // bumped once per job; workers wait for it to change
const PENDING = 1; // workers still busy with the current job
const STOP = 2;
const FAILED = 3;
const KIND = 4; // 0: a TypeScript kernel on registered buffers; 1: a WebAssembly kernel on addresses; 2: a message waits
const JOB = 5; // kind 0: kernel, m, k, n, aId, bId, bOffset, outId · kind 1: module, function, a, b, out, m, ldo
const ACKS = 14; // registrations handled, summed over the workers
const RANGES = 16; // j0, j1 per worker
const SPIN = 200_000; // polls before sleeping: waking a sleeping thread costs tens of µs
const RECEIVE = 2;

/*
 * A worker's life, the same source on worker_threads and Web Workers. It waits for jobs in a
 * synchronous loop (spinning, then Atomics.wait), so a job starts within microseconds. A page
 * has no synchronous receive, so a registration (a buffer, a kernel module) is a message plus a
 * job of kind RECEIVE: the worker leaves its loop, its event loop delivers the message, and the
 * handler registers, acknowledges and re-enters the loop. The pool waits for every worker's
 * acknowledgement before it hands out a job that needs what was registered.
 */
const WORKER_MAIN = `(listen) => {
  const kernels = [${POOL_KERNELS.map((k) => k.toString()).join(",\n")}];
  const wasmNames = ${JSON.stringify(WASM_FUNCTIONS)};
  const buffers = [];
  const wasm = [];
  let control = null;
  let index = 0;
  let seen = 0;
  const work = () => {
    try {
      const j0 = control[${RANGES} + 2 * index], j1 = control[${RANGES} + 2 * index + 1];
      if (j0 < j1 && control[${KIND}] === 0) {
        const [kernel, m, k, n, aId, bId, bOffset, outId] = control.subarray(${JOB}, ${JOB} + 8);
        kernels[kernel](new Float32Array(buffers[aId]), new Float32Array(buffers[bId], bOffset * 4), new Float32Array(buffers[outId]), m, k, n, j0, j1);
      } else if (j0 < j1) {
        const [mod, fn, a, b, out, m, ldo] = control.subarray(${JOB}, ${JOB} + 7);
        wasm[mod][wasmNames[fn]](a, b, out, m, ldo, j0, j1);
      }
    } catch (err) {
      Atomics.store(control, ${FAILED}, 1);
    }
    if (Atomics.sub(control, ${PENDING}, 1) === 1) Atomics.notify(control, ${PENDING});
  };
  const loop = () => {
    for (;;) {
      for (let s = 0; s < ${SPIN} && Atomics.load(control, ${SEQ}) === seen; s++);
      while (Atomics.load(control, ${SEQ}) === seen) Atomics.wait(control, ${SEQ}, seen);
      seen = Atomics.load(control, ${SEQ});
      if (Atomics.load(control, ${STOP}) === 1 || control[${KIND}] === ${RECEIVE}) return;
      work();
    }
  };
  listen((d) => {
    if (d.control) {
      control = d.control;
      index = d.index;
    } else if (d.module) wasm[d.id] = new WebAssembly.Instance(d.module, { env: { memory: d.memory } }).exports;
    else buffers[d.id] = d.buffer;
    Atomics.add(control, ${ACKS}, 1);
    Atomics.notify(control, ${ACKS});
    if (Atomics.load(control, ${STOP}) !== 1) loop();
  });
}`;

/**
 * Worker threads for matmul, started once and reused. Weights stay where they are — in shared
 * memory, registered once per buffer (or in the WebAssembly memory, which every worker
 * instantiates the kernel modules on); only the activations are copied into a shared scratch
 * area per call. Work is split by output columns, and the calling thread takes a share too.
 */
export class WorkerPool {
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * (RANGES + 2 * 64)));
  private readonly workers: PoolThread[] = [];
  private readonly ids = new Map<ArrayBufferLike, number>();
  private readonly wasmModules = new Set<number>();
  private acks: number;
  /** Settles once every worker runs: a page's worker starts only after its creator yields, so this is awaited, never blocked on. */
  readonly started: Promise<void>;
  private scratchA: Float32Array = new Float32Array(0);
  private scratchOut: Float32Array = new Float32Array(0);

  /** `memory`: the WebAssembly memory the kernel modules run on (the engine's heap), if any. */
  constructor(platform: Platform, readonly threads: number, private readonly memory: WebAssembly.Memory | null) {
    for (let w = 0; w < threads - 1; w++) {
      const worker = platform.startThread(WORKER_MAIN);
      worker.postMessage({ control: this.control, index: w });
      this.workers.push(worker);
    }
    this.acks = this.workers.length;
    this.started = this.allAcknowledged();
  }

  /** Polls with a timer rather than Atomics.waitAsync, which does not keep Node's event loop alive. */
  private async allAcknowledged(): Promise<void> {
    while (Atomics.load(this.control, ACKS) < this.acks) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  /** Sends every worker a registration, calls them out of their loops to take it, and waits until all have. */
  private register(message: object): void {
    for (const w of this.workers) w.postMessage(message);
    this.acks += this.workers.length;
    this.control[KIND] = RECEIVE;
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
    for (let now; (now = Atomics.load(this.control, ACKS)) < this.acks; ) Atomics.wait(this.control, ACKS, now);
  }

  /** Whether B can be handed to the workers as it is (it lives in shared memory). */
  static canShare(b: Float32Array): boolean {
    return b.buffer instanceof SharedArrayBuffer;
  }

  private idOf(buffer: ArrayBufferLike): number {
    let id = this.ids.get(buffer);
    if (id === undefined) {
      id = this.ids.size;
      this.ids.set(buffer, id);
      this.register({ id, buffer });
    }
    return id;
  }

  private scratch(current: Float32Array, floats: number): Float32Array {
    return current.length >= floats ? current : new Float32Array(new SharedArrayBuffer(4 * Math.max(floats, 2 * current.length)));
  }

  /** out[M,N] = a × B with TypeScript kernel `kernel`, columns split across the threads in multiples of `align`. */
  run(kernel: number, a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number, align: number): void {
    this.scratchA = this.scratch(this.scratchA, m * k);
    this.scratchOut = this.scratch(this.scratchOut, m * n);
    const sa = this.scratchA;
    const so = this.scratchOut;
    sa.set(a.subarray(0, m * k));
    // Registering a new buffer is itself a hand-off (of kind RECEIVE): the ids come first.
    const job = [kernel, m, k, n, this.idOf(sa.buffer), this.idOf(b.buffer), b.byteOffset / 4, this.idOf(so.buffer)];
    this.control[KIND] = 0;
    this.control.set(job, JOB);
    this.dispatch(n, align, (j0, j1) => POOL_KERNELS[kernel](sa, b, so, m, k, n, j0, j1));
    out.set(so.subarray(0, m * n));
  }

  /** A WebAssembly kernel on addresses in the shared memory, columns split in whole panels of `align`. */
  runWasm(module: KernelModule, fn: WasmFunction, a: number, b: number, out: number, m: number, ldo: number, n: number, align: number): void {
    if (!this.wasmModules.has(module.id)) {
      this.register({ id: module.id, module: module.module, memory: this.memory });
      this.wasmModules.add(module.id);
    }
    this.control[KIND] = 1;
    this.control.set([module.id, WASM_FUNCTIONS.indexOf(fn), a, b, out, m, ldo], JOB);
    const f = module.exports[fn];
    this.dispatch(n, align, (j0, j1) => f(a, b, out, m, ldo, j0, j1));
  }

  /** Hands the workers their column ranges, does the first range here, waits for the rest. */
  private dispatch(n: number, align: number, own: (j0: number, j1: number) => void): void {
    const c = this.control;
    const units = Math.ceil(n / align);
    const cut = (t: number) => Math.min(n, Math.round((units * t) / this.threads) * align);
    for (let w = 0; w < this.workers.length; w++) {
      c[RANGES + 2 * w] = cut(w + 1);
      c[RANGES + 2 * w + 1] = cut(w + 2);
    }
    Atomics.store(c, FAILED, 0);
    Atomics.store(c, PENDING, this.workers.length);
    Atomics.add(c, SEQ, 1);
    Atomics.notify(c, SEQ);
    own(0, cut(1));
    for (let s = 0; s < SPIN && Atomics.load(c, PENDING) !== 0; s++);
    for (let left; (left = Atomics.load(c, PENDING)) !== 0; ) Atomics.wait(c, PENDING, left);
    if (Atomics.load(c, FAILED) === 1) throw new Error("a matmul worker thread failed");
  }

  async close(): Promise<void> {
    Atomics.store(this.control, STOP, 1);
    Atomics.add(this.control, SEQ, 1);
    Atomics.notify(this.control, SEQ);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
