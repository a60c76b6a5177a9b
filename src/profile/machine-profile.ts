import type { Platform } from "../platform/platform.ts";
import { runtimeInfo } from "../util/js-runtime.ts";

/*
 * What one machine does under one setting of kernel, threads and dtype — for every GPT-2 size:
 * measured on a ladder of GPT-2-shaped models spanning the family's widths (src/profile/measure.ts)
 * and weight streams spanning its sizes, then read at any model's width and size
 * (src/profile/ladder.ts). The roofs of a roofline (memory bytes/s by working set; cycles/s per op
 * kind), the fixed cost of an op call, the time between ops, sampling, and the kernel the
 * autotuner chose for each product measured (FFTW's "wisdom": tuned once, then reused).
 */

/**
 * 11: a profile of the machine, not of one model: products per ladder rung, memory roof per working set.
 * 12: q8 weights stored with their top bit flipped and no sums table (new kernels, timed anew).
 * 13: decode steps restored, not recorded (kernels/replay.ts), and passes rehearsed before they
 *     are timed: the time between ops and per call, measured anew.
 * 14: decode's one-row products stream four panels of weights at once, and the one-row matvec
 *     kernels are gone (wisdom naming them is stale): the products timed anew.
 * 15: attention's own memory ceiling, from decode steps at the end of the context (measure.ts).
 * 16: a many-row product's ceiling is what its calls took beyond their weights' time (serialCall).
 * 17–18: the recorded prompt's pass, and calls that joined the product before them, apart.
 * 19: a decode step's cache writes, query scale and q8 quantizing join products (plan.ts): the
 *     calls and passes they were part of timed anew; a pass's start is the pass's cost, not its
 *     first call's (opensPass), and one-row calls set the other ops' fixed costs (fitOp).
 * 20: q8 products may take the relaxed dot product's i16 form (its choice in the kernel wisdom),
 *     and GELU's and softmax's exp takes half the instructions: their costs timed anew.
 * 21: that i16 form widens its pairs with a dot against ones (faster): the q8 products timed anew.
 * 22: a restored pass's clock entries cost less to restore and settle, its logits' check runs in
 *     WebAssembly, and its first call no longer carries the restore: the time between ops anew.
 */
export const PROFILE_VERSION = 22;

/** What a profile is valid for: measured again whenever any of it differs. */
export interface ProfileKey {
  cpu: string;
  cores: number;
  runtime: string;
  kernel: string;
  threads: number;
  dtype: string;
}

/** One op kind's costs: a fixed cost per call, its compute ceiling, and its own memory ceiling where lower than the roof. */
export interface OpCost {
  callNs: number;
  cyclesPerSec: number;
  /**
   * A weight product's ceiling in decode: one row, or one row per sequence of a batch, run by the
   * kernel tuned for one row (see isVectorCall), whose pace differs from the many-row kernel's.
   */
  vectorCyclesPerSec?: number;
  bytesPerSec?: number;
}

/** One rung of the ladder: a GPT-2-shaped model of this width and depth, and its weight products' costs. */
export interface Rung {
  width: number;
  heads: number;
  layers: number;
  /**
   * The rate at which its LM head streamed weights in decode (the products' call costs are what
   * their one-row calls took beyond it), and the bytes of weights its decode pass streams.
   */
  memoryBytesPerSec: number;
  weightBytes: number;
  products: Record<string, OpCost>;
}

export interface MachineProfile {
  version: number;
  key: ProfileKey;
  measuredAt: string;
  measureSeconds: number;
  /** The weight products ("matmul(qkv)", …) at each rung's width, widths ascending. */
  rungs: Rung[];
  /** The rungs' vocabulary and context (see src/profile/measure.ts). */
  ladder: { vocabSize: number; nPositions: number };
  /**
   * How the memory roof changes with the working set: decode's one-row products streaming
   * `bytes` of weights per pass, over and over, at `bytesPerSec` (what fits a cache streams
   * faster). Bytes ascending. Read as a ratio between two working sets (see ladder.ts).
   */
  streams: { bytes: number; bytesPerSec: number }[];
  /** Every other op kind ("add", "matmul(attn scores)", …), fitted over all the rungs' calls. */
  ops: Record<string, OpCost>;
  /**
   * A forward pass's time beyond its ops' predicted costs (JavaScript between them, pauses): fixed
   * + per layer + per token, as decode steps pay it on average; a pass recorded anew (the prompt's
   * always, see kernels/replay.ts) pays `recordedPerLayer` more per layer: the model's code runs.
   */
  passNs: { fixed: number; perLayer: number; perToken: number; recordedPerLayer: number };
  /** Picking a token from V logits (with the top-5 the record keeps). */
  samplingNs: { greedy: number; sample: number };
  /** The kernel chosen for each SIMD product shape the ladder ran, by the autotuner's key. */
  kernels: Record<string, { fn: string; relaxed: boolean }>;
}

