// npm run build: the package in dist/ — src/ compiled by tsc (tsconfig.build.json), the vendored
// tokenizer beside it, the playground as a static site in dist/site/. npm run build:site builds
// the site alone (into dist/site/, or the directory given).
import { spawnSync } from "node:child_process";
import { chmodSync, cpSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import { buildSite } from "../src/playground/build.ts";

const ROOT = join(import.meta.dirname, "..");
const DIST = join(ROOT, "dist");

function build(siteOnly: boolean, siteDir: string): void {
  rmSync(siteDir, { recursive: true, force: true });
  buildSite(siteDir);
  if (siteOnly) return;
  const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const run = spawnSync(process.execPath, [tsc, "-p", join(ROOT, "tsconfig.build.json")], { encoding: "utf8" });
  if (run.status !== 0) throw new Error(`tsc -p tsconfig.build.json failed:\n${run.stdout}${run.stderr}`);
  cpSync(join(ROOT, "src", "tokenizer", "gpt2"), join(DIST, "tokenizer", "gpt2"), { recursive: true });
  chmodSync(join(DIST, "cli", "main.js"), 0o755);
}

const siteOnly = process.argv[2] === "--site";
const siteDir = siteOnly && process.argv[3] !== undefined ? resolve(process.argv[3]) : join(DIST, "site");
try {
  build(siteOnly, siteDir);
  process.stderr.write(siteOnly ? `build: the site is in ${siteDir}\n` : `build: the package is in ${DIST} (the site in ${siteDir})\n`);
} catch (err) {
  process.stderr.write(`build: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
}
