import type { Engine } from "../kernels/engine.ts";
import type { GPT2Config } from "../model/config.ts";
import { randomModel } from "../model/load.ts";
import { warmUp } from "../run/generate-run.ts";
import { GREEDY, TokenPicker } from "../run/sampling.ts";
import { type Drift, measureDrift } from "./drift.ts";
import { costsFor } from "./ladder.ts";
import type { MachineProfile } from "./machine-profile.ts";

/**
 * Layers of the calibration's model: enough that its passes pay per call what a model of 48 does
 * (on the TypeScript kernels, ten times slower and with no threads' hand-offs to weigh, the rung's
 * own: 8 layers of XL's width took 38 s there).
 */
const CALIBRATION_LAYERS = 8;

/**
 * How the machine drifted from its profile, for a prediction of a model of shape `c` that runs
 * nothing of its own (generate.ts --predict-only): a random model of the width and heads of the
 * profile's rung nearest it, with up to CALIBRATION_LAYERS of its layers, on an engine of the
 * setting, warmed up as a run warms up, its calls against the profile read for it
 * (src/profile/drift.ts). A few seconds, and a fraction of the predicted model's memory (GPT-2
 * XL q8: 5 s and 0.6 GB). The rung itself, a layer or two, would not do: against one LM head its
 * few products stream at other rates than a deep model's, and that goes to the calls factor
 * (GPT-2 XL q8 on a profile measured with a core busy: the rung read calls ×1.1–1.6 and memory
 * ×1.12–1.33, the model's own runs ×0.19–0.27 and ×1.45–1.47; 8 layers read ×0.17–0.21 and
 * ×1.34–1.52).
 */
export async function calibrate(p: MachineProfile, c: Pick<GPT2Config, "nEmbd" | "nLayer">, newEngine: () => Engine): Promise<Drift> {
  const rung = p.rungs.reduce((a, b) => (Math.abs(Math.log(b.width / c.nEmbd)) < Math.abs(Math.log(a.width / c.nEmbd)) ? b : a));
  const engine = newEngine();
  const layers = engine.heap === null ? rung.layers : CALIBRATION_LAYERS;
  const config: GPT2Config = { nLayer: Math.min(layers, c.nLayer), nHead: rung.heads, nEmbd: rung.width, ...p.ladder, layerNormEpsilon: 1e-5 };
  const model = await randomModel(engine, config);
  try {
    await model.engine.ready();
    model.engine.adoptKernelWisdom(p.kernels);
    const calls = warmUp(model, GREEDY, new TokenPicker(config.vocabSize), "profile");
    return measureDrift(costsFor(p, config, model.engine.dtype), calls);
  } finally {
    await model.dispose();
  }
}
