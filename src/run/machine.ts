import { Engine } from "../kernels/engine.ts";
import { machineIdentity, profileKey } from "../profile/machine-profile.ts";
import { FAMILY_LADDER, TINY_LADDER, measureProfile } from "../profile/measure.ts";
import type { MachineSelection } from "./generate-run.ts";

/**
 * The machine profile a run predicts with, measured once, when the run first asks for it, with
 * engines of `engine`'s settings (whose kernel choices `engine` then adopts). "tiny": a ladder of
 * small shapes, measured in a second or two and rough; "family" (the default): GPT-2's widths,
 * ~20 s, what the CLI measures. In Node, the cached profile the CLI keeps is thisMachine's.
 */
export function measuredMachine(engine: Engine, options: { ladder?: "family" | "tiny"; progress?: (line: string) => void } = {}): () => Promise<MachineSelection> {
  let found: Promise<MachineSelection> | null = null;
  const measure = async (): Promise<MachineSelection> => {
    const settings = engine.settings;
    const key = profileKey(settings, machineIdentity(engine.platform));
    const profile = await measureProfile(() => new Engine(engine.platform, settings), key, options.progress ?? (() => {}), options.ladder === "tiny" ? TINY_LADDER : FAMILY_LADDER);
    engine.adoptKernelWisdom(profile.kernels);
    return { profile, source: "measured", path: "(measured now)" };
  };
  return () => (found ??= measure());
}
