import type { Instance } from "../wasm/runtime.ts";

/*
 * A forward pass recorded as a list of kernel calls (nodes) before any of it runs, as ggml builds
 * its graph: the model's code runs once on the calling thread and every op, instead of computing,
 * appends what it would call — a WebAssembly function, its addresses and counts, and how its work
 * splits into chunks. The thread team (threads.ts) then runs the whole list as one parallel region.
 *
 * Each node says which bytes it reads and writes. A barrier goes after a node only when a later
 * node reads what it writes, or writes what it or an earlier node since the last barrier touches:
 * the data decides, not the op. One exception is cheaper than a barrier: a node whose unit u reads
 * exactly the bytes unit u + o of the node before it wrote (a bias added to a product's columns,
 * then GELU on them; o = 0) joins it — each chunk of the pair runs on one thread, one node after
 * the other, and nobody waits. The offset o lets a node over part of the output join (a decode
 * step's keys, at o = 24 of the qkv product's 72 units of 32 columns, copied into the cache), and
 * a rows node cut finer than the node before it joins in coarser units (attention's heads, 64
 * columns each, quantized in blocks of 32). An op that has no kernel here (a
 * TypeScript fallback) is a node the calling thread runs alone, between two barriers.
 */

/** A function of a module instantiated on the engine's memory. */
export interface KernelRef {
  instance: Instance<object>;
  name: string;
  /** The function itself, on the calling thread. */
  fn: (...args: number[]) => void;
}

/** Function `name` of `instance`. */
export function kernel<E extends object>(instance: Instance<E>, name: keyof E & string): KernelRef {
  return { instance, name, fn: instance.exports[name] as (...args: number[]) => void };
}

/** A byte range [start, end) of the engine's memory. */
export type Span = readonly [number, number];

/** The byte range a view into the engine's memory covers. */
export function span(view: ArrayBufferView): Span {
  return [view.byteOffset, view.byteOffset + view.byteLength];
}

/**
 * How a node's work divides. `rows`: units of `steps[i]` bytes per argument; a chunk of units
 * [u0, u1) moves argument i by steps[i]·u0 and sets argument `count` to (u1 − u0)·scale.
 * `range`: a chunk appends (u0·scale, u1·scale) to the arguments (a product's output columns,
 * attention's query rows). `work`: the node's cycles, so chunks are not cut smaller than pays.
 */
export type Split =
  | { kind: "rows"; units: number; count: number; scale: number; steps: readonly number[]; work: number }
  | { kind: "range"; units: number; scale: number; work: number; unitReads?: readonly UnitSpan[]; unitWrites?: readonly UnitSpan[] };

/**
 * Bytes [base + step·u, base + step·(u+1)) for each unit u of a node. A rows node's arguments that
 * move with its units are its unit spans; a range node names the ones it has (a one-row product
 * writes 32 bytes of output per panel; attention's unit u reads and writes row u of its scores).
 */
export type UnitSpan = readonly [base: number, step: number];

/** What ops hand their kernels to: an engine recording a pass, or `immediately`. */
export interface Launcher {
  /** Returns whether the call joined the one before it (see Plan): it then takes no time of its own. */
  launch(ref: KernelRef, args: readonly number[], split: Split, reads: readonly Span[], writes: readonly Span[]): boolean;
  compute(fn: () => void): void;
}

/** Runs every kernel now, over all its work, on the calling thread. */
export const immediately: Launcher = {
  launch(ref, args, split) {
    const all = [...args];
    if (split.kind === "rows") all[split.count] = split.units * split.scale;
    else all.push(0, split.units * split.scale);
    ref.fn(...all);
    return false;
  },
  compute: (fn) => fn(),
};

// A node: NODE float64 slots in the plan's shared buffer (the workers read the same layout).
export const NODE = 29;
/**
 * FUSED: the node runs each chunk of the node it joined right after it, its units moved back by
 * OFFSET (and those past its own, or before its first, left out: see Plan).
 */
export const FN = 0, KIND = 1, UNITS = 2, PER = 3, BARRIER = 4, COUNT = 5, SCALE = 6, ARGC = 7, ARGS = 8, STEPS = 17, JS = 26, FUSED = 27, OFFSET = 28;
export const MAX_ARGS = 9;
export const KIND_ROWS = 0, KIND_RANGE = 1, KIND_JS = 2;

