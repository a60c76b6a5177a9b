import { homedir } from "node:os";
import { join } from "node:path";

/**
 * This project's per-user cache (XDG: $XDG_CACHE_HOME, else ~/.cache), never inside the
 * repository: what is measured or downloaded once per machine (runtimes for the test matrix, the
 * machine profile). GPT2_CYCLES_CACHE moves it.
 */
export function userCacheDir(...parts: string[]): string {
  const base = process.env.GPT2_CYCLES_CACHE || join(process.env.XDG_CACHE_HOME || join(homedir(), ".cache"), "gpt2-cycles");
  return join(base, ...parts);
}
