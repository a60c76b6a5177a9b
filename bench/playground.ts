// The playground against the terminal: GPT-2 small with random weights decoded in headless
// Chromium (the page's hooks) and by generate.ts, same prompt, tokens and threads, alternating,
// each page in a fresh browser (nothing cached: its first token is a fresh page load's).
// Run by bench/run.ts for `npm run bench -- --playground`.
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Chromium, findChromium } from "../scripts/chromium.ts";
import { startPlayground } from "../scripts/playground-process.ts";
import { table } from "../src/report/format.ts";

const ROOT = join(import.meta.dirname, "..");
const RUNS = 3;
const NEW_TOKENS = 64;
const PROMPT = Array.from({ length: 16 }, (_, i) => (464 + i * 7919) % 50257).join(",");

export interface PlaygroundRow {
  threads: number;
  pageTokensPerSec: number[];
  terminalTokensPerSec: number[];
  firstTokenMs: number[];
  pageLoadMs: number[];
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

async function pageRun(chromium: string, url: string, threads: number): Promise<{ tokensPerSec: number; firstTokenMs: number; loadMs: number }> {
  const browser = await Chromium.launch(chromium);
  try {
    const page = await browser.open(`${url}?weights=random&inputIds=${PROMPT}&maxNewTokens=${NEW_TOKENS}&threads=${threads}&autorun=1`);
    const state = await page.waitFor<string>(`["done", "error"].includes(document.body?.dataset.state) && document.body.dataset.state`, 300_000);
    if (state !== "done") throw new Error(`the page ended in ${state}: ${await page.evaluate<string>("globalThis.lastError")}`);
    const r = await page.evaluate<{ tokensPerSec: number; firstTokenMs: number; loadMs: number }>(
      "({ tokensPerSec: globalThis.lastRun.totals.decodeTokensPerSec, firstTokenMs: globalThis.firstTokenMs, loadMs: globalThis.lastRun.totals.loadMs })");
    return r;
  } finally {
    await browser.close();
  }
}

function terminalRun(threads: number, cache: string): number {
  const run = spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", "--random-weights", "--input-ids", PROMPT, "--max-new-tokens", String(NEW_TOKENS), "--threads", String(threads), "--json"],
    { cwd: ROOT, encoding: "utf8", env: { ...process.env, GPT2_CYCLES_CACHE: cache } });
  if (run.status !== 0) throw new Error(`generate.ts failed: ${run.stderr}`);
  return JSON.parse(run.stdout).totals.decodeTokensPerSec;
}

export async function playgroundBenchmark(log: (line: string) => void): Promise<PlaygroundRow[]> {
  const chromium = findChromium();
  if (chromium === undefined) throw new Error("the playground benchmark needs Chromium on PATH (apt-get install chromium)");
  const server = await startPlayground();
  const cache = mkdtempSync(join(tmpdir(), "bench-playground-cache-"));
  const rows: PlaygroundRow[] = [];
  try {
    for (const threads of [1, 2]) {
      const row: PlaygroundRow = { threads, pageTokensPerSec: [], terminalTokensPerSec: [], firstTokenMs: [], pageLoadMs: [] };
      for (let i = 0; i < RUNS; i++) {
        const page = await pageRun(chromium, server.url, threads);
        row.pageTokensPerSec.push(page.tokensPerSec);
        row.firstTokenMs.push(page.firstTokenMs);
        row.pageLoadMs.push(page.loadMs);
        row.terminalTokensPerSec.push(terminalRun(threads, cache));
        log(`playground: ${threads} thread(s), run ${i + 1}: page ${page.tokensPerSec.toFixed(1)} tokens/s (first token ${(page.firstTokenMs / 1000).toFixed(1)} s), terminal ${row.terminalTokensPerSec[i].toFixed(1)} tokens/s`);
      }
      rows.push(row);
    }
  } finally {
    server.child.kill();
  }
  return rows;
}

export function playgroundTable(rows: readonly PlaygroundRow[]): string {
  return table(["threads", "page tokens/s", "terminal tokens/s", "page ÷ terminal", "first token (fresh page)", "of which weights"], rows.map((r) => [
    String(r.threads),
    `${median(r.pageTokensPerSec).toFixed(1)} (${r.pageTokensPerSec.map((x) => x.toFixed(1)).join(", ")})`,
    `${median(r.terminalTokensPerSec).toFixed(1)} (${r.terminalTokensPerSec.map((x) => x.toFixed(1)).join(", ")})`,
    `${(median(r.pageTokensPerSec) / median(r.terminalTokensPerSec)).toFixed(2)}×`,
    `${(median(r.firstTokenMs) / 1000).toFixed(1)} s`,
    `${(median(r.pageLoadMs) / 1000).toFixed(1)} s`,
  ]), 0);
}
