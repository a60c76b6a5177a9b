import { type FunctionDef, V128, emitModule, op } from "./emitter.ts";
import { scoresKernel, valuesKernel } from "./attention-kernels.ts";
import { geluKernel } from "./gelu-kernel.ts";
import { packQ8Kernel } from "./pack-q8-kernel.ts";
import { quantizeKernel } from "./quantize-kernel.ts";
import { addKernel, copyKernel, firstNonFiniteKernel, layerNormKernel, scaleKernel, softmaxKernel } from "./small-op-kernels.ts";
import { type WeightType, matmulKernel } from "./kernels.ts";
import { type DotReading, type RelaxedDot, q8Kernel } from "./q8-kernels.ts";

/*
 * Each engine owns one shared WebAssembly memory (a WasmHeap): the weights in the kernels'
 * layout, the KV caches, and the scratch the activations pass through. The kernels, compiled per
 * shape once per process (compiled code is immutable, so it is shared), are instantiated on each
 * heap and run on it from this thread and from the workers. wasm32 addresses 4 GiB at most:
 * larger models need bf16 or the TypeScript kernels.
 */

const PAGE = 65536;
const MAX_PAGES = 65536;

const probe = (fn: FunctionDef) => WebAssembly.validate(emitModule([fn], MAX_PAGES) as BufferSource);

/** Whether this runtime has WebAssembly SIMD (and shared memory, which the kernels' memory is). */
export const simdAvailable = typeof SharedArrayBuffer === "function" && probe({ name: "t", params: [], results: [], locals: [V128], body: [...op.v128Zero, ...op.localSet(0)] });

const relaxedProbe = (): boolean => probe({
  name: "t", params: [], results: [], locals: [V128],
  body: [...op.v128Zero, ...op.v128Zero, ...op.v128Zero, ...op.f32x4RelaxedMadd, ...op.localSet(0)],
});

let enableRelaxed: () => boolean = () => false;
let relaxed: boolean | undefined;

/** How this platform turns relaxed SIMD on where it is off by default (Node 20 needs a V8 flag). */
export function enableRelaxedSimdWith(enable: () => boolean): void {
  enableRelaxed = enable;
}

/** Whether f32x4.relaxed_madd validates here (after the platform enabled it where it can). */
export function relaxedAvailable(): boolean {
  relaxed ??= simdAvailable && (relaxedProbe() || (enableRelaxed() && relaxedProbe()));
  return relaxed;
}

let relaxedDots: RelaxedDot[] | undefined;

/**
 * How one form of the relaxed integer dot product reads its second operand's bytes with the top
 * bit set (x86: unsigned, Arm: signed; the q8 weights are stored so), checked on one vector;
 * null where it computes neither.
 */
function readingOf(form: RelaxedDot["form"]): DotReading | null {
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 1, shared: true });
  // out(32) = dot(a(0), b(16)) + acc(32), lane by lane
  const dot = form === "add"
    ? [...op.i32Const(16), ...op.v128Load(0), ...op.i32Const(32), ...op.v128Load(0), ...op.i32x4RelaxedDotI8x16I7x16AddS]
    : [...op.i32Const(16), ...op.v128Load(0), ...op.i16x8RelaxedDotI8x16I7x16S, ...op.v128ConstI32x4(0x00010001), ...op.i32x4DotI16x8S, ...op.i32Const(32), ...op.v128Load(0), ...op.i32x4Add];
  const body = [...op.i32Const(32), ...op.i32Const(0), ...op.v128Load(0), ...dot, ...op.v128Store(0)];
  const module = new WebAssembly.Module(emitModule([{ name: "dot", params: [], results: [], locals: [], body }], 1) as BufferSource);
  // a: activations (±63); b: stored weights, bytes on both sides of 128
  const a = Int8Array.of(1, -2, 3, -4, 5, 6, -63, 63, -9, 10, 11, 12, 13, 14, 15, 16);
  const b = Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 127, 129, 200, 255, 128, 13, 14, 15, 1);
  new Int8Array(memory.buffer).set(a, 0);
  new Uint8Array(memory.buffer).set(b, 16);
  const sums = new Int32Array(memory.buffer, 32, 4);
  sums.set([100, 200, 300, 400]);
  (new WebAssembly.Instance(module, { env: { memory } }).exports.dot as () => void)();
  const expected = (byte: (i: number) => number) => [0, 1, 2, 3].map((i) => 100 * (i + 1) + [0, 1, 2, 3].reduce((s, t) => s + a[4 * i + t] * byte(4 * i + t), 0));
  const matches = (want: number[]) => want.every((v, i) => sums[i] === v);
  return matches(expected((i) => b[i])) ? "unsigned" : matches(expected((i) => (b[i] << 24) >> 24)) ? "signed" : null;
}

