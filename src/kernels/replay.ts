import type { Clock, OpEntry } from "../clock/clock.ts";
import { Tensor } from "../tensor/tensor.ts";
import { ARGC, BARRIER, COUNT, FN, FUSED, JS, KIND, KIND_JS, NODE, OFFSET, PER, type Plan, SCALE, UNITS } from "./plan.ts";

/*
 * Decode steps restored instead of recorded. A decode step records the same pass as the step
 * before with a few numbers moved on: the cache row its keys and values go to, the context that
 * attention reads, and the costs that grow with it — each by the same amount per position. The
 * ops keep everything else where it was (outputs that grow with the context are carved a bucket
 * of positions at a time: tensor/alloc.ts contextFloats). So once three steps at consecutive
 * positions have recorded passes that differ by one and the same step, slot by slot and in every
 * clock entry, the next steps are not recorded: their plan is the last recording moved on by
 * that step per position, and so are their clock entries. Recording cost 0.5 ms of a 5 ms decode
 * step of GPT-2 small (q8, one thread); restoring one costs a copy of its 60 KB of nodes.
 *
 * Only the pass's first op runs anew: it reads the step's input (its tokens and their positions).
 */

/** What a caller tells Engine.pass about a pass it may restore. */
export interface Repeat {
  /** Passes are alike only on the same objects (the model's parameters, its caches)… */
  objects: readonly object[];
  /** …and with the same signature (tokens per pass, logit rows, each cache's context bucket). */
  signature: string;
  /** Where the pass stands (a cache's length): its recordings move on by a fixed step per unit of it. */
  position: number;
  /** The pass's first op, run each time: it reads the step's input. */
  first: () => void;
  /** What the pass does besides its ops, done when it is restored rather than recorded (the caches move on). */
  skipped: () => void;
}

/** Slots of a node that must stay put between recordings: what it calls, and how it is cut and ordered. */
const FIXED = [FN, KIND, UNITS, PER, BARRIER, COUNT, SCALE, ARGC, JS, FUSED, OFFSET];

interface Recording {
  position: number;
  /** The memory layout it was recorded in (see Engine.memoryLayout). */
  layout: number;
  nodes: Float64Array;
  barriers: number;
  fused: number;
  work: number;
  /** Its clock entries (none without a clock) and, per entry, cycles, bytes and its shapes' dimensions. */
  entries: OpEntry[];
  numbers: Float64Array;
  result: Tensor;
}

/** How many numbers of an entry may move (see numbersOf). */
const countOf = (e: OpEntry): number => 2 + e.output.length + e.inputs.reduce((sum, dims) => sum + dims.length, 0);

/** An entry's numbers that may move: cycles, bytes, then the dimensions of its inputs and output. */
function numbersOf(entries: readonly OpEntry[]): Float64Array {
  const numbers: number[] = [];
  for (const e of entries) numbers.push(e.cycles, e.bytes, ...e.inputs.flat(), ...e.output);
  return Float64Array.from(numbers);
}

function sameEntry(a: OpEntry, b: OpEntry): boolean {
  return a.op === b.op && a.role === b.role && a.kernel === b.kernel && a.layer === b.layer && a.startNs === b.startNs && a.endNs === b.endNs &&
    a.inputs.length === b.inputs.length && a.inputs.every((shape, i) => shape.length === b.inputs[i].length) && a.output.length === b.output.length;
}

/** Whether b is a's pass moved on: the same nodes, calls, cuts and barriers, the same ops, the same result buffer. */
function alike(a: Recording, b: Recording): boolean {
  if (a.layout !== b.layout || a.nodes.length !== b.nodes.length || a.barriers !== b.barriers || a.fused !== b.fused || a.entries.length !== b.entries.length) return false;
  for (let o = 0; o < a.nodes.length; o += NODE) {
    for (const slot of FIXED) if (a.nodes[o + slot] !== b.nodes[o + slot]) return false;
  }
  if (!a.entries.every((e, i) => sameEntry(e, b.entries[i]))) return false;
  return a.result.data.buffer === b.result.data.buffer && a.result.data.byteOffset === b.result.data.byteOffset && a.result.shape.every((n, i) => n === b.result.shape[i]);
}

/** The entries any of whose numbers (laid out as numbersOf lays them) move by `step`: their indices, and where their numbers start. */
function movingEntries(entries: readonly OpEntry[], step: Float64Array): { index: number; at: number }[] {
  const moving: { index: number; at: number }[] = [];
  let at = 0;
  entries.forEach((e, index) => {
    const count = countOf(e);
    if (step.subarray(at, at + count).some((x) => x !== 0)) moving.push({ index, at });
    at += count;
  });
  return moving;
}

/** `count` numbers from `at` of a recording, moved on by k steps. */
function movedOn(base: Float64Array, step: Float64Array, k: number, at: number, count: number): number[] {
  const out: number[] = [];
  for (let i = at; i < at + count; i++) out.push(base[i] + k * step[i]);
  return out;
}

const minus = (b: Float64Array, a: Float64Array): Float64Array => b.map((x, i) => x - a[i]);
const equal = (a: Float64Array, b: Float64Array): boolean => a.every((x, i) => x === b[i]);

