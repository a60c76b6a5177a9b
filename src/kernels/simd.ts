import type { RelaxedDot } from "../wasm/q8-kernels.ts";
import { type KernelModule, WASM_FUNCTIONS, type WasmFunction, type WasmHeap, relaxedAvailable, relaxedDotForms, relaxedIntegerDot, relaxedIntegerDotWorks } from "../wasm/runtime.ts";
import { PANEL } from "../wasm/kernels.ts";
import type { PackedMatrix } from "./packed-matrix.ts";
import { type Launcher, type Span, immediately, kernel } from "./plan.ts";
import { Q8_BLOCK, activationBytes, paddedK, quantizeActivations } from "./q8.ts";

/*
 * Runs matmuls on the WebAssembly SIMD kernels. Weights already live in the engine's WebAssembly
 * memory (packed in panels of 8); activations are read where they are (for q8 weights, quantized
 * into scratch first) and results written where they go. The first product of each shape tries
 * every candidate kernel (the matmul with and without relaxed SIMD's fused multiply-add, or for
 * q8 each integer dot product that computes right here) on activations of its own, checks each
 * against a plain dot-product reference on the same weights, and keeps the fastest correct one
 * for the rest of the run.
 * Inside a pass the product is recorded (see plan.ts): its output columns are the threads' chunks.
 */

interface Choice {
  module: KernelModule;
  fn: WasmFunction;
  /** q8's relaxed integer dot product, where it is one. */
  dot: RelaxedDot | null;
  label: string;
}

/** Kernel choices by product shape, as a machine profile stores them (`dot`: q8's relaxed form). */
export type KernelWisdom = Record<string, { fn: string; relaxed: boolean; dot?: RelaxedDot["form"] }>;

const TUNE_TIMINGS = 3;
/**
 * Rows a decode batch is tuned at besides one: a one-row product's kernel also runs batches
 * (see run), so its candidates are scored by the time of one row plus an eighth of eight rows'.
 */
const BATCH_PROBE = 8;
/** The largest finite float32. */
const F32_MAX = 3.4028234663852886e38;

export class SimdMatmul {
  private readonly choices = new Map<string, Choice>();

  constructor(private readonly heap: WasmHeap) {}

  private choiceOf(k: number, fn: WasmFunction, relaxed: boolean, dot = relaxed && fn === "matmul_q8" ? relaxedIntegerDot() : null): Choice {
    // A float kernel takes the module of the runtime's own dot form: one module per K, not one per form.
    const module = fn === "matmul_q8" ? this.heap.kernelsFor(k, relaxed, dot) : this.heap.kernelsFor(k, relaxed);
    return { module, fn, dot, label: simdKernelLabel(fn, relaxed, dot) };
  }

  /** The kernel chosen for each product shape so far (the autotuner's key → function, FMA use, dot form). */
  wisdom(): KernelWisdom {
    return Object.fromEntries([...this.choices].map(([key, c]) => [key, { fn: c.fn, relaxed: c.module.relaxed, ...(c.dot === null ? {} : { dot: c.dot.form }) }]));
  }

  /**
   * Takes kernel choices made earlier (a machine profile's), so products of those shapes run
   * without tuning. Entries this runtime cannot honour (no relaxed SIMD, another dtype's kernel
   * name) are skipped and tuned as usual.
   */
  adopt(wisdom: KernelWisdom): void {
    for (const [key, { fn, relaxed, dot }] of Object.entries(wisdom)) {
      const [dtype, k] = key.split("/");
      const valid = (WASM_FUNCTIONS as readonly string[]).includes(fn) && fn.endsWith(`_${dtype}`);
      if (!valid || (relaxed && !relaxedFor(dtype)) || !(Number(k) > 0)) continue;
      const form = dtype === "q8" && relaxed ? relaxedDotForms().find((f) => f.form === dot) : undefined;
      if (dtype === "q8" && relaxed && form === undefined) continue;
      this.choices.set(key, this.choiceOf(Number(k), fn as WasmFunction, relaxed, form ?? null));
    }
  }

