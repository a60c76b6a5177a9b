import { Ambient } from "../util/ambient.ts";
import type { Shape } from "../tensor/tensor.ts";

/** One primitive op call, as the clock saw it. Times are nanoseconds since the clock's origin. */
export interface OpEntry {
  op: string;
  /** What a matmul is for ("qkv", "lm head", …); empty for ops that have one use. */
  role: string;
  inputs: Shape[];
  output: Shape;
  cycles: number;
  /** Bytes the op must move from or to memory (weights at their stored width, activations read and written). */
  bytes: number;
  startNs: number;
  endNs: number;
  stage: string;
  /** Transformer block index, or -1 outside the blocks (embeddings, final norm, head). */
  layer: number;
  /** Generated-token index (0: the one prefill picks), or -1 outside the forward passes. */
  step: number;
  /** The kernel that ran a matmul; empty for other ops. */
  kernel: string;
}

/** A named stretch of the run (the article's stages), with the cycles counted inside it. */
export interface StageSpan {
  name: string;
  startNs: number;
  endNs: number;
  cycles: number;
  bytes: number;
}

const active = new Ambient<Clock>();

/**
 * Where the ops of a recorded pass stand while it is being recorded: the number of kernel calls
 * recorded so far. Their work runs later, all at once (see kernels/plan.ts), so an op's time is
 * known only after the pass ran.
 */
export interface Recording {
  position(): number;
}

/**
 * Counts cycles and stamps times for every primitive op executed inside `run`.
 * It is an observer: ops report to it, nothing computes from it. Ops run with no
 * clock active still work and count nowhere.
 */
export class Clock {
  readonly entries: OpEntry[] = [];
  readonly stages: StageSpan[] = [];
  cycles = 0;
  bytes = 0;
  /** Unix time in ms at the clock's origin, to turn ns offsets into the article's timestamps. */
  readonly originUnixMs: number;
  private readonly originMs: number;
  private stageName = "";
  private current: StageSpan | null = null;
  private layer = -1;
  /** Called as each op ends (after its output is written, when the pass is not recorded). */
  afterOp: ((entry: OpEntry) => void) | null = null;
  private step = -1;
  private recording: Recording | null = null;
  /** Entries of a recorded pass: their times are positions in it until `settle` (encoded −1 − position). */
  private readonly unsettled: OpEntry[] = [];

  constructor() {
    this.originMs = performance.now();
    this.originUnixMs = performance.timeOrigin + this.originMs;
  }

  /**
   * Nanoseconds since this clock was created. performance.now() is a monotonic clock everywhere:
   * sub-microsecond in Node, Bun and Deno; in a page 5 µs when cross-origin isolated (the
   * playground is), which ops shorter than that cannot resolve.
   */
  now(): number {
    return Math.round((performance.now() - this.originMs) * 1e6);
  }

  unixMs(ns: number): number {
    return this.originUnixMs + ns / 1e6;
  }

  /** Runs fn with this clock active (nesting restores the outer clock) and returns fn's value. */
  run<T>(fn: () => T): T {
    return active.run(this, fn);
  }

  /** Runs fn as a named stage; its cycles and span are recorded in `stages`. */
  stage<T>(name: string, fn: () => T): T {
    const close = this.beginStage(name);
    try {
      return this.run(fn);
    } finally {
      close();
    }
  }

  /**
   * A stage that awaits between its parts (to let a signal or a page's events in). The clock is
   * not active across the awaits: each part that runs ops wraps them in `run`.
   */
  async stageAsync<T>(name: string, fn: () => Promise<T>): Promise<T> {
    const close = this.beginStage(name);
    try {
      return await fn();
    } finally {
      close();
    }
  }

  /** The stage running now, as far as it has come (end: now), or null between stages. */
  openStage(): StageSpan | null {
    const s = this.current;
    return s === null ? null : { ...s, endNs: this.now(), cycles: this.cycles - s.cycles, bytes: this.bytes - s.bytes };
  }

