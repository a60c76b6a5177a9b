import type { OpEntry } from "../clock/clock.ts";
import { JOINED } from "../kernels/simd-ops.ts";
import { isWeightProduct, opKind } from "../run/aggregate.ts";
import type { ModelCosts, OpCost } from "./machine-profile.ts";

/*
 * The article's processing delay, made to predict: each op call takes its fixed cost plus the
 * longer of its work at its compute ceiling and its bytes at the memory roof (or at its own
 * lower byte ceiling: copies into fresh pages, attention's strided reads),
 *   t = call + max(cycles ÷ cycles/s, bytes ÷ bytes/s),
 * or, for a weight product on many rows, their sum (see serialCall),
 * so an op's cycle time is not a constant: it is 1 ÷ (cycles/s) while the op reuses what it
 * reads (compute-bound) and (bytes per cycle) ÷ (bytes/s) when every cycle needs new bytes
 * (memory-bound, as a one-row product that reads each weight for one multiply-accumulate).
 */

export type Bound = "compute" | "memory" | "call";

/** The part of a profile the roofline reads. */
export type Roofline = Pick<ModelCosts, "memoryBytesPerSec" | "computeCyclesPerSec" | "ops">;

/**
 * Whether a product runs on the kernel tuned for one row: every decode pass (one row, or one row
 * per sequence of a batch) and a one-token prompt's pass (see SimdMatmul.run).
 */
export function isVectorCall(e: OpEntry): boolean {
  return e.stage === "decode" || e.inputs[0]?.[0] === 1;
}

/**
 * The roofline's three terms in ns for `calls` calls of `kind` doing `cycles` and moving `bytes`
 * (`vector`: on the one-row kernel). A kind the profile did not see has no fixed cost and the
 * products' compute roof.
 */
function terms(p: Roofline, kind: string, cycles: number, bytes: number, calls: number, vector: boolean): { call: number; compute: number; memory: number } {
  const c: OpCost = p.ops[kind] ?? { callNs: 0, cyclesPerSec: p.computeCyclesPerSec };
  const cyclesPerSec = vector ? (c.vectorCyclesPerSec ?? c.cyclesPerSec) : c.cyclesPerSec;
  return { call: c.callNs * calls, compute: (1e9 * cycles) / cyclesPerSec, memory: (1e9 * bytes) / (c.bytesPerSec ?? p.memoryBytesPerSec) };
}

/**
 * Whether a call's bytes and cycles take their times one after the other: a weight product on
 * many rows works on each panel's rows once its weights are in, and across the family its
 * prefills took the sum (see docs/cost-model.md); every other call overlaps them.
 */
export const serialCall = (kind: string, vector: boolean): boolean => !vector && isWeightProduct(kind);

/** Predicted nanoseconds of one call of `kind` that does `cycles` of work and moves `bytes`. */
export function predictCallNs(p: Roofline, kind: string, cycles: number, bytes: number, vector = false): number {
  const t = terms(p, kind, cycles, bytes, 1, vector);
  return t.call + (serialCall(kind, vector) ? t.compute + t.memory : Math.max(t.compute, t.memory));
}

/**
 * Whether a call joined the node before it in its pass's plan (kernels/plan.ts: a bias add or a
 * GELU on a product's columns, a decode step's softmax and values on its scores): its chunks ran
 * inside the product's, on the same thread, and its time is the product's — the product's
 * ceilings were measured with it inside. It takes none of its own, and pays no call.
 */
export const isJoinedCall = (e: OpEntry): boolean => e.kernel === JOINED;

/**
 * The calls with their times as the profile counts them: a call that others joined takes their
 * time (a report shares a group's time out among its calls, see threads.ts stampsOf), and they
 * take none — copies, for the fits; the clock's entries stay as they are.
 */
export function withJoinedTime(entries: readonly OpEntry[]): OpEntry[] {
  const out = entries.map((e) => ({ ...e }));
  let owner: OpEntry | null = null;
  for (const e of out) {
    if (isJoinedCall(e) && owner !== null) {
      owner.endNs += e.endNs - e.startNs;
      e.endNs = e.startNs;
    } else if (e.kernel !== "") owner = e;
  }
  return out;
}

/**
 * The calls that open a forward pass's parallel region: the first after its embedding (which runs
 * as the pass is recorded). Its time runs from when the threads could start (the recording or
 * restoring before that is between ops: see ThreadTeam.stampsOf), so it still carries what
 * starting the region costs — a wake of workers that slept, their first steps into the plan
 * (GPT-2 small q8 on 2 threads: the first layer norm 6–10 µs in the median, up to 68, the others
 * about 3): a cost of the pass, not of the op that happens to come first, and one that a
 * profile's rungs of a layer or two would otherwise spread over a few calls that a model of 48
 * layers makes a hundred times as often.
 */
export function opensPass(entries: readonly OpEntry[], i: number): boolean {
  return i > 0 && entries[i - 1].op === "embed";
}

/** Predicted nanoseconds of one op call, as the clock recorded it (0 for a call that joined the one before it). */
export function predictEntryNs(p: Roofline, e: OpEntry): number {
  return isJoinedCall(e) ? 0 : predictCallNs(p, opKind(e), e.cycles, e.bytes, isVectorCall(e));
}

/** Which term of the roofline dominates a call (or a sum of calls) of `kind`. */
export function boundOf(p: Roofline, kind: string, cycles: number, bytes: number, calls: number, vector = false): Bound {
  const t = terms(p, kind, cycles, bytes, calls, vector);
  if (t.call > Math.max(t.compute, t.memory)) return "call";
  return t.compute >= t.memory ? "compute" : "memory";
}

/** What a prediction knows of a forward pass: its tokens, the tokens it picks (one per sequence), and whether it is the prompt's (recorded anew, never restored). */
export interface PassShapeForPrediction {
  tokens: number;
  picks: number;
  prompt: boolean;
}

/** Nanoseconds a forward pass spends outside the ops, picking its tokens included. */
export function passOverheadNs(p: ModelCosts, pass: PassShapeForPrediction, sampling: "greedy" | "sample"): number {
  return p.passNs.fixed + p.passNs.perToken * pass.tokens + (pass.prompt ? p.passNs.recorded : 0) + p.samplingNs[sampling] * pass.picks;
}

/**
 * Predicted nanoseconds of each forward pass of a run: the pass's overhead (`steps[i]`: its tokens,
 * and the tokens it picks, one per sequence) plus every op call it made on the roofline. Entries
 * carry their pass's index in `step`; those outside a pass (step −1) belong to none.
 */
export function predictStepsNs(p: ModelCosts, entries: readonly OpEntry[], steps: readonly PassShapeForPrediction[], sampling: "greedy" | "sample"): number[] {
  const ns = steps.map((s) => passOverheadNs(p, s, sampling));
  for (const e of entries) if (e.step >= 0) ns[e.step] += predictEntryNs(p, e);
  return ns;
}