/** Chunks per thread a node is cut into at most: a thread that lost its core holds one chunk, not a share. */
const CHUNKS_PER_THREAD = 4;
/** Cycles below which a chunk costs more to hand out than to do. */
const MIN_CHUNK_WORK = 1 << 14;

export class Plan {
  nodes = 0;
  data: Float64Array;
  /** Barriers in the plan so far (the synchronisations a pass pays). */
  barriers = 0;
  /** Cycles of the kernel calls so far: passes of about the same work are timed together (see ThreadTeam). */
  work = 0;
  /** TypeScript nodes, by index, run by the calling thread. */
  readonly js: (() => void)[] = [];
  /** Functions the plan calls, by table index (the workers keep the same table). */
  readonly table: KernelRef[] = [];
  private readonly tableIndex = new Map<string, number>();
  private readonly pendingReads: Span[] = [];
  private readonly pendingWrites: Span[] = [];
  /** The nodes a next node may join: their units and chunk size, the unit spans they write, and where their writes start in pendingWrites. */
  private group: { units: number; per: number; unitWrites: UnitSpan[]; writesFrom: number } | null = null;
  /** Nodes that joined the node before them. */
  fused = 0;
  /** Where the group still open starts: nodes before it are final (see ThreadTeam.publish). */
  private head = 0;
  /** When the first node ran, if it ran as it was recorded (ranFirst): [start, end], ms since the epoch. */
  ran: [number, number] | null = null;

  constructor(capacity = 1024) {
    this.data = new Float64Array(new SharedArrayBuffer(8 * NODE * capacity));
  }

  get capacity(): number {
    return this.data.length / NODE;
  }

  /** Empties the plan for the next pass (the function table stays). */
  clear(): void {
    this.nodes = 0;
    this.head = 0;
    this.ran = null;
    this.barriers = 0;
    this.fused = 0;
    this.group = null;
    this.work = 0;
    this.js.length = 0;
    this.pendingReads.length = 0;
    this.pendingWrites.length = 0;
  }

  /** Index of `ref` in the function table (the threads learn new entries before the plan runs). */
  functionIndex(ref: KernelRef): number {
    const key = `${ref.instance.id}/${ref.name}`;
    let index = this.tableIndex.get(key);
    if (index === undefined) {
      index = this.table.length;
      this.table.push(ref);
      this.tableIndex.set(key, index);
    }
    return index;
  }

  /** Appends a call of function `fn` (a table index), split for `threads` threads; returns whether it joined the node before it. */
  kernel(fn: number, args: readonly number[], given: Split, reads: readonly Span[], writes: readonly Span[], threads: number): boolean {
    if (args.length + (given.kind === "range" ? 2 : 0) > MAX_ARGS) throw new Error(`a plan node takes at most ${MAX_ARGS} arguments`);
    let split = given;
    let [unitReads, unitWrites] = unitSpans(args, split, writes);
    let offset = this.joins(split.units, reads, writes, unitReads);
    const g = this.group;
    // Coarser, only to read the group's output: a node independent of it keeps its own chunks.
    if (offset < 0 && g !== null && split.kind === "rows" && split.units > g.units && split.units % g.units === 0 && reads.some((r) => overlapsAny(r, this.pendingWrites, g.writesFrom))) {
      const f = split.units / g.units;
      const coarse: Split = { ...split, units: g.units, scale: f * split.scale, steps: split.steps.map((s) => f * s) };
      const [coarseReads, coarseWrites] = unitSpans(args, coarse, writes);
      offset = this.joins(coarse.units, reads, writes, coarseReads);
      if (offset >= 0) [split, unitReads, unitWrites] = [coarse, coarseReads, coarseWrites];
    }
    const joins = offset >= 0;
    if (joins) {
      this.pendingReads.push(...reads);
      this.pendingWrites.push(...writes);
      // In the group's units, so a later node finds its offset from them.
      this.group!.unitWrites.push(...unitWrites.map(([base, step]): UnitSpan => [base - offset * step, step]));
      this.fused++;
    } else {
      this.orderAfter(reads, writes);
      this.group = { units: split.units, per: chunkUnits(split.units, split.work, threads), unitWrites: [...unitWrites], writesFrom: this.pendingWrites.length - writes.length };
      this.head = this.nodes;
    }
    this.work += split.work;
    const o = this.append();
    const d = this.data;
    d[o + FN] = fn;
    d[o + KIND] = split.kind === "rows" ? KIND_ROWS : KIND_RANGE;
    d[o + UNITS] = split.units;
    d[o + PER] = this.group!.per;
    d[o + FUSED] = joins ? 1 : 0;
    d[o + OFFSET] = joins ? offset : 0;
    d[o + COUNT] = split.kind === "rows" ? split.count : -1;
    d[o + SCALE] = split.scale;
    d[o + ARGC] = args.length;
    for (let i = 0; i < MAX_ARGS; i++) {
      d[o + ARGS + i] = i < args.length ? args[i] : 0;
      d[o + STEPS + i] = split.kind === "rows" && i < split.steps.length ? split.steps[i] : 0;
    }
    return joins;
  }

