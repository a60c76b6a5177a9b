import { Clock, type OpEntry } from "../clock/clock.ts";
import type { Engine } from "../kernels/engine.ts";
import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import type { GPT2Config } from "../model/config.ts";
import { randomModel } from "../model/load.ts";
import type { GPT2Model } from "../model/model.ts";
import { matmul } from "../tensor/matmul.ts";
import { Tensor } from "../tensor/tensor.ts";
import { isWeightProduct, opKind } from "../run/aggregate.ts";
import { GREEDY, TokenPicker } from "../run/sampling.ts";
import { Random } from "../util/random.ts";
import { type MachineProfile, type OpCost, PROFILE_VERSION, type ProfileKey } from "./machine-profile.ts";
import { streamedWeightBytes } from "./ladder.ts";
import { type Roofline, isJoinedCall, isVectorCall, opensPass, predictEntryNs, withJoinedTime } from "./roofline.ts";

/*
 * Measures a machine profile on a ladder of GPT-2-shaped models with random weights (rungs that
 * span the family's widths, a layer or two each: the cost of a product depends on its shape, not
 * on how many layers repeat it) and on a ladder of weight streams (the memory roof of a model
 * depends on whether its weights fit a cache). On each rung: warm-up rounds (the first also makes
 * the autotuner choose every product's kernel), then a few timed rounds of a prefill, decode steps
 * and a decode batch's steps, a long prefill for attention at long contexts, and decode steps at
 * the end of the context over caches too large for the CPU's. From their op calls it fits, per op
 * kind, the roofline's terms:
 *  - per rung, each product's fixed cost and ceilings: the LM head's one-row stream sets the
 *    rung's memory rate, what one-row calls take beyond it is their fixed cost, the prefill's
 *    many-row calls (beyond their weights' time) give the compute ceiling and a decode batch's
 *    the one-row kernel's;
 *  - every other op, over all rungs: a line in its cycles over the shapes it ran at; and for
 *    attention, the rate its one-row calls read a long context's keys and values from memory;
 *  - the memory roof per working set: one-row products over weights of that many bytes;
 *  - the time a pass takes beyond its ops' fitted costs (fixed, per layer, per token), and the
 *    token pick.
 */

/** A rung of the ladder: a GPT-2-shaped model. */
export interface LadderRung {
  nEmbd: number;
  nHead: number;
  nLayer: number;
}

export interface Ladder {
  rungs: LadderRung[];
  vocabSize: number;
  nPositions: number;
  /** Working sets of the memory roof, in bytes of weights, streamed as [K, N] matrices of `streamShape`. */
  streams: number[];
  streamShape: [number, number];
}

/**
 * The family's ladder: widths 768 and 1600 (GPT-2 small's and XL's; inner dimensions 3072 and
 * 6400), two depths (the time between ops grows with the layers), GPT-2's vocabulary (the LM head
 * is the largest product), and weight streams from what a cache holds to past it.
 */
export const FAMILY_LADDER: Ladder = {
  rungs: [{ nEmbd: 768, nHead: 12, nLayer: 2 }, { nEmbd: 1600, nHead: 25, nLayer: 1 }],
  vocabSize: 50257,
  nPositions: 1024,
  streams: [64, 256, 1024, 1536].map((mib) => mib * 2 ** 20),
  streamShape: [1600, 6400],
};

/** A ladder of small shapes with the same structure, for tests: milliseconds instead of seconds. */
export const TINY_LADDER: Ladder = {
  rungs: [{ nEmbd: 32, nHead: 4, nLayer: 2 }, { nEmbd: 64, nHead: 4, nLayer: 1 }],
  vocabSize: 320,
  nPositions: 96,
  streams: [2 ** 20, 4 * 2 ** 20],
  streamShape: [64, 1024],
};

const PREFILL_TOKENS = 64;
/** Tokens of each rung's long prefill (see longPrefill). */
const LONG_PREFILL = 512;
/** Keys and values the long-context decode steps read, over as many caches as that takes (see longDecode). */
const LONG_DECODE_BYTES = 96 * 2 ** 20;
const STREAM_ROUNDS = 4;
const STREAM_BYTES = 2 ** 30;
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