  private beginStage(name: string): () => void {
    const outer = { name: this.stageName, span: this.current };
    // Until it closes, the span holds the counters' values at its start.
    const span: StageSpan = { name, startNs: this.now(), endNs: 0, cycles: this.cycles, bytes: this.bytes };
    this.stageName = name;
    this.current = span;
    return () => {
      span.endNs = this.now();
      span.cycles = this.cycles - span.cycles;
      span.bytes = this.bytes - span.bytes;
      this.stageName = outer.name;
      this.current = outer.span;
      this.stages.push(span);
    };
  }

  /** Labels the following ops with a decode step (-1: none). */
  setStep(step: number): void {
    this.step = step;
  }

  /** An op's start: now, or while a pass is recorded, its position in the pass. */
  start(): number {
    return this.recording === null ? this.now() : -1 - this.recording.position();
  }

  record(op: string, role: string, inputs: Shape[], output: Shape, cycles: number, bytes: number, startNs: number, kernel: string): void {
    this.cycles += cycles;
    this.bytes += bytes;
    const entry: OpEntry = {
      op, role, inputs, output, cycles, bytes, startNs, endNs: this.start(),
      stage: this.stageName, layer: this.layer, step: this.step, kernel,
    };
    this.entries.push(entry);
    if (entry.startNs < 0) this.unsettled.push(entry);
    this.afterOp?.(entry);
  }

  /**
   * An op of a pass that is not recorded but restored from an earlier recording (kernels/replay.ts):
   * counted as `record` counts, at the positions and in the layer it was recorded at, in this
   * clock's stage and step.
   */
  restore(e: Omit<OpEntry, "stage" | "step">): void {
    this.cycles += e.cycles;
    this.bytes += e.bytes;
    const restored: OpEntry = {
      op: e.op, role: e.role, inputs: e.inputs, output: e.output, cycles: e.cycles, bytes: e.bytes,
      startNs: e.startNs, endNs: e.endNs, stage: this.stageName, layer: e.layer, step: this.step, kernel: e.kernel,
    };
    this.entries.push(restored);
    this.unsettled.push(restored);
  }

  /** Ops from now on are recorded, not run: they stand at `recording`'s positions until settled. */
  beginRecording(recording: Recording): void {
    this.recording = recording;
  }

  /**
   * The recorded pass ran: `stamps` holds each kernel call's start and end on the calling thread
   * (performance.now() ms, two per call). An op's time runs from its first call's start to its
   * last call's end; an op with no call of its own (a view) takes no time, where it stood.
   */
  settle(stamps: Float64Array, calls: number): void {
    this.recording = null;
    // Plain loops, no closures: a pass settles a few hundred entries while the threads wait for
    // the next one, and under tsx each closure made costs a defineProperty of its name.
    const origin = this.originMs;
    const last = calls > 0 ? Math.round((stamps[2 * calls - 1] - origin) * 1e6) : this.now();
    for (const e of this.unsettled) {
      const first = -1 - e.startNs;
      const end = -1 - e.endNs;
      e.startNs = first < calls ? Math.round((stamps[2 * first] - origin) * 1e6) : last;
      e.endNs = end > first ? Math.round((stamps[2 * end - 1] - origin) * 1e6) : e.startNs;
    }
    this.unsettled.length = 0;
  }

  /** @internal called through markLayer */
  setLayer(layer: number): void {
    this.layer = layer;
  }
}

/** Start time for an op: 0 when no clock is active, so untimed ops pay one branch. */
export function opStart(): number {
  const clock = active.current;
  return clock === null ? 0 : clock.start();
}

/** Runs fn with no clock active: its ops count nowhere (a pass that is only rehearsed, see Engine.rehearse). */
export function unclocked<T>(fn: () => T): T {
  return active.run(null, fn);
}

/** The clock ops report to now, if any (an engine tells it when a recorded pass's times are known). */
export function activeClock(): Clock | null {
  return active.current;
}

/** Reports a finished op to the active clock, if any. Cycles and bytes come from shapes, once per call. */
export function opEnd(op: string, role: string, inputs: Shape[], output: Shape, cycles: number, bytes: number, startNs: number, kernel = ""): void {
  active.current?.record(op, role, inputs, output, cycles, bytes, startNs, kernel);
}

/** Lets the model say which block the next ops belong to; a no-op without a clock. */
export function markLayer(layer: number): void {
  active.current?.setLayer(layer);
}
