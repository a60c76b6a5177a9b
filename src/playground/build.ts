import { spawnSync } from "node:child_process";
import { join } from "node:path";

const PROJECT_ROOT = join(import.meta.dirname, "..", "..");

/**
 * Compiles the page and its engine worker (and everything they import from src/) to browser ES
 * modules in `outDir`, with tsc alone (src/playground/tsconfig.json). The output mirrors src/:
 * the page is playground/page.js.
 */
export function buildPlayground(outDir: string): void {
  const tsc = join(PROJECT_ROOT, "node_modules", "typescript", "bin", "tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", join(PROJECT_ROOT, "src", "playground", "tsconfig.json"), "--outDir", outDir], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`the browser build failed (tsc -p src/playground/tsconfig.json):\n${run.stdout}${run.stderr}`);
}

/** What the server serves: the page, its build, the vendored tokenizer, and a model directory if any. */
export function playgroundRoots(buildDir: string, modelDir: string | null): Record<string, string> {
  return {
    "": join(PROJECT_ROOT, "src", "playground", "static"),
    "/build": buildDir,
    "/tokenizer": join(PROJECT_ROOT, "src", "tokenizer", "gpt2"),
    ...(modelDir === null ? {} : { "/model": modelDir }),
  };
}
