import { Clock, type OpEntry } from "../clock/clock.ts";
import type { Engine } from "../kernels/engine.ts";
import { JOINED } from "../kernels/simd-ops.ts";
import type { GPT2Config } from "../model/config.ts";
import { randomModel } from "../model/load.ts";
import { isJoinedCall } from "../profile/roofline.ts";

/*
 * Which op calls of a pass join the product before them (kernels/plan.ts) is decided as the pass
 * is recorded, from the bytes each call touches; an engine that only counts (--predict-only)
 * records nothing, so it cannot tell. The plan decides alike for every layer of a model, so a
 * one-layer model of the same width and heads, on an engine of the same settings, shows it: its
 * prompt's pass (of the same length) and a decode step, call by call.
 */

/** A pass's calls in order: a layer's, and those outside the layers (embedding, final norm, head); true where a call joined. */
interface PassJoins {
  layer: boolean[];
  outside: boolean[];
}

/** How the calls of the prompt's pass and of a decode step join. */
export interface JoinPattern {
  prompt: PassJoins;
  decode: PassJoins;
}

function passJoins(entries: readonly OpEntry[]): PassJoins {
  return { layer: entries.filter((e) => e.layer === 0).map(isJoinedCall), outside: entries.filter((e) => e.layer < 0).map(isJoinedCall) };
}

/** The join pattern of `config`'s passes after a `promptLength`-token prompt (shorter than the context), on a one-layer model made by `newEngine`. */
export async function probeJoins(newEngine: () => Engine, config: GPT2Config, promptLength: number): Promise<JoinPattern> {
  const vocabSize = 64; // the head is one product whatever its size; a small one saves the memory
  const model = await randomModel(newEngine(), { ...config, nLayer: 1, vocabSize });
  try {
    await model.engine.ready();
    const cache = model.newCache(promptLength + 1);
    const into = new Float32Array(vocabSize);
    const clock = new Clock();
    clock.setStep(0);
    clock.run(() => model.step(Array.from({ length: promptLength }, (_, i) => i % vocabSize), cache, 1, into));
    clock.setStep(1);
    clock.run(() => model.step([1], cache, 1, into));
    return { prompt: passJoins(clock.entries.filter((e) => e.step === 0)), decode: passJoins(clock.entries.filter((e) => e.step === 1)) };
  } finally {
    await model.dispose();
  }
}

/** `entries` (passes in `step` order, the prompt's first) with the calls the pattern says join marked as joined. */
export function markJoined(entries: readonly OpEntry[], pattern: JoinPattern): OpEntry[] {
  const seen = new Map<string, number>();
  return entries.map((e) => {
    if (e.step < 0) return e;
    const pass = e.step === 0 ? pattern.prompt : pattern.decode;
    const key = `${e.step}/${e.layer}`;
    const index = seen.get(key) ?? 0;
    seen.set(key, index + 1);
    const joined = e.layer >= 0 ? pass.layer[index] : pass.outside[index];
    return joined === true ? { ...e, kernel: JOINED } : e;
  });
}