/**
 * The relaxed integer dot products that compute right here, the one-instruction form first:
 * Node 20's V8 (11.3, relaxed SIMD behind a flag) gets i32x4.relaxed_dot_i8x16_i7x16_add_s wrong
 * (twice the dot product, the accumulator dropped: in its baseline compiler, Liftoff, which every
 * function starts in; with --no-liftoff the probe passes) and its i16 form right; no relaxed SIMD, none.
 */
export function relaxedDotForms(): RelaxedDot[] {
  relaxedDots ??= !relaxedAvailable() ? [] : (["add", "pairs"] as const).flatMap((form) => {
    const reading = readingOf(form);
    return reading === null ? [] : [{ reading, form }];
  });
  return relaxedDots;
}

/** The relaxed integer dot product the q8 kernels use; null where none works (they use i32x4.dot_i16x8_s). */
export const relaxedIntegerDot = (): RelaxedDot | null => relaxedDotForms()[0] ?? null;

/** Whether the q8 kernels can use a relaxed integer dot product here. */
export const relaxedIntegerDotWorks = (): boolean => relaxedIntegerDot() !== null;

/** The exported kernels of one module: the matmul for float32, bfloat16 and q8 weights. */
export const WASM_FUNCTIONS = ["matmul_f32", "matmul_bf16", "matmul_q8"] as const;
export type WasmFunction = (typeof WASM_FUNCTIONS)[number];

interface Compiled {
  /** Index of this module in the process: the same on every thread. */
  id: number;
  module: WebAssembly.Module;
}

const compiled = new Map<string, Compiled>();

function compile(key: string, fns: () => FunctionDef[]): Compiled {
  let found = compiled.get(key);
  if (found === undefined) {
    found = { id: compiled.size, module: new WebAssembly.Module(emitModule(fns(), MAX_PAGES) as BufferSource) };
    compiled.set(key, found);
  }
  return found;
}

/**
 * A compiled module instantiated on one heap: its id in the process and the module (what another
 * thread needs to instantiate it on the same memory), and its functions.
 */
export interface Instance<E = Record<string, (...args: number[]) => void>> {
  id: number;
  module: WebAssembly.Module;
  exports: E;
}

export interface KernelModule extends Instance<Record<WasmFunction, (...args: number[]) => void>> {
  k: number;
  relaxed: boolean;
}

/** src/wasm/attention-kernels.ts: addresses, then counts, then the query rows [i0, i1) to do. */
export interface AttentionFns {
  scores(q: number, keys: number, out: number, tq: number, past: number, i0: number, i1: number): void;
  values(p: number, values: number, out: number, tq: number, past: number, i0: number, i1: number): void;
}

