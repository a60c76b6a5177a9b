import type { OpEntry } from "../clock/clock.ts";
import { isWeightProduct, opKind } from "../run/aggregate.ts";
import type { ModelCosts } from "./machine-profile.ts";
import { isVectorCall } from "./roofline.ts";

/*
 * A profile is measured once and kept; the machine it describes does not keep still (a power
 * mode, a neighbour on a shared core, another day: memory roofs 30–54 GB/s were measured here
 * within one session). A run warms up before it is timed, and its warm-up passes re-measure the
 * machine's two roofs: how long the weight products took against what the profile predicts for
 * them, on the roof that bounds each. The profile is then rescaled by those two factors alone —
 * nothing is fitted to the run's own shapes, so a prediction stays a prediction.
 */

/** Today's roofs as multiples of the profile's (1: as measured). */
export interface Drift {
  memory: number;
  compute: number;
}

export const NO_DRIFT: Drift = { memory: 1, compute: 1 };

/**
 * The two roofs' factors from a warm-up's op calls, each roof found as the profile found it
 * (src/profile/measure.ts): the memory roof is the rate at which the largest one-row product
 * streams its weights; a product's compute ceiling is its many-row calls' cycles over their time
 * beyond the fixed call cost, and the compute factor the median of those ceilings' factors. A
 * roof with no such calls keeps factor 1.
 */
export function measureDrift(p: ModelCosts, entries: readonly OpEntry[]): Drift {
  const products = entries.filter((e) => isWeightProduct(opKind(e)) && p.ops[opKind(e)] !== undefined);
  const streams = products.filter((e) => e.inputs[0]?.[0] === 1);
  const largest = Math.max(0, ...streams.map((e) => e.bytes));
  const head = streams.filter((e) => e.bytes === largest);
  const memory = head.length === 0 ? 1 : (1e9 * head.length * largest) / head.reduce((s, e) => s + e.endNs - e.startNs, 0) / p.memoryBytesPerSec;
  const many = new Map<string, { cycles: number; ns: number }>();
  for (const e of products) {
    if (isVectorCall(e)) continue;
    const kind = opKind(e);
    const sum = many.get(kind) ?? { cycles: 0, ns: 0 };
    sum.cycles += e.cycles;
    sum.ns += Math.max(e.endNs - e.startNs - p.ops[kind].callNs, (e.endNs - e.startNs) / 2);
    many.set(kind, sum);
  }
  const factors = [...many].map(([kind, s]) => (1e9 * s.cycles) / s.ns / p.ops[kind].cyclesPerSec).sort((a, b) => a - b);
  const compute = factors.length === 0 ? 1 : factors.length % 2 === 1 ? factors[(factors.length - 1) / 2] : (factors[factors.length / 2 - 1] + factors[factors.length / 2]) / 2;
  return { memory, compute };
}

/**
 * The profile on today's machine: bytes/s ceilings × the memory factor, cycles/s ceilings × the
 * compute factor, and the times the processor spends between and around the kernels (fixed
 * call costs, a pass's time beyond its ops, token picks) ÷ the compute factor.
 */
export function rescaled(p: ModelCosts, d: Drift): ModelCosts {
  const ops = Object.fromEntries(Object.entries(p.ops).map(([kind, c]) => [kind, {
    callNs: c.callNs / d.compute,
    cyclesPerSec: c.cyclesPerSec * d.compute,
    ...(c.vectorCyclesPerSec === undefined ? {} : { vectorCyclesPerSec: c.vectorCyclesPerSec * d.compute }),
    ...(c.bytesPerSec === undefined ? {} : { bytesPerSec: c.bytesPerSec * d.memory }),
  }]));
  return {
    ...p,
    memoryBytesPerSec: p.memoryBytesPerSec * d.memory,
    computeCyclesPerSec: p.computeCyclesPerSec * d.compute,
    ops,
    passNs: { fixed: p.passNs.fixed / d.compute, perToken: p.passNs.perToken / d.compute },
    samplingNs: { greedy: p.samplingNs.greedy / d.compute, sample: p.samplingNs.sample / d.compute },
  };
}
