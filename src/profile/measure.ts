import { Clock, type OpEntry } from "../clock/clock.ts";
import type { GPT2Model } from "../model/model.ts";
import { isWeightProduct, opKind } from "../run/aggregate.ts";
import { GREEDY, TokenPicker } from "../run/sampling.ts";
import { Random } from "../util/random.ts";
import { type MachineProfile, type OpCost, PROFILE_VERSION, type ProfileKey } from "./machine-profile.ts";
import { type Roofline, isVectorCall, predictCallNs } from "./roofline.ts";

/*
 * Measures a machine profile on the model itself: warm-up rounds (the first also makes the
 * autotuner choose every product's kernel), then a few timed rounds of a prefill, decode steps
 * and a decode batch's steps. From their op calls it fits, per op kind, the roofline's terms:
 *  - the memory roof: the LM head's one-row product, which streams more weights than any cache
 *    holds; each product's fixed cost: what its one-row calls take beyond their bytes at that roof;
 *  - each product's compute ceiling: the prefill's many-row calls, less the fixed cost; and the
 *    one-row kernel's, from a decode batch's calls;
 *  - every other op: a line in its cycles over the shapes it ran at (intercept: the call);
 *  - the time a pass takes beyond its ops' fitted costs, and the token pick.
 */

const PREFILL_TOKENS = 64;
const DECODE_STEPS = 16;
/** Decode steps of a batch of sequences, for the one-row kernel's pace on several rows. */
const BATCH = 8;
const BATCH_STEPS = 2;
const REPEATS = 5;
/**
 * Untimed rounds of the profile's passes first (a run warms up the same way): a process runs its
 * first ones 15–40% slower however long it has been idle, until V8 has optimised the code
 * between the kernels (measured: the second and third rounds still slower, none after).
 */
export const WARM_UPS = 3;
const SAMPLING_REPEATS = 15;

/*
 * Means, not medians: a stage's time is a sum over calls, and on a shared machine the pauses (a
 * collection, a neighbour on the other core) are part of it: medians predict a machine at rest
 * and fell 10–20% short of every two-thread decode measured here. The price: a profile measured
 * during a noisy minute carries that minute's pauses.
 */
const mean = (xs: readonly number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/** Least-squares line y = a + b·x. */
function line(points: readonly { x: number; y: number }[]): { a: number; b: number } {
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const p of points) {
    sxy += (p.x - mx) * (p.y - my);
    sxx += (p.x - mx) ** 2;
  }
  const b = sxx > 0 ? sxy / sxx : 0;
  return { a: my - b * mx, b };
}

export interface Group {
  cycles: number;
  bytes: number;
  rows: number;
  /** Run on the one-row kernel (see isVectorCall). */
  vector: boolean;
  ns: number;
}

/** Calls of one kind grouped by shape (cycles and bytes), each group's mean time. */
function groupsOf(entries: readonly OpEntry[]): Map<string, Group[]> {
  const byKind = new Map<string, Map<string, { e: OpEntry; ns: number[] }>>();
  for (const e of entries) {
    const kind = opKind(e);
    const shapes = byKind.get(kind) ?? new Map();
    const id = `${isVectorCall(e)}/${e.cycles}/${e.bytes}`;
    const g = shapes.get(id) ?? { e, ns: [] };
    g.ns.push(e.endNs - e.startNs);
    shapes.set(id, g);
    byKind.set(kind, shapes);
  }
  const out = new Map<string, Group[]>();
  for (const [kind, shapes] of byKind) {
    out.set(kind, [...shapes.values()].map(({ e, ns }) => ({ cycles: e.cycles, bytes: e.bytes, rows: e.inputs[0]?.[0] ?? 0, vector: isVectorCall(e), ns: mean(ns) })));
  }
  return out;
}

/**
 * The weight products. The memory roof is the rate at which the largest one-row product (the
 * LM head: more weights than any cache holds) streams its weights; each product's fixed cost is
 * what its one-row calls take beyond their bytes at that rate (thread hand-off, and the ramp a
 * short stream never finishes); its compute ceiling comes from the many-row calls, less that cost.
 * The one-row kernel's ceiling comes from decode batches: with the fixed cost as above, their
 * cycles over the rest of their time, unless that ceiling would make the one-row calls
 * compute-bound (q8 weights: few bytes per cycle); then the one-row and batch calls fix both, the
 * ceiling as the slope between them. Either way the roofline gives both the time they took.
 */
