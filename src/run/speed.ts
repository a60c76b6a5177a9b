import type { GPT2Model } from "../model/model.ts";

/** Prefill and decode speed of a model, as `gpt2-cycles bench` and npm run bench measure it. */
export interface Speed {
  prefillTokens: number;
  prefillMs: number;
  prefillTokensPerSec: number;
  decodeSteps: number;
  decodeTokensPerSec: number;
  /** Synchronisations of the last prefill pass and of the last decode step (SIMD engines). */
  prefillBarriers: number;
  barriersPerToken: number;
}

/** Token ids spread over the vocabulary: random weights make any ids alike, and no tokenizer is needed. */
export const spreadIds = (count: number, offset: number, vocabSize: number): number[] => Array.from({ length: count }, (_, i) => (offset + i * 7919) % vocabSize);

/** Runs a short prefill and 30 decode steps; returns an array that holds 16 rows of logits. */
export function warmUp(model: GPT2Model): Float32Array {
  const vocab = model.config.vocabSize;
  const into = new Float32Array(16 * vocab);
  const warm = model.newCache(40);
  model.step(spreadIds(8, 1, vocab), warm, 1, into);
  for (let i = 0; i < 30; i++) model.step([i], warm, 1, into);
  return into;
}

/**
 * Prefills timed per measurement, the median kept: one pass of a few hundred ms catches the
 * machine's pauses (one pass each, q8's two-thread 128-token prefill read 424 to 754 tokens/s in
 * runs of the same build minutes apart), as llama-bench repeats its pp runs.
 */
const PREFILL_RUNS = 3;

/**
 * A prefill of `prefillTokens` (the median of PREFILL_RUNS) and `decodeSteps` decode steps after
 * a 16-token prompt, timed after the code paths have warmed up (until V8 has optimised the code
 * between the kernels, on every thread, passes run slower and stall now and then: see warmUp).
 * Caches are made, their memory touched, and the prefill rehearsed (its scratch memory made: see
 * Engine.rehearse) before each clock starts, as generate does.
 */
export function measureSpeed(model: GPT2Model, prefillTokens: number, decodeSteps: number): Speed {
  const vocab = model.config.vocabSize;
  const into = warmUp(model);

  const prefillCache = model.newCache(prefillTokens);
  const prefillIds = spreadIds(prefillTokens, 3, vocab);
  model.rehearse(prefillIds, prefillCache);
  const prefillTimes: number[] = [];
  for (let run = 0; run < PREFILL_RUNS; run++) {
    prefillCache.length = 0;
    const start = performance.now();
    model.step(prefillIds, prefillCache, 1, into);
    prefillTimes.push(performance.now() - start);
  }
  const prefillMs = prefillTimes.sort((a, b) => a - b)[Math.floor(PREFILL_RUNS / 2)];
  const prefillBarriers = model.engine.lastPass.barriers;

  const prompt = 16;
  const cache = model.newCache(prompt + decodeSteps);
  model.step(spreadIds(prompt, 5, vocab), cache, 1, into);
  const t0 = performance.now();
  for (let i = 0; i < decodeSteps; i++) model.step([(i * 31) % vocab], cache, 1, into);
  const decodeMs = performance.now() - t0;
  return {
    prefillTokens, prefillMs, prefillTokensPerSec: (prefillTokens * 1000) / prefillMs,
    decodeSteps, decodeTokensPerSec: (decodeSteps * 1000) / decodeMs,
    prefillBarriers, barriersPerToken: model.engine.lastPass.barriers,
  };
}
