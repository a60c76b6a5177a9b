import { type WeightDtype, bytesPerWeight } from "../kernels/packed-matrix.ts";
import type { GPT2Config } from "../model/config.ts";
import { parameterCounts } from "../model/family.ts";
import type { MachineProfile, ModelCosts, OpCost } from "./machine-profile.ts";

/*
 * Reading a machine profile for one model: the article's cycle times belong to the machine, the
 * cycles to the task. The weight products' costs are read at the model's width between the
 * ladder's rungs, and the memory roof is each rung's, moved along the streams' curve to the bytes
 * the model's decode pass streams — all linear in the logarithm (kernels and caches change by
 * factors, not by steps). Outside the ladder the nearest rung's costs stand, and the costs say so.
 */

interface Point {
  x: number;
  y: number;
}

/** y at x, linear in log x between the points (ascending x); the end values beyond them. */
export function interpolateLog(points: readonly Point[], x: number): number {
  if (x <= points[0].x) return points[0].y;
  for (let i = 1; i < points.length; i++) {
    if (x <= points[i].x) {
      const t = Math.log(x / points[i - 1].x) / Math.log(points[i].x / points[i - 1].x);
      return points[i - 1].y + t * (points[i].y - points[i - 1].y);
    }
  }
  return points[points.length - 1].y;
}

/** Bytes of weights one decode pass streams for a model of `c` held as `dtype`. */
export function streamedWeightBytes(c: GPT2Config, dtype: string): number {
  return parameterCounts(c).matmul * bytesPerWeight(dtype as WeightDtype);
}

/**
 * The profile's costs for a model of shape `c` held as `dtype`: products at its width, memory at
 * its working set (the bytes its decode pass streams as `dtype`, whatever setting the profile's was).
 */
export function costsFor(p: MachineProfile, c: GPT2Config, dtype: string): ModelCosts {
  const width = c.nEmbd;
  const rungs = p.rungs;
  const at = (pick: (r: MachineProfile["rungs"][number]) => number | undefined): number | undefined => {
    const points = rungs.flatMap((r) => {
      const y = pick(r);
      return y === undefined ? [] : [{ x: r.width, y }];
    });
    return points.length === 0 ? undefined : interpolateLog(points, width);
  };
  const ops: Record<string, OpCost> = { ...p.ops };
  const kinds = new Set(rungs.flatMap((r) => Object.keys(r.products)));
  for (const kind of kinds) {
    const vector = at((r) => r.products[kind]?.vectorCyclesPerSec);
    ops[kind] = {
      callNs: at((r) => r.products[kind]?.callNs)!,
      cyclesPerSec: at((r) => r.products[kind]?.cyclesPerSec)!,
      ...(vector === undefined ? {} : { vectorCyclesPerSec: vector }),
    };
  }
  // Each rung's LM-head rate (its products' call costs were fitted against it), moved from the
  // rung's working set to the model's along the streams' curve; then read at the model's width.
  const bytes = streamedWeightBytes(c, dtype);
  const stream = (x: number) => interpolateLog(p.streams.map((s) => ({ x: s.bytes, y: s.bytesPerSec })), x);
  const memoryBytesPerSec = at((r) => (r.memoryBytesPerSec * stream(bytes)) / stream(r.weightBytes))!;
  const [low, high] = [rungs[0].width, rungs[rungs.length - 1].width];
  const outside: string[] = [];
  if (width < low || width > high) outside.push(`width ${width} outside the profile's ladder (${low}–${high})`);
  if (bytes > 2 * p.streams[p.streams.length - 1].bytes) outside.push(`${(bytes / 2 ** 30).toFixed(2)} GiB past its streams`);
  return {
    memoryBytesPerSec,
    computeCyclesPerSec: Math.max(...[...kinds].map((k) => ops[k].cyclesPerSec)),
    ops,
    passNs: { fixed: p.passNs.fixed + p.passNs.perLayer * c.nLayer, perToken: p.passNs.perToken, recorded: p.passNs.recordedPerLayer * c.nLayer },
    samplingNs: p.samplingNs,
    extrapolated: outside.length === 0 ? null : outside.join("; "),
  };
}