export function fitProducts(groups: Map<string, Group[]>): { memoryBytesPerSec: number; ops: Record<string, OpCost> } {
  const products = [...groups].filter(([kind]) => isWeightProduct(kind));
  const streams = products.flatMap(([, gs]) => gs.filter((g) => g.rows === 1));
  const largest = streams.reduce((a, b) => (b.bytes > a.bytes ? b : a));
  const memoryBytesPerSec = (1e9 * largest.bytes) / largest.ns;
  const memoryNs = (g: Group) => (1e9 * g.bytes) / memoryBytesPerSec;
  const ops: Record<string, OpCost> = {};
  for (const [kind, gs] of products) {
    const one = gs.filter((g) => g.rows === 1);
    const callNs = one.length > 0 ? Math.max(0, median(one.map((g) => g.ns - memoryNs(g)))) : 0;
    const many = gs.filter((g) => g.rows > 1 && !g.vector);
    const cyclesPerSec = many.length > 0 ? 1e9 * median(many.map((g) => g.cycles / Math.max(g.ns - callNs, g.ns / 2))) : 0;
    ops[kind] = { callNs, cyclesPerSec, ...fitVector(one, gs.filter((g) => g.rows > 1 && g.vector), callNs, memoryNs) };
  }
  const best = Math.max(...Object.values(ops).map((c) => c.cyclesPerSec));
  // A product that only ever ran on one row (the LM head) runs at the best ceiling when it reuses its weights.
  for (const cost of Object.values(ops)) if (cost.cyclesPerSec === 0) cost.cyclesPerSec = best;
  return { memoryBytesPerSec, ops };
}

/** The one-row kernel's ceiling and fixed cost, from one-row and batch calls (see fitProducts). */
function fitVector(one: readonly Group[], batch: readonly Group[], callNs: number, memoryNs: (g: Group) => number): Partial<Pick<OpCost, "callNs" | "vectorCyclesPerSec">> {
  if (one.length === 0 || batch.length === 0) return {};
  const ceiling = 1e9 * median(batch.map((g) => g.cycles / Math.max(g.ns - callNs, g.ns / 2)));
  if (one.every((g) => (1e9 * g.cycles) / ceiling <= memoryNs(g))) return { vectorCyclesPerSec: ceiling };
  const [o, b] = [one[0], batch[0]];
  const slope = (1e9 * (b.cycles - o.cycles)) / (b.ns - o.ns);
  if (!(slope > 0)) return { vectorCyclesPerSec: ceiling };
  return { callNs: Math.max(0, o.ns - (1e9 * o.cycles) / slope), vectorCyclesPerSec: slope };
}

/**
 * Any other op: time as a line in its cycles. Ops with no cycles (copies) are a line in their
 * bytes instead, with their own byte rate when it is below the memory roof: the KV cache's
 * appends write fresh pages, and each first touch of a page costs the kernel a fault.
 */
function fitOp(gs: readonly Group[], memoryBytesPerSec: number, computeRoof: number): OpCost {
  const copies = gs.every((g) => g.cycles === 0);
  const { a, b } = line(gs.map((g) => ({ x: copies ? g.bytes : g.cycles, y: g.ns })));
  const work = gs.reduce((s, g) => s + (copies ? g.bytes : g.cycles), 0);
  const ns = gs.reduce((s, g) => s + g.ns, 0);
  const fit = b > 0 && a >= 0 ? { callNs: a, rate: 1e9 / b } : { callNs: 0, rate: (1e9 * work) / ns };
  if (!copies) return { callNs: fit.callNs, cyclesPerSec: fit.rate };
  return { callNs: fit.callNs, cyclesPerSec: computeRoof, ...(fit.rate < memoryBytesPerSec ? { bytesPerSec: fit.rate } : {}) };
}

/** The passes the profile times (and a run warms up with): a prefill and decode steps that fit the context. */
export function passShape(nPositions: number): { prefill: number; decode: number } {
  const decode = Math.min(DECODE_STEPS, Math.floor(nPositions / 4));
  return { prefill: Math.min(PREFILL_TOKENS, nPositions - decode), decode };
}