  /**
   * Puts m rows of activations where the kernels read them: floats in place when they live in
   * the engine's memory (else copied to scratch `slot`), or for q8 weights quantized into `slot`
   * ([m, kp] bytes, then the row-block scales). Returns the address and the bytes it spans.
   */
  private stage(run: Launcher, a: Float32Array, m: number, k: number, q8: boolean, slot: string): Span {
    const heap = this.heap;
    const rows = a.length === m * k ? a : a.subarray(0, m * k);
    let floats = rows.byteOffset;
    if (!heap.holds(rows)) {
      floats = heap.scratch(q8 ? `${slot} floats` : slot, 4 * m * k);
      const at = floats;
      run.compute(() => heap.write(at, rows));
    }
    if (!q8) return [floats, floats + 4 * m * k];
    const kp = paddedK(k);
    const blocks = (m * kp) / Q8_BLOCK;
    const bytes = activationBytes(m, k);
    const at = heap.scratch(slot, bytes);
    const [scales, sums] = [at + m * kp, at + m * kp + 4 * blocks];
    if (k === kp) {
      // Row by row, so a layer norm's or attention's rows can be quantized as they come; one row
      // block by block, which the plan coarsens to whatever wrote it (see plan.ts). The blocks of
      // a row lie as the rows of 32 floats would: either cut quantizes the same.
      const quantize = kernel(heap.smallOps(), "quantize");
      const perUnit = m === 1 ? 1 : kp / Q8_BLOCK;
      run.launch(quantize, [floats, at, scales, sums, blocks], { kind: "rows", units: blocks / perUnit, count: 4, scale: perUnit, steps: [4 * Q8_BLOCK * perUnit, Q8_BLOCK * perUnit, 4 * perUnit, 4 * perUnit], work: m * k }, [[floats, floats + 4 * m * k]], [[at, at + bytes]]);
    } else {
      run.compute(() => quantizeActivations(rows, m, k, heap.i8View(at, m * kp), heap.f32View(scales, blocks), heap.i32View(sums, blocks)));
    }
    return [at, at + bytes];
  }

  /**
   * One row's output columns are its units' spans, 32 at a time where they divide so (a q8 block
   * of the next product's activations, four panels): an op on them can join the product (see plan.ts).
   */
  private call(run: Launcher, c: Choice, a: Span, b: number, out: number, m: number, k: number, ldo: number): void {
    const unit = m === 1 && ldo % Q8_BLOCK === 0 ? Q8_BLOCK : PANEL;
    const unitWrites = m === 1 ? [[out, 4 * unit] as const] : [];
    run.launch(kernel(c.module, c.fn), [a[0], b, out, m, ldo], { kind: "range", units: ldo / unit, scale: unit, work: m * k * ldo, unitWrites }, [a], [[out, out + 4 * m * ldo]]);
  }

  /** The best of three timings, in ms: one slow call on a busy machine should not decide for good. */
  private time(c: Choice, a: Span, b: number, out: number, m: number, k: number, ldo: number): number {
    let best = Infinity;
    for (let rep = 0; rep < TUNE_TIMINGS; rep++) {
      const t0 = performance.now();
      this.call(immediately, c, a, b, out, m, k, ldo);
      best = Math.min(best, performance.now() - t0);
    }
    return best;
  }

  /**
   * Candidate kernels for a product, checked and timed on its weights and seeded activations of
   * its shape (for a decode batch's kernel, on one row and on eight); the fastest correct wins.
   * Inside a pass the real activations are not computed yet: the product is only being recorded.
   */
  private tune(b: PackedMatrix, m: number, k: number, n: number, ldo: number, vector: boolean): Choice {
    const fn: WasmFunction = `matmul_${b.dtype}`;
    const candidates = [this.choiceOf(k, fn, false), ...(b.dtype === "q8" ? relaxedDotForms().map((dot) => this.choiceOf(k, fn, true, dot)) : relaxedAvailable() ? [this.choiceOf(k, fn, true)] : [])];
    const q8 = b.dtype === "q8";
    // q8 batches are tuned on their own rows (see run): a one-row q8 choice never runs eight.
    const batches = vector && !q8;
    const rows = vector ? 1 : m;
    const a = sampleActivations(rows * k);
    const at = this.stage(immediately, a, rows, k, q8, "tune a");
    const outAt = this.heap.scratch("tune out", 4 * Math.max(rows, batches ? BATCH_PROBE : 0) * ldo);
    // Reference: row 0, the first columns, as plain dot products over the same stored weights
    // (and, for q8, the same quantized activations).
    const row = q8 ? this.quantizedRow(at[0], k, rows) : a;
    const cols = Math.min(n, 64);
    const reference = new Float64Array(cols);
    for (let j = 0; j < cols; j++) for (let p = 0; p < k; p++) reference[j] += row[p] * b.get(p, j);
    // A batch of eight: row 0 eight times.
    const batchAt = batches ? this.stage(immediately, Float32Array.from({ length: BATCH_PROBE * k }, (_, i) => a[i % k]), BATCH_PROBE, k, q8, "tune batch") : at;
    let best: Choice | null = null;
    let bestMs = Infinity;
    const out = this.heap.f32View(outAt, ldo);
    for (const c of candidates) {
      this.call(immediately, c, at, b.kernelAddress, outAt, rows, k, ldo);
      let worst = 0;
      // Columns whose exact result does not fit a float32 (weights that overflow) judge no kernel:
      // the run itself names the op that goes non-finite (GPT2Model.step).
      for (let j = 0; j < cols; j++) if (Math.abs(reference[j]) <= F32_MAX) worst = Math.max(worst, Math.abs(out[j] - reference[j]));
      if (!(worst <= 1e-5 * k + 1e-5)) continue;
      let ms = this.time(c, at, b.kernelAddress, outAt, rows, k, ldo);
      if (batches) ms += this.time(c, batchAt, b.kernelAddress, outAt, BATCH_PROBE, k, ldo) / BATCH_PROBE;
      if (ms < bestMs) [best, bestMs] = [c, ms];
    }
    if (best === null) throw new Error(`no WebAssembly kernel matches the reference for [${m},${k}]×[${k},${n}] ${b.dtype}: use a TypeScript kernel (--kernel packed)`);
    return best;
  }

