import type { OpEntry } from "../clock/clock.ts";
import { isWeightProduct, opKind } from "../run/aggregate.ts";
import type { ModelCosts } from "./machine-profile.ts";
import { median } from "./measure.ts";
import { isJoinedCall, isVectorCall, opensPass, predictEntryNs, withJoinedTime } from "./roofline.ts";

/*
 * A profile is measured once and kept; the machine it describes does not keep still (a power
 * mode, a neighbour on a shared core, another day: memory roofs 30–54 GB/s were measured here
 * within one session; a profile measured while another program held a core pays twice for every
 * hand-off between threads). A run warms up before it is timed, and its warm-up passes
 * re-measure the machine: its two roofs, found as the profile found them, and the fixed cost of
 * a call (hand-offs, JavaScript between kernels), as the share of the ops' time the roofs do not
 * explain. The profile is then rescaled by those three factors alone — nothing is fitted to the
 * run's own shapes, so a prediction stays a prediction.
 */

/** Today's machine as multiples of the profile's (1: as measured): its roofs, and its fixed costs per call. */
export interface Drift {
  memory: number;
  compute: number;
  calls: number;
}

/** Today's machine against the profile `p`, from a warm-up's op calls: the roofs' factors, then the calls' at those roofs. */
export function measureDrift(p: ModelCosts, calls: readonly OpEntry[]): Drift {
  const entries = withJoinedTime(calls);
  const roofs = measureRoofs(p, entries);
  return { ...roofs, calls: measureCalls(rescaled(p, { ...roofs, calls: 1 }), entries) };
}

/**
 * The calls' factor: what the warm-up's ops took beyond their work at today's roofs, over what
 * the profile's fixed costs say they should (clamped to 1/20…20; 1 with no fixed costs to scale).
 * It takes up what the roofs leave of the model's own passes — on GPT-2 XL, whose one-row products
 * stream at other rates than its LM head, ×0.2–0.6 of costs fitted on rungs of a layer or two —
 * so it belongs to the model warmed up: on one layer of the predicted width it read ×0.05–2.6,
 * which is why calibrate.ts warms up eight. The call that opens each pass is left out: it carries the
 * pass's start (opensPass), the pass's cost (passNs.fixed), not its op's.
 */
function measureCalls(p: ModelCosts, entries: readonly OpEntry[]): number {
  let took = 0;
  let work = 0;
  let calls = 0;
  for (const [i, e] of entries.entries()) {
    if (isJoinedCall(e)) continue; // no call of its own, no time of its own
    if (opensPass(entries, i)) continue;
    const callNs = p.ops[opKind(e)]?.callNs ?? 0;
    took += e.endNs - e.startNs;
    work += predictEntryNs(p, e) - callNs;
    calls += callNs;
  }
  return calls > 0 ? Math.min(20, Math.max(0.05, (took - work) / calls)) : 1;
}

/**
 * The two roofs' factors, each roof found as the profile found it (src/profile/measure.ts): the
 * memory roof is the rate at which the largest one-row product streams its weights; a product's
 * compute ceiling is its many-row calls' cycles over their time beyond the fixed call cost and
 * their weights' time at that roof, and the compute factor the median of those ceilings'
 * factors. A roof with no such calls keeps 1, as it does where they took no time on the clock (a
 * tiny model's products, or one a worker ran as the calling thread stamped its start).
 */
function measureRoofs(p: ModelCosts, entries: readonly OpEntry[]): Omit<Drift, "calls"> {
  const products = entries.filter((e) => isWeightProduct(opKind(e)) && p.ops[opKind(e)] !== undefined);
  const streams = products.filter((e) => e.inputs[0]?.[0] === 1);
  const largest = Math.max(0, ...streams.map((e) => e.bytes));
  const head = streams.filter((e) => e.bytes === largest);
  // (calls too short for the clock, which took no time, measure no rate)
  const headNs = head.reduce((s, e) => s + e.endNs - e.startNs, 0);
  const memory = headNs > 0 ? (1e9 * head.length * largest) / headNs / p.memoryBytesPerSec : 1;
  const many = new Map<string, { cycles: number; ns: number }>();
  for (const e of products) {
    if (isVectorCall(e)) continue;
    const kind = opKind(e);
    const sum = many.get(kind) ?? { cycles: 0, ns: 0 };
    sum.cycles += e.cycles;
    // beyond the fixed cost and the weights' time at today's memory roof (see serialCall)
    const took = e.endNs - e.startNs;
    sum.ns += Math.max(took - p.ops[kind].callNs - (1e9 * e.bytes) / (p.memoryBytesPerSec * memory), took / 2);
    many.set(kind, sum);
  }
  const factors = [...many].filter(([, s]) => s.ns > 0).map(([kind, s]) => (1e9 * s.cycles) / s.ns / p.ops[kind].cyclesPerSec);
  const compute = factors.length === 0 ? 1 : median(factors);
  return { memory, compute };
}

/**
 * The profile on today's machine: bytes/s ceilings × the memory factor, cycles/s ceilings, the
 * token pick's speed and a pass's recording's × the compute factor, fixed call costs and a pass's
 * time beyond its ops × the calls' factor.
 */
export function rescaled(p: ModelCosts, d: Drift): ModelCosts {
  const ops = Object.fromEntries(Object.entries(p.ops).map(([kind, c]) => [kind, {
    callNs: c.callNs * d.calls,
    cyclesPerSec: c.cyclesPerSec * d.compute,
    ...(c.vectorCyclesPerSec === undefined ? {} : { vectorCyclesPerSec: c.vectorCyclesPerSec * d.compute }),
    ...(c.bytesPerSec === undefined ? {} : { bytesPerSec: c.bytesPerSec * d.memory }),
  }]));
  return {
    ...p,
    memoryBytesPerSec: p.memoryBytesPerSec * d.memory,
    computeCyclesPerSec: p.computeCyclesPerSec * d.compute,
    ops,
    // Recording a pass is the calling thread's JavaScript, as the token pick is: the CPU's speed.
    passNs: { fixed: p.passNs.fixed * d.calls, perToken: p.passNs.perToken * d.calls, recorded: p.passNs.recorded / d.compute },
    samplingNs: { greedy: p.samplingNs.greedy / d.compute, sample: p.samplingNs.sample / d.compute },
  };
}