/** src/wasm/small-op-kernels.ts: addresses, then counts. */
export interface SmallOps {
  add(a: number, b: number, out: number, rows: number, cols: number, bStep: number): void;
  scale(a: number, out: number, n: number, s: number): void;
  layerNorm(x: number, g: number, b: number, out: number, rows: number, cols: number, eps: number): void;
  softmax(src: number, out: number, heads: number, tq: number, tk: number, past: number): void;
  copy(src: number, srcStep: number, dst: number, dstStep: number, rows: number, bytes: number): void;
  firstNonFinite(a: number, n: number): number;
  /** src/wasm/gelu-kernel.ts */
  gelu(input: number, out: number, n: number): void;
  /** Activations to q8, 32 floats a block (src/wasm/quantize-kernel.ts). */
  quantize(src: number, bytes: number, scales: number, sums: number, blocks: number): void;
  /** Weights to q8 block records, a band of 32 rows (src/wasm/pack-q8-kernel.ts). */
  packQ8Band(src: number, rowFloats: number, columns: number, dst: number, panelStride: number): number;
}

export class WasmHeap {
  readonly memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
  private top = 1024; // keep address 0 unused
  /** Blocks given back, by size, for the next allocation of exactly that size (KV caches come and go). */
  private readonly freed = new Map<number, number[]>();
  private readonly releaseOnCollect = new FinalizationRegistry<[number, number]>(([address, bytes]) => this.release(address, bytes));
  /** The buffers `memory.buffer` has been (a new one after every grow): how views into it are recognised. */
  private readonly buffers = new WeakSet<ArrayBufferLike>();
  private readonly scratchSlots = new Map<string, { address: number; bytes: number }>();
  private readonly instances = new Map<string, unknown>();
  /**
   * The whole memory as floats and as halves, renewed after each grow. Views are cut from these:
   * reading `memory.buffer` of a shared memory costs a synchronisation each time (in Chromium it
   * showed as futex waits on every product), and only this thread grows the memory.
   */
  private f32All = new Float32Array(0);
  private u16All = new Uint16Array(0);
  private u8All = new Uint8Array(0);

  constructor() {
    this.renewViews();
  }

  private renewViews(): void {
    const buffer = this.memory.buffer;
    this.buffers.add(buffer);
    this.f32All = new Float32Array(buffer);
    this.u16All = new Uint16Array(buffer);
    this.u8All = new Uint8Array(buffer);
  }

  private grow(pages: number): void {
    this.memory.grow(pages);
    this.renewViews();
  }

  /** Bytes the memory can still hand out. */
  available(): number {
    return MAX_PAGES * PAGE - Math.ceil(this.top / 16) * 16;
  }

  /**
   * Grows the memory now so that allocating `bytes` more (in `blocks` blocks) will not: the first
   * pass after a grow runs markedly slower (every thread must pick up the new size), so a timed
   * run reserves before it starts. Pages not yet touched cost no resident memory.
   */
  reserve(bytes: number, blocks: number): void {
    const end = Math.ceil(this.top / 16) * 16 + bytes + 16 * blocks;
    const pages = Math.ceil(end / PAGE) - this.f32All.length / (PAGE / 4);
    if (pages > 0 && end <= MAX_PAGES * PAGE) this.grow(pages);
  }

  /** Reserves `bytes` (16-byte aligned) and returns the address. */
  allocate(bytes: number): number {
    const reuse = this.freed.get(bytes)?.pop();
    if (reuse !== undefined) return reuse;
    const at = Math.ceil(this.top / 16) * 16;
    const end = at + bytes;
    if (end > MAX_PAGES * PAGE) throw new Error(`WebAssembly memory is full: ${(end / 2 ** 30).toFixed(2)} GiB asked of 4 GiB; use --dtype bf16 or a TypeScript kernel (--kernel packed)`);
    const pages = Math.ceil(end / PAGE) - this.f32All.length / (PAGE / 4);
    if (pages > 0) this.grow(pages);
    this.top = end;
    return at;
  }

  /** Returns a block to be reused by a later allocation of the same size. */
  release(address: number, bytes: number): void {
    const list = this.freed.get(bytes) ?? [];
    list.push(address);
    this.freed.set(bytes, list);
  }