export function measureProfile(model: GPT2Model, key: ProfileKey, log: (line: string) => void = () => {}): MachineProfile {
  const started = performance.now();
  const { vocabSize, nPositions } = model.config;
  const { prefill, decode: decodeSteps } = passShape(nPositions);
  const ids = Array.from({ length: prefill + decodeSteps }, (_, i) => (i * 7919 + 13) % vocabSize);
  const passes: { tokens: number; ns: number; first: number; end: number }[] = [];
  let logits: Float32Array = new Float32Array(vocabSize);
  const into = new Float32Array(BATCH * vocabSize);

  const run = (clock: Clock | null) => {
    const cache = model.newCache(prefill + decodeSteps);
    const forward = (tokens: number[]) => {
      if (clock === null) return void (logits = model.step(tokens, cache, 1, into).data);
      const first = clock.entries.length;
      const t0 = clock.now();
      logits = clock.run(() => model.step(tokens, cache, 1, into)).data;
      passes.push({ tokens: tokens.length, ns: clock.now() - t0, first, end: clock.entries.length });
    };
    forward(ids.slice(0, prefill));
    for (let i = 0; i < decodeSteps; i++) forward([ids[prefill + i]]);
    // A batch, as --num-return-sequences decodes one (its products' calls only: not a pass the
    // time between ops is fitted on).
    const caches = Array.from({ length: BATCH }, () => model.newCache(BATCH_STEPS));
    for (let i = 0; i < BATCH_STEPS; i++) {
      const tokens = caches.map((_, s) => ids[(s + i) % ids.length]);
      if (clock === null) model.stepBatch(tokens, caches, into);
      else clock.stage("decode", () => model.stepBatch(tokens, caches, into));
    }
  };

  // Every pass's cache, reserved now: no pass may grow the kernels' memory (as no run does).
  model.reserveCaches(REPEATS + WARM_UPS, prefill + decodeSteps);
  model.reserveCaches(BATCH * (REPEATS + WARM_UPS), BATCH_STEPS);
  log(`profile: warm-up (${WARM_UPS} × a ${prefill}-token prefill and ${decodeSteps} decode steps), choosing each product's kernel…`);
  for (let w = 0; w < WARM_UPS; w++) run(null);
  const clock = new Clock();
  for (let r = 0; r < REPEATS; r++) {
    log(`profile: timed pass ${r + 1} of ${REPEATS}…`);
    run(clock);
  }

  const groups = groupsOf(clock.entries);
  const products = fitProducts(groups);
  const computeCyclesPerSec = Math.max(...Object.values(products.ops).map((c) => c.cyclesPerSec));
  const ops: Record<string, OpCost> = { ...products.ops };
  for (const [kind, gs] of groups) if (ops[kind] === undefined) ops[kind] = fitOp(gs, products.memoryBytesPerSec, computeCyclesPerSec);

  // What each pass took beyond its ops' predicted costs: JavaScript between the ops, and pauses.
  const fitted: Roofline = { memoryBytesPerSec: products.memoryBytesPerSec, computeCyclesPerSec, ops };
  const beyondOps = (p: (typeof passes)[number]) => p.ns - clock.entries.slice(p.first, p.end).reduce((s, e) => s + predictCallNs(fitted, opKind(e), e.cycles, e.bytes, isVectorCall(e)), 0);
  const gap = (tokens: number) => mean(passes.filter((p) => p.tokens === tokens).map(beyondOps));
  const perToken = prefill > 1 ? Math.max(0, (gap(prefill) - gap(1)) / (prefill - 1)) : 0;
  const passNs = { fixed: Math.max(0, gap(1) - perToken), perToken };

  log("profile: timing token picks…");
  const picker = new TokenPicker(vocabSize);
  const timePick = (doSample: boolean) => {
    const rng = new Random(1);
    const ns: number[] = [];
    for (let r = 0; r < SAMPLING_REPEATS; r++) {
      const t0 = performance.now();
      picker.pick(logits, doSample ? { ...GREEDY, doSample } : GREEDY, rng);
      picker.top(logits, 5);
      ns.push((performance.now() - t0) * 1e6);
    }
    return mean(ns);
  };
  const samplingNs = { greedy: timePick(false), sample: timePick(true) };

  return {
    version: PROFILE_VERSION,
    key,
    measuredAt: new Date().toISOString(),
    measureSeconds: (performance.now() - started) / 1000,
    memoryBytesPerSec: products.memoryBytesPerSec,
    computeCyclesPerSec,
    ops,
    passNs,
    samplingNs,
    kernels: model.engine.kernelWisdom(),
  };
}