  /** Appends TypeScript work for the calling thread alone: everything before it is done, nothing after starts until it is. */
  typescript(fn: () => void): void {
    this.barrierAfterLast();
    this.group = null;
    const o = this.append();
    this.data[o + KIND] = KIND_JS;
    this.data[o + JS] = this.js.length;
    this.js.push(fn);
    this.barrierAfterLast();
    this.head = this.nodes;
  }

  /**
   * TypeScript work that starts a pass runs as it is recorded (nothing is before it, and the last
   * pass is over), so the threads need not wait for the recording to end to get past it: it
   * stands in the plan as a node with nothing left to do (JS = −1), its times kept in `ran`.
   */
  ranFirst(fn: () => void): void {
    if (this.nodes !== 0) throw new Error("only a pass's first node runs as it is recorded");
    const start = performance.timeOrigin + performance.now();
    fn();
    const o = this.append();
    this.data[o + KIND] = KIND_JS;
    this.data[o + JS] = -1;
    this.ran = [start, performance.timeOrigin + performance.now()];
    this.head = this.nodes;
  }

  /** The nodes after the first, as recorded (for kernels/replay.ts). */
  recorded(): Float64Array {
    return this.data.slice(NODE, this.nodes * NODE);
  }

  /**
   * Appends, after the first node, nodes recorded before (`base`, as `recorded` gave them) moved
   * on by `k` times `step`, with the plan's counts as they were then: the plan is as if recorded,
   * every group closed. (Written in place: a fresh 60 KB array cost more than the rest of it.)
   */
  restore(base: Float64Array, step: Float64Array, k: number, counts: { barriers: number; fused: number; work: number }): void {
    if (this.nodes !== 1) throw new Error("a plan is restored after its first node");
    const nodes = 1 + base.length / NODE;
    while (this.capacity < nodes) this.grow();
    const d = this.data;
    for (let i = 0; i < base.length; i++) d[NODE + i] = base[i] + k * step[i];
    this.nodes = nodes;
    this.head = nodes;
    this.group = null;
    this.pendingReads.length = 0;
    this.pendingWrites.length = 0;
    this.barriers = counts.barriers;
    this.fused = counts.fused;
    this.work = counts.work;
  }

  /** Nodes whose groups are closed: no later node joins them or changes their barriers. */
  get closed(): number {
    return this.head;
  }

  /** The last node waits for every thread (the end of a pass). */
  barrierAfterLast(): void {
    if (this.nodes === 0) return;
    const o = (this.nodes - 1) * NODE;
    if (this.data[o + BARRIER] === 0) this.barriers++;
    this.data[o + BARRIER] = 1;
    this.pendingReads.length = 0;
    this.pendingWrites.length = 0;
    if (this.group !== null) this.group.writesFrom = 0;
  }

