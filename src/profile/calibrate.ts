import type { Engine } from "../kernels/engine.ts";
import type { GPT2Config } from "../model/config.ts";
import { randomModel } from "../model/load.ts";
import { warmUp } from "../run/generate-run.ts";
import { GREEDY, TokenPicker } from "../run/sampling.ts";
import { type Drift, measureDrift } from "./drift.ts";
import { costsFor } from "./ladder.ts";
import type { MachineProfile } from "./machine-profile.ts";

/**
 * How the machine drifted from its profile, for a prediction of a model of width `width` that
 * runs nothing of its own (generate.ts --predict-only): the profile's rung nearest that width —
 * a random model of its shape, on an engine of the setting — warmed up as a run warms up, its
 * calls against the profile read for it (src/profile/drift.ts). A few seconds, and none of the
 * predicted model's memory. The compute and calls factors carry over; the memory roof stays as
 * profiled: a rung's weights fit caches a larger model's do not (on gpt2-xl q8 with a profile
 * measured while a core was busy, the rung put memory at ×1.4–1.7 where the model's own run
 * found ×1.11, and a 512 MiB stream at ×2.0–2.2).
 */
export async function calibrate(p: MachineProfile, width: number, newEngine: () => Engine): Promise<Drift> {
  const rung = p.rungs.reduce((a, b) => (Math.abs(Math.log(b.width / width)) < Math.abs(Math.log(a.width / width)) ? b : a));
  const config: GPT2Config = { nLayer: rung.layers, nHead: rung.heads, nEmbd: rung.width, ...p.ladder, layerNormEpsilon: 1e-5 };
  const model = await randomModel(newEngine(), config);
  try {
    await model.engine.ready();
    model.engine.adoptKernelWisdom(p.kernels);
    const calls = warmUp(model, GREEDY, new TokenPicker(config.vocabSize), "profile");
    return { ...measureDrift(costsFor(p, config, model.engine.dtype), calls), memory: 1 };
  } finally {
    await model.dispose();
  }
}
