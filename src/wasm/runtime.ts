import { runtimeInfo } from "../util/js-runtime.ts";
import { type FunctionDef, V128, emitModule, op } from "./emitter.ts";
import { scoresKernel, valuesKernel } from "./attention-kernels.ts";
import { geluKernel } from "./gelu-kernel.ts";
import { type WeightType, matmulKernel, matvecKernel } from "./kernels.ts";

/*
 * One shared WebAssembly memory holds the weights (in the kernels' layout) and the scratch the
 * activations pass through; the kernels, compiled per K, run on it from this thread and from
 * the workers. wasm32 addresses 4 GiB at most: larger models need bf16 or the TypeScript kernels.
 */

const PAGE = 65536;
const MAX_PAGES = 65536;

export const memory = new WebAssembly.Memory({ initial: 16, maximum: MAX_PAGES, shared: true });
let top = 1024; // keep address 0 unused

/** Bytes the shared memory can still hand out. */
export function available(): number {
  return MAX_PAGES * PAGE - Math.ceil(top / 16) * 16;
}

/**
 * Grows the memory now so that allocating `bytes` more (in `blocks` blocks) will not: the first
 * pass after a grow runs markedly slower (every thread must pick up the new size), so a timed
 * run reserves before it starts. Pages not yet touched cost no resident memory.
 */
export function reserve(bytes: number, blocks: number): void {
  const end = Math.ceil(top / 16) * 16 + bytes + 16 * blocks;
  const pages = Math.ceil(end / PAGE) - memory.buffer.byteLength / PAGE;
  if (pages > 0 && end <= MAX_PAGES * PAGE) memory.grow(pages);
}

/** Blocks given back, by size, for the next allocation of exactly that size (KV caches come and go). */
const freed = new Map<number, number[]>();

/** Reserves `bytes` of the shared memory (16-byte aligned) and returns its address. */
export function allocate(bytes: number): number {
  const reuse = freed.get(bytes)?.pop();
  if (reuse !== undefined) return reuse;
  const at = Math.ceil(top / 16) * 16;
  const end = at + bytes;
  if (end > MAX_PAGES * PAGE) throw new Error(`WebAssembly memory is full: ${(end / 2 ** 30).toFixed(2)} GiB asked of 4 GiB; use --dtype bf16 or a TypeScript kernel (--kernel packed)`);
  const pages = Math.ceil(end / PAGE) - memory.buffer.byteLength / PAGE;
  if (pages > 0) memory.grow(pages);
  top = end;
  return at;
}

/** Returns a block to be reused by a later allocation of the same size. */
export function release(address: number, bytes: number): void {
  const list = freed.get(bytes) ?? [];
  list.push(address);
  freed.set(bytes, list);
}

const releaseOnCollect = new FinalizationRegistry<[number, number]>(([address, bytes]) => release(address, bytes));

/** A block that goes back to the allocator once `owner` is garbage-collected. */
export function allocateFor(owner: object, bytes: number): number {
  const address = allocate(bytes);
  releaseOnCollect.register(owner, [address, bytes]);
  return address;
}

/** The buffers `memory.buffer` has been (a new one after every grow): how views into it are recognised. */
const buffers = new WeakSet<ArrayBufferLike>();

export function f32View(address: number, floats: number): Float32Array {
  const buffer = memory.buffer;
  buffers.add(buffer);
  return new Float32Array(buffer, address, floats);
}

/** Whether a typed array is a view into the WebAssembly memory (its byteOffset is then its address). */
export function inMemory(view: ArrayBufferView): boolean {
  return buffers.has(view.buffer);
}

const scratchSlots = new Map<string, { address: number; bytes: number }>();

/** A scratch block for `slot` of at least `bytes`, reused call after call (grown when too small). */
export function scratch(slot: string, bytes: number): number {
  let s = scratchSlots.get(slot);
  if (s === undefined || s.bytes < bytes) {
    if (s !== undefined) release(s.address, s.bytes);
    s = { address: 0, bytes: Math.max(bytes, 2 * (s?.bytes ?? 0)) };
    s.address = allocate(s.bytes);
    scratchSlots.set(slot, s);
  }
  return s.address;
}

