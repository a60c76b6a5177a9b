import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { userCacheDir } from "../io/cache-dir.ts";
import { writeFileAtomic } from "../io/atomic-write.ts";
import { Engine } from "../kernels/engine.ts";
import { type MachineProfile, ProfileError, type ProfileKey, machineIdentity, parseProfile, profileFileName, profileKey } from "./machine-profile.ts";
import { FAMILY_LADDER, type Ladder, TINY_LADDER, measureProfile } from "./measure.ts";

export function readProfileFile(path: string): MachineProfile {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (err) {
    throw new ProfileError(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  return parseProfile(text, path);
}

export function writeProfileFile(path: string, p: MachineProfile): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, `${JSON.stringify(p, null, 2)}\n`);
}

/** Where this machine's profile for `key` is kept in the per-user cache. */
export function cachedProfilePath(key: ProfileKey): string {
  return join(userCacheDir("profiles"), profileFileName(key));
}

export interface ObtainedProfile {
  profile: MachineProfile;
  /** "cache": read from the per-user cache; "measured": measured in this process. */
  source: "cache" | "measured";
  /** The cache file, whether or not it could be written. */
  path: string;
}

/** The ladder a profile is measured on: the family's, or (GPT2_CYCLES_PROFILE_LADDER=tiny, for tests) small shapes. */
export function ladderFromEnvironment(): Ladder {
  return process.env.GPT2_CYCLES_PROFILE_LADDER === "tiny" ? TINY_LADDER : FAMILY_LADDER;
}

/**
 * This machine's profile for `key`: from the per-user cache when one was stored for exactly
 * this key, else measured now on the ladder (engines from `newEngine`) and stored (a cache that
 * cannot be written only costs a notice). Its kernel choices are adopted by `engine`, so no
 * product of a shape the ladder ran is tuned again.
 */
export async function obtainProfile(engine: Engine, newEngine: () => Engine, key: ProfileKey, notice: (line: string) => void, progress: (line: string) => void = () => {}): Promise<ObtainedProfile> {
  const path = cachedProfilePath(key);
  if (existsSync(path)) {
    try {
      const profile = readProfileFile(path);
      if (JSON.stringify(profile.key) !== JSON.stringify(key)) throw new ProfileError(`${path} was measured for other settings`);
      engine.adoptKernelWisdom(profile.kernels);
      return { profile, source: "cache", path };
    } catch {
      notice("the cached machine profile is out of date or damaged: measuring it again");
    }
  } else {
    notice(`measuring this machine once for ${key.kernel}, ${key.threads} thread(s), ${key.dtype} (every GPT-2 size; ~20 s, then cached)`);
  }
  const profile = await measureProfile(newEngine, key, progress, ladderFromEnvironment());
  engine.adoptKernelWisdom(profile.kernels);
  try {
    writeProfileFile(path, profile);
  } catch (err) {
    notice(`cannot write ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): the profile serves this run only`);
  }
  return { profile, source: "measured", path };
}

/**
 * What a run predicts with in Node: `engine`'s machine profile as the CLI keeps it — from the
 * per-user cache, or measured once now and cached (see obtainProfile). `notice` hears when it measures.
 */
export function thisMachine(engine: Engine, notice: (line: string) => void = () => {}): () => Promise<ObtainedProfile> {
  return () => obtainProfile(engine, () => new Engine(engine.platform, engine.settings), profileKey(engine.settings, machineIdentity(engine.platform)), notice);
}
