import type { Platform } from "../platform/platform.ts";
import { runtimeInfo } from "../util/js-runtime.ts";
import type { GPT2Config } from "../model/config.ts";

/*
 * What one machine does with one model shape under one setting of kernel, threads and dtype:
 * the roofs of a roofline (memory bytes/s; cycles/s per op kind), the fixed cost of an op call,
 * the time between ops, sampling, and the kernel the autotuner chose for each product (FFTW's
 * "wisdom": tuned once, then reused, so timed runs never tune and two runs use the same kernels).
 */

/** 10: q8 streams 1.0625 bytes per weight in decode (float16 scales, no sums). */
export const PROFILE_VERSION = 10;

/** What a profile is valid for: measured again whenever any of it differs. */
export interface ProfileKey {
  cpu: string;
  cores: number;
  runtime: string;
  kernel: string;
  threads: number;
  dtype: string;
  model: { nLayer: number; nHead: number; nEmbd: number; nPositions: number; vocabSize: number };
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

export interface MachineProfile {
  version: number;
  key: ProfileKey;
  measuredAt: string;
  measureSeconds: number;
  /** The memory roof: bytes/s with which decode's products stream weights from memory. */
  memoryBytesPerSec: number;
  /** The compute roof: the best cycles/s of a product whose weights are reused across rows. */
  computeCyclesPerSec: number;
  /** Per op kind ("matmul(qkv)", "add", …). */
  ops: Record<string, OpCost>;
  /** A forward pass's time beyond its ops' predicted costs (JavaScript between them, pauses): fixed + per token. */
  passNs: { fixed: number; perToken: number };
  /** Picking a token from V logits (with the top-5 the record keeps). */
  samplingNs: { greedy: number; sample: number };
  /** The kernel chosen for each SIMD product shape, by the autotuner's key. */
  kernels: Record<string, { fn: string; relaxed: boolean }>;
}

export class ProfileError extends Error {}

export function profileKey(c: GPT2Config, settings: { kernel: string; threads: number; dtype: string }, machine: { cpu: string; cores: number; runtime: string }): ProfileKey {
  return {
    ...machine,
    kernel: settings.kernel, threads: settings.threads, dtype: settings.dtype,
    model: { nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, nPositions: c.nPositions, vocabSize: c.vocabSize },
  };
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
  const m = key.model;
  return `${key.runtime.replace(/[^\w.]+/g, "-")}_${key.kernel}_${key.dtype}_t${key.threads}_${m.nLayer}x${m.nEmbd}_${hash.toString(16).padStart(8, "0")}.json`;
}

export function sameModelShape(a: ProfileKey["model"], b: ProfileKey["model"]): boolean {
  return a.nLayer === b.nLayer && a.nHead === b.nHead && a.nEmbd === b.nEmbd && a.nPositions === b.nPositions && a.vocabSize === b.vocabSize;
}

const positive = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;
const nonNegative = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v >= 0;

/** Parses and checks a profile; the error names `source` and the first problem found. */
export function parseProfile(text: string, source: string): MachineProfile {
  let p: MachineProfile;
  try {
    p = JSON.parse(text);
  } catch (err) {
    throw new ProfileError(`${source} is not valid JSON (${(err as Error).message}): measure one with npm run profile -- --out FILE`);
  }
  const missing = (field: string) => new ProfileError(`${source} lacks a valid ${field}: measure it again with npm run profile -- --out FILE`);
  if (typeof p !== "object" || p === null) throw missing("profile object");
  if (p.version !== PROFILE_VERSION) throw missing(`version (${PROFILE_VERSION})`);
  const k = p.key;
  if (typeof k !== "object" || k === null || typeof k.cpu !== "string" || typeof k.runtime !== "string" || !positive(k.threads)) throw missing("key");
  const m = k.model;
  if (typeof m !== "object" || m === null || ![m.nLayer, m.nHead, m.nEmbd, m.nPositions, m.vocabSize].every(positive)) throw missing("key.model");
  if (!positive(p.memoryBytesPerSec)) throw missing("memoryBytesPerSec");
  if (!positive(p.computeCyclesPerSec)) throw missing("computeCyclesPerSec");
  if (typeof p.ops !== "object" || p.ops === null || Object.keys(p.ops).length === 0) throw missing("ops");
  for (const [kind, cost] of Object.entries(p.ops)) {
    if (!nonNegative(cost?.callNs) || !positive(cost?.cyclesPerSec) || (cost.bytesPerSec !== undefined && !positive(cost.bytesPerSec)) || (cost.vectorCyclesPerSec !== undefined && !positive(cost.vectorCyclesPerSec))) throw missing(`ops["${kind}"]`);
  }
  if (!nonNegative(p.passNs?.fixed) || !nonNegative(p.passNs?.perToken)) throw missing("passNs");
  if (!nonNegative(p.samplingNs?.greedy) || !nonNegative(p.samplingNs?.sample)) throw missing("samplingNs");
  if (typeof p.kernels !== "object" || p.kernels === null) throw missing("kernels");
  return p;
}