  /** A block that goes back to the allocator once `owner` is garbage-collected. */
  allocateFor(owner: object, bytes: number): number {
    const address = this.allocate(bytes);
    this.releaseOnCollect.register(owner, [address, bytes]);
    return address;
  }

  /** Floats at a 4-byte-aligned address (divided, not shifted: a signed shift turns addresses past 2 GiB negative). */
  f32View(address: number, floats: number): Float32Array {
    return this.f32All.subarray(address / 4, address / 4 + floats);
  }

  u16View(address: number, count: number): Uint16Array {
    return this.u16All.subarray(address / 2, address / 2 + count);
  }

  bytesView(address: number, count: number): Uint8Array {
    return this.u8All.subarray(address, address + count);
  }

  i8View(address: number, count: number): Int8Array {
    return new Int8Array(this.u8All.buffer, address, count);
  }

  i32View(address: number, count: number): Int32Array {
    return new Int32Array(this.u8All.buffer, address, count);
  }

  /** Copies floats into the memory at a 4-byte-aligned address (no view made). */
  write(address: number, values: Float32Array): void {
    this.f32All.set(values, address / 4);
  }

  /** Whether a typed array is a view into this memory (its byteOffset is then its address). */
  holds(view: ArrayBufferView): boolean {
    return this.buffers.has(view.buffer);
  }

  /** Scratch blocks placed so far: a block moves only when its slot grows (see Engine.memoryLayout). */
  scratchPlaced = 0;

  /** A scratch block for `slot` of at least `bytes`, reused call after call (grown when too small). */
  scratch(slot: string, bytes: number): number {
    let s = this.scratchSlots.get(slot);
    if (s === undefined || s.bytes < bytes) {
      this.scratchPlaced++;
      if (s !== undefined) this.release(s.address, s.bytes);
      s = { address: 0, bytes: Math.max(bytes, 2 * (s?.bytes ?? 0)) };
      s.address = this.allocate(s.bytes);
      this.scratchSlots.set(slot, s);
    }
    return s.address;
  }

  private instance<E>(key: string, fns: () => FunctionDef[]): Instance<E> {
    let found = this.instances.get(key) as Instance<E> | undefined;
    if (found === undefined) {
      const c = compile(key, fns);
      found = { id: c.id, module: c.module, exports: new WebAssembly.Instance(c.module, { env: { memory: this.memory } }).exports as E };
      this.instances.set(key, found);
    }
    return found;
  }

  /**
   * The matmul kernels specialised for K; a relaxed module's q8 kernel uses the runtime's relaxed
   * integer dot product (the i16 one where none works), or the form given (to test and bench both).
   */
  kernelsFor(k: number, relaxed = relaxedAvailable(), dot = relaxed ? relaxedIntegerDot() : null): KernelModule {
    const fns = () => [...(["f32", "bf16"] as WeightType[]).map((t) => matmulKernel(k, t, relaxed)), q8Kernel(k, dot)];
    return { ...this.instance<KernelModule["exports"]>(`matmul ${k}/${relaxed}/${dot?.form ?? "i16"}`, fns), k, relaxed };
  }

  /** Attention's two products for width d and `heads` heads. */
  attentionKernelsFor(d: number, heads: number, relaxed = relaxedAvailable()): Instance<AttentionFns> {
    return this.instance(`attention ${d}/${heads}/${relaxed}`, () => [scoresKernel(d, heads, relaxed), valuesKernel(d, heads, relaxed)]);
  }

  /** Add, scale, layer norm, causal softmax, row copies, GELU, the q8 quantizer of activations and the q8 packer of weights. */
  smallOps(): Instance<SmallOps> {
    return this.instance("small ops", () => [addKernel(), scaleKernel(), layerNormKernel(), softmaxKernel(), copyKernel(), firstNonFiniteKernel(), geluKernel(), quantizeKernel(), packQ8Kernel()]);
  }
}