export const median = (xs: readonly number[]): number => {
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
  for (const [i, e] of entries.entries()) {
    if (isJoinedCall(e)) continue; // its time is its product's (see isJoinedCall)
    if (opensPass(entries, i)) continue; // what it took beyond its op is the pass's (see the gaps)
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
 * short stream never finishes); its compute ceiling comes from the many-row calls, less that cost
 * and their bytes at that rate (a many-row call takes the two one after the other: serialCall).
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
    const vector = fitVector(one, gs.filter((g) => g.rows > 1 && g.vector), callNs, memoryNs);
    const fixed = vector.callNs ?? callNs;
    const many = gs.filter((g) => g.rows > 1 && !g.vector);
    // what the many-row calls took beyond their fixed cost and their weights' time (see serialCall)
    const cyclesPerSec = many.length > 0 ? 1e9 * median(many.map((g) => g.cycles / Math.max(g.ns - fixed - memoryNs(g), g.ns / 2))) : 0;
    ops[kind] = { ...vector, callNs: fixed, cyclesPerSec };
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
 * appends write fresh pages, and each first touch of a page costs the kernel a fault. Where the
 * op also ran on one row (a decode step's), those calls set its fixed cost: the line through
 * prefills of 64 and 512 rows does not pin its intercept to the microseconds a one-row call
 * takes (layer norm: 26–72 µs from the line, where a decode step's layer norms take about 3 µs
 * but the first, which carries the pass's start; see opensPass).
 */
function fitOp(gs: readonly Group[], memoryBytesPerSec: number, computeRoof: number): OpCost {
  const copies = gs.every((g) => g.cycles === 0);
  const x = (g: Group) => (copies ? g.bytes : g.cycles);
  const { a, b } = line(gs.map((g) => ({ x: x(g), y: g.ns })));
  const work = gs.reduce((s, g) => s + x(g), 0);
  const ns = gs.reduce((s, g) => s + g.ns, 0);
  const fit = b > 0 && a >= 0 ? { callNs: a, rate: 1e9 / b } : { callNs: 0, rate: (1e9 * work) / ns };
  const one = gs.filter((g) => g.vector);
  if (one.length > 0 && one.length < gs.length) fit.callNs = Math.max(0, median(one.map((g) => g.ns - (1e9 * x(g)) / fit.rate)));
  if (!copies) return { callNs: fit.callNs, cyclesPerSec: fit.rate };
  return { callNs: fit.callNs, cyclesPerSec: computeRoof, ...(fit.rate < memoryBytesPerSec ? { bytesPerSec: fit.rate } : {}) };
}

/** The passes the profile times (and a run warms up with): a prefill and decode steps that fit the context. */
export function passShape(nPositions: number): { prefill: number; decode: number } {
  const decode = Math.min(DECODE_STEPS, Math.floor(nPositions / 4));
  return { prefill: Math.min(PREFILL_TOKENS, nPositions - decode), decode };
}

/** `count` token ids spread over the vocabulary, the same every time (what the profile's passes take in). */
const tokenIds = (count: number, vocabSize: number): number[] => Array.from({ length: count }, (_, i) => (i * 7919 + 13) % vocabSize);

const configOf = (rung: LadderRung, ladder: Ladder): GPT2Config => ({ ...rung, vocabSize: ladder.vocabSize, nPositions: ladder.nPositions, layerNormEpsilon: 1e-5 });

/** A rung's timed calls and passes, kept until every rung has run (the other ops fit over all of them). */
interface RungRun {
  rung: LadderRung;
  entries: OpEntry[];
  /** The long prefill's context-bound calls (see longPrefill). */
  long: OpEntry[];
  /** The context-bound calls of decode steps at the end of the context (see longDecode). */
  longDecode: OpEntry[];
  /** `restored`: the pass was restored from earlier recordings rather than recorded (kernels/replay.ts). */
  passes: { tokens: number; ns: number; first: number; end: number; restored: boolean }[];
  products: { memoryBytesPerSec: number; ops: Record<string, OpCost> };
}

/**
 * The machine's profile for `key`'s setting, measured on `ladder`. Each rung runs on an engine of
 * its own, made by `newEngine` (the setting's kernel, threads and dtype) and disposed after.
 */
export async function measureProfile(newEngine: () => Engine, key: ProfileKey, log: (line: string) => void = () => {}, ladder: Ladder = FAMILY_LADDER): Promise<MachineProfile> {
  const started = performance.now();
  const runs: RungRun[] = [];
  let streams: MachineProfile["streams"] = [];
  let samplingNs = { greedy: 0, sample: 0 };
  const kernels: MachineProfile["kernels"] = {};
  for (const [i, rung] of ladder.rungs.entries()) {
    const config = configOf(rung, ladder);
    log(`profile: rung ${i + 1} of ${ladder.rungs.length}: width ${rung.nEmbd}, ${rung.nLayer} layer${rung.nLayer === 1 ? "" : "s"}, random weights…`);
    const model = await randomModel(newEngine(), config);
    try {
      await model.engine.ready();
      const run = measureRung(model, log);
      runs.push({ rung, ...run, products: fitProducts(groupsOf(run.entries)) });
      Object.assign(kernels, model.engine.kernelWisdom());
      if (i === ladder.rungs.length - 1) {
        samplingNs = timeSampling(model, log);
        streams = measureStreams(model.engine, ladder, log);
      }
    } finally {
      await model.dispose();
    }
  }

  const all = runs.flatMap((r) => [...r.entries, ...r.long]);
  const groups = groupsOf(all);
  const computeCyclesPerSec = Math.max(...runs.flatMap((r) => Object.values(r.products.ops).map((c) => c.cyclesPerSec)));
  const ops: Record<string, OpCost> = {};
  const memoryBytesPerSec = Math.max(...runs.map((r) => r.products.memoryBytesPerSec));
  for (const [kind, gs] of groups) if (!isWeightProduct(kind)) ops[kind] = fitOp(gs, memoryBytesPerSec, computeCyclesPerSec);
  fitContextReads(ops, runs.flatMap((r) => r.longDecode), memoryBytesPerSec);

  // What each rung's passes took beyond their ops' predicted costs: JavaScript between the ops,
  // and pauses. Per layer (the depths differ), per token, and the rest, as decode steps pay it on
  // average (a few of them recorded, most restored); and what a recorded one-token pass pays
  // beyond that, as the prompt's pass always does (recorded, never restored: about 3 ms more than
  // a restored step for GPT-2 small in q8 here, the model's code running op by op).
  const gaps = runs.map((r) => {
    const fitted: Roofline = { memoryBytesPerSec: r.products.memoryBytesPerSec, computeCyclesPerSec, ops: { ...ops, ...r.products.ops } };
    const beyondOps = (p: RungRun["passes"][number]) => p.ns - r.entries.slice(p.first, p.end).reduce((s, e) => s + predictEntryNs(fitted, e), 0);
    const passGaps = (keep: (p: RungRun["passes"][number]) => boolean) => r.passes.filter(keep).map(beyondOps);
    const gap = (keep: (p: RungRun["passes"][number]) => boolean) => mean(passGaps(keep));
    const one = gap((p) => p.tokens === 1);
    // (a median: the few recorded steps of a round are the first to meet a stall on a busy machine)
    const recordedSteps = passGaps((p) => p.tokens === 1 && !p.restored);
    const recorded = recordedSteps.length > 0 ? Math.max(0, median(recordedSteps) - one) : 0;
    const prefill = Math.max(...r.passes.map((p) => p.tokens));
    const perToken = prefill > 1 ? Math.max(0, (gap((p) => p.tokens === prefill) - one - recorded) / (prefill - 1)) : 0;
    return { layers: r.rung.nLayer, one, perToken, recorded };
  });
  const recordedPerLayer = mean(gaps.map((g) => g.recorded / g.layers));
  const perToken = mean(gaps.map((g) => g.perToken));
  const byDepth = line(gaps.map((g) => ({ x: g.layers, y: g.one - perToken })));
  const perLayer = Math.max(0, byDepth.b);
  const fixed = Math.max(0, mean(gaps.map((g) => g.one - perToken - perLayer * g.layers)));

  return {
    version: PROFILE_VERSION,
    key,
    measuredAt: new Date().toISOString(),
    measureSeconds: (performance.now() - started) / 1000,
    rungs: runs.map((r) => ({
      width: r.rung.nEmbd, heads: r.rung.nHead, layers: r.rung.nLayer, memoryBytesPerSec: r.products.memoryBytesPerSec,
      weightBytes: streamedWeightBytes(configOf(r.rung, ladder), key.dtype), products: r.products.ops,
    })).sort((a, b) => a.width - b.width),
    ladder: { vocabSize: ladder.vocabSize, nPositions: ladder.nPositions },
    streams,
    ops,
    passNs: { fixed, perLayer, perToken, recordedPerLayer },
    samplingNs,
    kernels,
  };
}

/** One rung's warm-up and timed rounds (see the comment at the top). */
function measureRung(model: GPT2Model, log: (line: string) => void): Pick<RungRun, "entries" | "passes" | "long" | "longDecode"> {
  const { vocabSize, nPositions } = model.config;
  const { prefill, decode: decodeSteps } = passShape(nPositions);
  const ids = tokenIds(prefill + decodeSteps, vocabSize);
  const passes: RungRun["passes"] = [];
  const into = new Float32Array(BATCH * vocabSize);

  const run = (clock: Clock | null) => {
    const cache = model.newCache(prefill + decodeSteps);
    const forward = (ids: number[]) => {
      if (clock === null) return void model.step(ids, cache, 1, into);
      const first = clock.entries.length;
      const t0 = clock.now();
      clock.run(() => model.step(ids, cache, 1, into));
      passes.push({ tokens: ids.length, ns: clock.now() - t0, first, end: clock.entries.length, restored: model.engine.lastPass.restored });
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
  log(`profile:   warm-up (${WARM_UPS} × a ${prefill}-token prefill and ${decodeSteps} decode steps), choosing each product's kernel…`);
  for (let w = 0; w < WARM_UPS; w++) run(null);
  const clock = new Clock();
  log(`profile:   ${REPEATS} timed rounds…`);
  for (let r = 0; r < REPEATS; r++) run(clock);
  return { entries: withJoinedTime(clock.entries), passes, long: longPrefill(model, log), longDecode: longDecode(model, log) };
}

/**
 * The ops whose work grows with the context (a query row against every earlier key): the long
 * prefill's calls join their fits, so a 1000-token prompt reads costs measured near its size.
 */
const CONTEXT_KINDS: ReadonlySet<string> = new Set(["matmul(attn scores)", "matmul(attn values)", "softmax"]);

/** A prefill of LONG_PREFILL tokens (or the context), warmed up once and timed once: its context-bound ops' calls. */
function longPrefill(model: GPT2Model, log: (line: string) => void): OpEntry[] {
  const tokens = Math.min(LONG_PREFILL, model.config.nPositions);
  log(`profile:   a ${tokens}-token prefill (attention at long contexts)…`);
  const ids = tokenIds(tokens, model.config.vocabSize);
  const into = new Float32Array(model.config.vocabSize);
  model.reserveCaches(2, tokens);
  model.step(ids, model.newCache(tokens), 1, into);
  const clock = new Clock();
  clock.run(() => model.step(ids, model.newCache(tokens), 1, into));
  return withJoinedTime(clock.entries).filter((e) => CONTEXT_KINDS.has(opKind(e)));
}

/**
 * Decode steps at the context's last position, each on the next of enough caches that their keys
 * and values (LONG_DECODE_BYTES in all) cannot stay in the CPU's caches: one query row reads a
 * long context from memory, head by head, where the long prefill reuses what it reads across its
 * rows. The caches' contents do not matter to the time, only their length: it is set, not
 * computed. Warmed up once, timed twice: the context-bound calls.
 */
function longDecode(model: GPT2Model, log: (line: string) => void): OpEntry[] {
  const { nPositions, nLayer, nEmbd, vocabSize } = model.config;
  const context = nPositions - 1;
  const count = Math.min(16, Math.max(2, Math.ceil(LONG_DECODE_BYTES / (2 * nLayer * context * nEmbd * 4))));
  log(`profile:   decode steps after ${context} positions, over ${count} caches…`);
  model.reserveCaches(count, nPositions);
  const caches = Array.from({ length: count }, () => model.newCache(nPositions));
  const into = new Float32Array(vocabSize);
  const ids = tokenIds(count, vocabSize);
  const clock = new Clock();
  for (let round = 0; round < 3; round++) {
    for (const [i, cache] of caches.entries()) {
      cache.length = context;
      const step = () => model.step([ids[i]], cache, 1, into);
      if (round === 0) step();
      else clock.run(step);
    }
  }
  return withJoinedTime(clock.entries).filter((e) => CONTEXT_KINDS.has(opKind(e)));
}

/**
 * Attention's own memory ceiling: the rate at which the long-context decode steps' calls of each
 * context-bound kind read their bytes, beyond their fixed cost — kept where it is below the
 * memory roof (a decode step reads each head's slice of every cached row: strided, not streamed).
 */
export function fitContextReads(ops: Record<string, OpCost>, entries: readonly OpEntry[], memoryBytesPerSec: number): void {
  for (const kind of CONTEXT_KINDS) {
    const cost = ops[kind];
    const calls = entries.filter((e) => opKind(e) === kind && !isJoinedCall(e));
    if (cost === undefined || calls.length === 0) continue;
    const bytes = calls.reduce((s, e) => s + e.bytes, 0);
    const ns = calls.reduce((s, e) => s + e.endNs - e.startNs - cost.callNs, 0);
    const rate = (1e9 * bytes) / ns;
    if (ns > 0 && rate < memoryBytesPerSec) cost.bytesPerSec = rate;
  }
}

/** The token pick's time, greedy and sampling (with the top-5 the record keeps). */
function timeSampling(model: GPT2Model, log: (line: string) => void): MachineProfile["samplingNs"] {
  log("profile: timing token picks…");
  const logits = new Float32Array(model.config.vocabSize);
  new Random(2).fillUniform(logits, 8);
  const picker = new TokenPicker(model.config.vocabSize);
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
  return { greedy: timePick(false), sample: timePick(true) };
}

/**
 * The memory roof by working set: one-row products, one after another in one pass as decode runs
 * them, over weights of the ladder's stream shape adding up to each stream's bytes, round after round (a
 * stream that fits a cache is read from it from the second round on). The weights' values do not
 * matter to the time, only that every page is written: they are filled, not drawn.
 */
function measureStreams(engine: Engine, ladder: Ladder, log: (line: string) => void): MachineProfile["streams"] {
  const sizes = ladder.streams;
  const [k, n] = ladder.streamShape;
  const one = engine.allocHead(n, k);
  const perMatrix = one.data.byteLength;
  const room = engine.memoryLeft() - engine.arenaBytesToCome() - 64 * 2 ** 20;
  const count = Math.max(1, Math.min(Math.ceil(sizes[sizes.length - 1] / perMatrix), Math.floor(room / perMatrix)));
  const weights = [one, ...Array.from({ length: count - 1 }, () => engine.allocHead(n, k))];
  for (const w of weights) fillForTiming(w);
  const a = new Tensor(new Float32Array(k).fill(0.5), [1, k]);
  const out: MachineProfile["streams"] = [];
  for (const bytes of sizes) {
    const used = weights.slice(0, Math.min(count, Math.max(1, Math.round(bytes / perMatrix))));
    const streamed = used.length * streamedBytes(used[0]);
    log(`profile: streaming ${(streamed / 2 ** 20).toFixed(0)} MiB of weights…`);
    const pass = () => engine.pass(() => {
      for (const w of used) matmul(a, w);
    });
    for (let r = 0; r < WARM_UPS; r++) pass();
    // Each size streams STREAM_BYTES at least, and keeps its median round: the curve's shape is
    // what the costs read (costsFor), and four rounds of the smallest stream, 8 ms, once put it
    // at 22 GB/s between rounds of 33 — which made GPT-2 XL's roof 1.5× its run's.
    const rounds = Math.max(STREAM_ROUNDS, Math.ceil(STREAM_BYTES / streamed));
    const ns: number[] = [];
    for (let r = 0; r < rounds; r++) {
      const t0 = performance.now();
      pass();
      ns.push((performance.now() - t0) * 1e6);
    }
    out.push({ bytes: streamed, bytesPerSec: (1e9 * streamed) / median(ns) });
  }
  return out.sort((x, y) => x.bytes - y.bytes).filter((s, i, all) => i === 0 || s.bytes > all[i - 1].bytes);
}

/** Bytes one one-row product over `w` streams. */
const streamedBytes = (w: PackedMatrix): number => w.bytesPerWeight * w.k * w.n;

/** Every byte of a weight written with a value of ordinary size (q8 scales and bf16 alike read as small normal numbers). */
function fillForTiming(w: PackedMatrix): void {
  if (w.data instanceof Float32Array) w.data.fill(0.001);
  else if (w.data instanceof Uint16Array) w.data.fill(0x1111);
  else w.data.fill(0x11);
}