export function u16View(address: number, count: number): Uint16Array {
  const buffer = memory.buffer;
  buffers.add(buffer);
  return new Uint16Array(buffer, address, count);
}

const probe = (fn: FunctionDef) => WebAssembly.validate(emitModule([fn], MAX_PAGES) as BufferSource);

/** Whether this runtime has WebAssembly SIMD at all. */
export const simdAvailable = probe({ name: "t", params: [], results: [], locals: [V128], body: [...op.v128Zero, ...op.localSet(0)] });

const relaxedProbe = (): boolean => probe({
  name: "t", params: [], results: [], locals: [V128],
  body: [...op.v128Zero, ...op.v128Zero, ...op.v128Zero, ...op.f32x4RelaxedMadd, ...op.localSet(0)],
});

/**
 * Relaxed SIMD ships on by default from V8 11.4 on, and later V8s dropped the flag that enabled it
 * (setting an unknown flag prints "Error: unrecognized flag" to stderr). So the flag is set only
 * where validation fails and the runtime is Node on a V8 that still has it (Node 20: V8 11.3).
 * Flags are process-wide: worker threads see it too.
 */
function enableRelaxedFlag(): boolean {
  const { name, v8 } = runtimeInfo();
  if (name !== "node" || Number(v8.split(".")[0]) >= 12) return false;
  process.getBuiltinModule("node:v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
  return true;
}

/** Whether f32x4.relaxed_madd validates here (after enabling it where a flag is still needed). */
export const relaxedAvailable = simdAvailable && (relaxedProbe() || (enableRelaxedFlag() && relaxedProbe()));

/** The exported kernels of one module: matvec and matmul for float32 and bfloat16 weights. */
export const WASM_FUNCTIONS = ["matvec_f32", "matmul_f32", "matvec_bf16", "matmul_bf16"] as const;
export type WasmFunction = (typeof WASM_FUNCTIONS)[number];

export interface KernelModule {
  /** Index of this module, the same in every worker. */
  id: number;
  k: number;
  relaxed: boolean;
  module: WebAssembly.Module;
  exports: Record<WasmFunction, (...args: number[]) => void>;
}

const modules: KernelModule[] = [];
const byKey = new Map<string, KernelModule>();

/** The kernels specialised for K (compiled once, then cached). */
export function kernelsFor(k: number, relaxed = relaxedAvailable): KernelModule {
  const key = `${k}/${relaxed}`;
  let found = byKey.get(key);
  if (found === undefined) {
    const fns = (["f32", "bf16"] as WeightType[]).flatMap((t) => [matvecKernel(k, t, relaxed), matmulKernel(k, t, relaxed)]);
    const module = new WebAssembly.Module(emitModule(fns, MAX_PAGES) as BufferSource);
    const instance = new WebAssembly.Instance(module, { env: { memory } });
    found = { id: modules.length, k, relaxed, module, exports: instance.exports as KernelModule["exports"] };
    modules.push(found);
    byKey.set(key, found);
  }
  return found;
}

export interface AttentionModule {
  scores(q: number, keys: number, out: number, tq: number, past: number): void;
  values(p: number, values: number, out: number, tq: number, past: number): void;
}

const attentionModules = new Map<string, AttentionModule>();

/** Attention's two products for width d and `heads` heads (compiled once, then cached). */
export function attentionKernelsFor(d: number, heads: number, relaxed = relaxedAvailable): AttentionModule {
  const key = `${d}/${heads}/${relaxed}`;
  let found = attentionModules.get(key);
  if (found === undefined) {
    const module = new WebAssembly.Module(emitModule([scoresKernel(d, heads, relaxed), valuesKernel(d, heads, relaxed)], MAX_PAGES) as BufferSource);
    found = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as AttentionModule;
    attentionModules.set(key, found);
  }
  return found;
}

let geluModule: ((input: number, out: number, n: number) => void) | null = null;

/** The SIMD GELU (compiled once). */
export function geluKernelFn(): (input: number, out: number, n: number) => void {
  if (geluModule === null) {
    const module = new WebAssembly.Module(emitModule([geluKernel()], MAX_PAGES) as BufferSource);
    geluModule = (new WebAssembly.Instance(module, { env: { memory } }).exports as { gelu: (input: number, out: number, n: number) => void }).gelu;
  }
  return geluModule;
}