/**
 * The recordings of one kind of pass (the same objects and signature, with a clock or without)
 * and, once three at consecutive positions agree, the step that moves them on per position.
 */
export class PassTemplate {
  private readonly recent: Recording[] = [];
  /** Per position: the nodes' slots, the work, the entries' numbers, and the entries that have any that move. */
  private step: { nodes: Float64Array; work: number; numbers: Float64Array; moving: { index: number; at: number }[] } | null = null;
  /** Held weakly: a template must not keep a finished sequence's KV caches (hundreds of MB for the larger sizes) from being collected. */
  private readonly objects: WeakRef<object>[];

  constructor(objects: readonly object[], private readonly signature: string, private readonly clocked: boolean) {
    this.objects = objects.map((o) => new WeakRef(o));
  }

  matches(repeat: Repeat, clocked: boolean): boolean {
    return this.signature === repeat.signature && this.clocked === clocked && this.objects.length === repeat.objects.length && this.objects.every((o, i) => o.deref() === repeat.objects[i]);
  }

  /** Whether a pass at `position`, in memory laid out as `layout`, can be restored. */
  canRestore(position: number, layout: number): boolean {
    return this.step !== null && this.recent[this.recent.length - 1].layout === layout && Number.isInteger(position);
  }

  /** A pass recorded at `position` in memory laid out as `layout`: its plan as it ran, its clock entries, its result. */
  observe(position: number, layout: number, plan: Plan, entries: readonly OpEntry[], result: unknown): void {
    const ranFirst = plan.nodes > 0 && plan.data[KIND] === KIND_JS && plan.data[JS] < 0;
    if (!(result instanceof Tensor) || !ranFirst || plan.js.length > 0) {
      // Restoring runs the first op anew, and only that: a pass must start with it, and have no
      // other TypeScript op (which may hold values of its own step).
      this.recent.length = 0;
      this.step = null;
      return;
    }
    const recording: Recording = {
      position, layout, nodes: plan.recorded(), barriers: plan.barriers, fused: plan.fused, work: plan.work,
      // Copies: the clock settles its own entries' times after the pass, and these keep its positions.
      entries: entries.map((e) => ({ ...e })), numbers: numbersOf(entries), result,
    };
    const last = this.recent[this.recent.length - 1];
    if (last === undefined || position !== last.position + 1 || !alike(last, recording)) this.recent.length = 0;
    this.recent.push(recording);
    if (this.recent.length > 3) this.recent.shift();
    this.step = null;
    if (this.recent.length < 3) return;
    const [r0, r1, r2] = this.recent;
    const nodes = minus(r2.nodes, r1.nodes);
    const numbers = minus(r2.numbers, r1.numbers);
    const work = r2.work - r1.work;
    if (equal(nodes, minus(r1.nodes, r0.nodes)) && equal(numbers, minus(r1.numbers, r0.numbers)) && work === r1.work - r0.work) {
      this.step = { nodes, work, numbers, moving: movingEntries(r2.entries, numbers) };
    }
  }

  /**
   * The pass at `position`, into `plan` (which holds its first node, just run): the last recording
   * moved on; its clock entries go to `clock`, after the `firstEntries` the first op made. Returns
   * the pass's result.
   */
  restore(plan: Plan, position: number, clock: Clock | null, firstEntries: readonly OpEntry[]): Tensor {
    const base = this.recent[this.recent.length - 1];
    const step = this.step!;
    const k = position - base.position;
    plan.restore(base.nodes, step.nodes, k, { barriers: base.barriers, fused: base.fused, work: base.work + k * step.work });
    if (clock === null) return base.result;
    if (firstEntries.length > base.entries.length || firstEntries.some((e, i) => e.op !== base.entries[i].op)) {
      throw new Error("a restored pass's first op is not the one it was recorded with");
    }
    // Most entries do not move (only attention's and the cache's grow with the context): those
    // are added as recorded, their shapes shared. (Rebuilt one by one, 340 entries of a GPT-2
    // small step took 0.3–0.8 ms, as long as recording the pass; walked with a closure per
    // number, the rest still took 0.1–0.25 ms, while the threads wait for it.)
    const { moving, numbers } = step;
    let next = 0;
    for (let i = firstEntries.length; i < base.entries.length; i++) {
      const e = base.entries[i];
      while (next < moving.length && moving[next].index < i) next++;
      if (next === moving.length || moving[next].index !== i) {
        clock.restore(e);
        continue;
      }
      let at = moving[next].at;
      const [cycles, bytes] = movedOn(base.numbers, numbers, k, at, 2);
      at += 2;
      const inputs: number[][] = [];
      for (const dims of e.inputs) {
        inputs.push(movedOn(base.numbers, numbers, k, at, dims.length));
        at += dims.length;
      }
      const output = movedOn(base.numbers, numbers, k, at, e.output.length);
      clock.restore({ op: e.op, role: e.role, inputs, output, cycles, bytes, startNs: e.startNs, endNs: e.endNs, layer: e.layer, kernel: e.kernel });
    }
    return base.result;
  }
}
