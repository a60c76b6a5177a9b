import { spawnSync } from "node:child_process";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
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

/**
 * The playground as a static site in `outDir`, for any host: the page, its service worker (which
 * makes it cross-origin isolated where the host sends no such headers), its modules under build/,
 * the vendored tokenizer under tokenizer/, and an info.json that serves no model. Every URL in it
 * is relative, so it works from any path.
 */
export function buildSite(outDir: string): void {
  mkdirSync(outDir, { recursive: true });
  cpSync(join(PROJECT_ROOT, "src", "playground", "static"), outDir, { recursive: true });
  cpSync(join(PROJECT_ROOT, "src", "tokenizer", "gpt2"), join(outDir, "tokenizer"), { recursive: true });
  writeFileSync(join(outDir, "info.json"), `${JSON.stringify({ model: null })}\n`);
  buildPlayground(join(outDir, "build"));
}