  /** Row 0 of `rows` staged q8 activations as the kernels see them: quantized, then scaled back. */
  private quantizedRow(at: number, k: number, rows: number): Float64Array {
    const kp = paddedK(k);
    const bytes = this.heap.i8View(at, k);
    const scales = this.heap.f32View(at + rows * kp, kp / Q8_BLOCK);
    return Float64Array.from(bytes, (q, p) => q * scales[Math.floor(p / Q8_BLOCK)]);
  }

  /**
   * out[M,N] = a × B for B packed in panels of 8 in the heap; returns the kernel's name.
   * `sequences`: the rows are a decode batch, one token of each of M sequences. Those products
   * share their kernel choice with one-row products of the same shape, and every candidate for
   * them sums each row in the same order whatever M is: a sequence decoded in a batch gets
   * bit for bit the logits it gets alone.
   */
  run(run: Launcher, a: Float32Array, b: PackedMatrix, out: Float32Array, m: number, k: number, n: number, sequences = false): string {
    const ldo = Math.ceil(n / PANEL) * PANEL;
    // q8 sums each block in integers, exactly, and either integer dot product then scales and
    // adds the blocks in the same order: a batch can take its own choice and stay bit for bit.
    // (A float product's fused multiply-add rounds differently: a batch shares one row's choice.)
    const vector = m === 1 || (sequences && b.dtype !== "q8");
    const key = `${b.dtype}/${k}/${n}/${vector ? 1 : "m"}`;
    let choice = this.choices.get(key);
    if (choice === undefined) {
      choice = this.tune(b, m, k, n, ldo, vector);
      this.choices.set(key, choice);
    }
    const heap = this.heap;
    // A slot per K: an MLP's second product quantizes its activations while its first may still
    // read its own, so those writes join the first's chunks, where one slot would need a barrier.
    const aAt = this.stage(run, a, m, k, b.dtype === "q8", `matmul a ${k}`);
    // With no padding columns the kernel writes the result where it goes (if that is in this memory).
    const rows = out.subarray(0, m * n);
    const direct = ldo === n && heap.holds(rows);
    const outAt = direct ? rows.byteOffset : heap.scratch("matmul out", 4 * m * ldo);
    this.call(run, choice, aAt, b.kernelAddress, outAt, m, k, ldo);
    if (direct) return choice.label;
    if (heap.holds(rows)) {
      const copy = kernel(heap.smallOps(), "copy");
      run.launch(copy, [outAt, 4 * ldo, rows.byteOffset, 4 * n, m, 4 * n], { kind: "rows", units: m, count: 4, scale: 1, steps: [4 * ldo, 0, 4 * n, 0], work: m * n }, [[outAt, outAt + 4 * m * ldo]], [[rows.byteOffset, rows.byteOffset + 4 * m * n]]);
    } else {
      run.compute(() => {
        for (let i = 0; i < m; i++) out.set(heap.f32View(outAt + 4 * i * ldo, n), i * n);
      });
    }
    return choice.label;
  }
}

/** Activations for tuning: seeded, in [−1, 1), the same every run. */
function sampleActivations(count: number): Float32Array {
  const values = new Float32Array(count);
  let state = 0x9e3779b9;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

/**
 * A SIMD matmul's name in reports: ·fma with relaxed SIMD's fused multiply-add; for q8 the integer
 * dot product, ·dot8 (relaxed, one instruction), ·dot8p (relaxed, its i16 form widened: three
 * instructions, where they run faster or the one computes wrong) or ·dot16 (i32x4.dot_i16x8_s).
 */
export function simdKernelLabel(fn: WasmFunction, relaxed: boolean, dot: RelaxedDot | null): string {
  const [shape, dtype] = fn.split("_");
  const variant = dtype === "q8" ? (dot === null ? "·dot16" : dot.form === "pairs" ? "·dot8p" : "·dot8") : relaxed ? "·fma" : "";
  return `simd ${shape}${variant}`;
}

/** Whether relaxed SIMD kernels can run for weights of this dtype (q8's need a working integer dot product). */
function relaxedFor(dtype: string): boolean {
  return dtype === "q8" ? relaxedIntegerDotWorks() : relaxedAvailable();
}
