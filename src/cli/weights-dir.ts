import { existsSync } from "node:fs";
import { join, resolve } from "node:path";

/** The project's root in a clone (src/cli/ or dist/cli/ two levels down). */
const PROJECT_ROOT = join(import.meta.dirname, "..", "..");

/**
 * Where fetched weights live, one directory per size: weights/ in a clone of the project (it
 * ships that folder), else weights/ in the current directory — an installed package has none.
 */
export function weightsDir(): string {
  const own = join(PROJECT_ROOT, "weights");
  return existsSync(own) ? own : resolve("weights");
}