/** A profile read for one model (src/profile/ladder.ts): the roofline's terms at its width and size. */
export interface ModelCosts {
  /** The memory roof for this model's working set. */
  memoryBytesPerSec: number;
  /** The compute roof: the best cycles/s of a product whose weights are reused across rows. */
  computeCyclesPerSec: number;
  /** Per op kind: the products at this width, the other ops as measured. */
  ops: Record<string, OpCost>;
  /** `recorded`: what a pass recorded anew pays beyond one of decode's (see MachineProfile). */
  passNs: { fixed: number; perToken: number; recorded: number };
  samplingNs: { greedy: number; sample: number };
  /** What the ladder did not span, where the prediction extrapolates; null when it spans the model. */
  extrapolated: string | null;
}

export class ProfileError extends Error {}

export function profileKey(settings: { kernel: string; threads: number; dtype: string }, machine: { cpu: string; cores: number; runtime: string }): ProfileKey {
  return { ...machine, kernel: settings.kernel, threads: settings.threads, dtype: settings.dtype };
}

/** This machine as a profile key names it. */
export function machineIdentity(platform: Platform): { cpu: string; cores: number; runtime: string } {
  const { name, version } = runtimeInfo();
  return { cpu: platform.cpuName(), cores: platform.cores(), runtime: `${name} ${version}` };
}

/** A file name for the key: readable settings, then a hash of the whole key. */
export function profileFileName(key: ProfileKey): string {
  const text = JSON.stringify(key);
  let hash = 2166136261;
  for (let i = 0; i < text.length; i++) hash = Math.imul(hash ^ text.charCodeAt(i), 16777619) >>> 0;
  return `${key.runtime.replace(/[^\w.]+/g, "-")}_${key.kernel}_${key.dtype}_t${key.threads}_${hash.toString(16).padStart(8, "0")}.json`;
}

const positive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** Parses and checks a profile; the error names `source` and the first problem found. */
export function parseProfile(text: string, source: string): MachineProfile {
  let p: MachineProfile;
  try {
    p = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${source} is not valid JSON (${(err as Error).message}): measure one with gpt2-cycles profile --out FILE (in a clone: npm run profile -- --out FILE)`);
  }
  const missing = (field: string) => new ProfileError(`${source} lacks a valid ${field}: measure it again with gpt2-cycles profile --out FILE (in a clone: npm run profile -- --out FILE)`);
  if (typeof p !== "object" || p === null) throw missing("profile object");
  if (p.version !== PROFILE_VERSION) throw missing(`version (${PROFILE_VERSION})`);
  const k = p.key;
  if (typeof k !== "object" || k === null || typeof k.cpu !== "string" || typeof k.runtime !== "string" || !positive(k.threads)) throw missing("key");
  const cost = (c: OpCost | undefined) => nonNegative(c?.callNs) && positive(c?.cyclesPerSec) && (c.bytesPerSec === undefined || positive(c.bytesPerSec)) && (c.vectorCyclesPerSec === undefined || positive(c.vectorCyclesPerSec));
  if (!Array.isArray(p.rungs) || p.rungs.length === 0) throw missing("rungs");
  for (const [i, r] of p.rungs.entries()) {
    if (!positive(r?.width) || !positive(r?.heads) || !positive(r?.layers) || !positive(r.memoryBytesPerSec) || !positive(r.weightBytes) || typeof r.products !== "object" || r.products === null || Object.keys(r.products).length === 0) throw missing(`rungs[${i}]`);
    for (const [kind, c] of Object.entries(r.products)) if (!cost(c)) throw missing(`rungs[${i}].products["${kind}"]`);
  }
  if (!positive(p.ladder?.vocabSize) || !positive(p.ladder?.nPositions)) throw missing("ladder");
  if (!Array.isArray(p.streams) || p.streams.length === 0 || !p.streams.every((x) => positive(x?.bytes) && positive(x?.bytesPerSec))) throw missing("streams");
  if (typeof p.ops !== "object" || p.ops === null || Object.keys(p.ops).length === 0) throw missing("ops");
  for (const [kind, c] of Object.entries(p.ops)) if (!cost(c)) throw missing(`ops["${kind}"]`);
  if (!nonNegative(p.passNs?.fixed) || !nonNegative(p.passNs?.perLayer) || !nonNegative(p.passNs?.perToken) || !nonNegative(p.passNs?.recordedPerLayer)) throw missing("passNs");
  if (!nonNegative(p.samplingNs?.greedy) || !nonNegative(p.samplingNs?.sample)) throw missing("samplingNs");
  if (typeof p.kernels !== "object" || p.kernels === null) throw missing("kernels");
  return p;
}