  /**
   * The offset at which a node of `units` units can join the group before it, or −1: it touches
   * nothing written since the last barrier outside the group, writes nothing read or written
   * since, and reads the group's output only unit for unit — each of its reads there is one of
   * its unit spans, and its unit u the bytes the group's unit u + offset wrote, one offset for
   * all. A node that reads none of the group's output joins only a group of its own units.
   */
  private joins(units: number, reads: readonly Span[], writes: readonly Span[], unitReads: readonly UnitSpan[]): number {
    const g = this.group;
    if (g === null || units > g.units) return -1;
    const pending = this.pendingWrites;
    if (writes.some((w) => overlapsAny(w, pending) || overlapsAny(w, this.pendingReads))) return -1;
    let offset = -1;
    for (const r of reads) {
      if (overlapsAny(r, pending, 0, g.writesFrom)) return -1;
      if (!overlapsAny(r, pending, g.writesFrom)) continue;
      const at = unitOffset(r, units, unitReads, g.unitWrites, g.units);
      if (at < 0 || (offset >= 0 && at !== offset)) return -1;
      offset = at;
    }
    return offset >= 0 ? offset : units === g.units ? 0 : -1;
  }

  /** Puts a barrier before the next node if it touches what nodes since the last barrier write, or writes what they read. */
  private orderAfter(reads: readonly Span[], writes: readonly Span[]): void {
    if (reads.some((r) => overlapsAny(r, this.pendingWrites)) || writes.some((w) => overlapsAny(w, this.pendingWrites) || overlapsAny(w, this.pendingReads))) {
      this.barrierAfterLast();
    }
    this.pendingReads.push(...reads);
    this.pendingWrites.push(...writes);
  }

  private grow(): void {
    const grown = new Float64Array(new SharedArrayBuffer(this.data.byteLength * 2));
    grown.set(this.data);
    this.data = grown;
  }

  private append(): number {
    if (this.nodes === this.capacity) this.grow();
    const o = this.nodes * NODE;
    this.data.fill(0, o, o + NODE);
    this.nodes++;
    return o;
  }
}

/** A node's unit spans, read and written: a rows node's moving arguments (written where they fall in a write span), a range node's as it names them. */
function unitSpans(args: readonly number[], split: Split, writes: readonly Span[]): [UnitSpan[], UnitSpan[]] {
  if (split.kind === "range") return [[...(split.unitReads ?? [])], [...(split.unitWrites ?? [])]];
  const reads: UnitSpan[] = [];
  const written: UnitSpan[] = [];
  split.steps.forEach((step, i) => {
    if (step === 0) return;
    const span: UnitSpan = [args[i], step];
    (writes.some((w) => w[0] <= args[i] && args[i] < w[1]) ? written : reads).push(span);
  });
  return [reads, written];
}

/**
 * The o at which read `r` of a node of `units` units is its unit spans over the group's: unit u
 * reading what the group's unit u + o wrote (a group of `groupUnits`); −1 if it is not.
 */
function unitOffset(r: Span, units: number, unitReads: readonly UnitSpan[], groupWrites: readonly UnitSpan[], groupUnits: number): number {
  for (const [base, step] of unitReads) {
    if (base !== r[0] || base + step * units !== r[1]) continue;
    for (const [b, s] of groupWrites) {
      const o = (base - b) / step;
      if (s === step && Number.isInteger(o) && o >= 0 && o + units <= groupUnits) return o;
    }
  }
  return -1;
}

/** Whether s overlaps any of list[from, to). */
function overlapsAny(s: Span, list: readonly Span[], from = 0, to = list.length): boolean {
  for (let i = from; i < to; i++) if (s[0] < list[i][1] && list[i][0] < s[1]) return true;
  return false;
}

/** Units per chunk: about CHUNKS_PER_THREAD chunks a thread, none much below MIN_CHUNK_WORK cycles, as many for each thread where the units allow. */
function chunkUnits(units: number, work: number, threads: number): number {
  if (threads === 1 || units <= 1) return Math.max(1, units);
  const byCount = Math.ceil(units / (threads * CHUNKS_PER_THREAD));
  const byWork = Math.ceil((MIN_CHUNK_WORK * units) / Math.max(1, work));
  const per = Math.min(units, Math.max(byCount, byWork));
  // Work worth cutting goes in a multiple of the threads' count of chunks where the units allow:
  // a decode step's 12 heads at a short context went in 3 chunks of 4, 8 heads for one thread
  // (q8, 2 threads, 6 runs each way alternating: attention 519 µs a step against 574, 6 of 6 pairs).
  const chunks = Math.ceil(units / per);
  return chunks > 1 && chunks % threads !== 0 ? Math.ceil(units / (Math.ceil(chunks / threads) * threads)) : per;
}
