// The playground in headless Chromium, driven over the DevTools protocol: the page runs the
// engine on a served fixture, a picked file and bad input, and its run record is the terminal's.
import { type ChildProcess, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, truncateSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Chromium, type Page, findChromium } from "../scripts/chromium.ts";
import { startPlayground } from "../scripts/playground-process.ts";
import { FIXTURES } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..");
const FIXTURE = join(FIXTURES, "tiny-hot");
const IDS = "5,17,250,3";
const NEW_TOKENS = 12;

const chromium = findChromium();
if (chromium === undefined && process.env.CI) throw new Error("CI must have Chromium for the playground test: .ci/run installs Debian's chromium package");

/** "done", or "error: " and the page's message (so a run that fails says why in the assertion), or "" while it runs. */
const settled = `(document.body?.dataset.state === "done" && "done") || (document.body?.dataset.state === "error" && "error: " + globalThis.lastError)`;

describe.skipIf(chromium === undefined)("the playground in headless Chromium", () => {
  const cli = JSON.parse(spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", "--model", FIXTURE, "--input-ids", IDS, "--max-new-tokens", String(NEW_TOKENS), "--json"], { cwd: ROOT, encoding: "utf8" }).stdout);
  const truncated = join(mkdtempSync(join(tmpdir(), "truncated-")), "tiny-hot");
  mkdirSync(truncated);
  copyFileSync(join(FIXTURE, "config.json"), join(truncated, "config.json"));
  copyFileSync(join(FIXTURE, "model.safetensors"), join(truncated, "model.safetensors"));
  truncateSync(join(truncated, "model.safetensors"), 100_000);

  let browser: Chromium;
  let served: { url: string; child: ChildProcess };
  let broken: { url: string; child: ChildProcess };
  /** No model served: random weights and picked files only. */
  let bare: { url: string; child: ChildProcess };
  beforeAll(async () => {
    [browser, served, broken, bare] = await Promise.all([
      Chromium.launch(chromium!), startPlayground(["--model", FIXTURE]), startPlayground(["--model", truncated]), startPlayground(["--no-model"]),
    ]);
  });
  afterAll(async () => {
    for (const server of [served, broken, bare]) server?.child.kill();
    await browser?.close();
  });

  it("runs the served model from the URL's hooks: lastRun is generate.ts --json's record, the stages show, the console is clean", async () => {
    const page = await browser.open(`${served.url}?weights=server&inputIds=${IDS}&maxNewTokens=${NEW_TOKENS}&threads=2&autorun=1&profileLadder=tiny`);
    expect(await page.waitFor(settled, 60_000)).toBe("done");
    const run = await page.evaluate<Record<string, unknown> & { generatedIds: number[]; totals: { cycles: number }; stages: { name: string }[] }>("globalThis.lastRun");
    expect(run.generatedIds).toEqual(cli.generatedIds);
    expect(run.totals.cycles).toBe(cli.totals.cycles);
    expect(Object.keys(run).sort()).toEqual(Object.keys(cli).sort());
    expect(Object.keys(run.totals).sort()).toEqual(Object.keys(cli.totals).sort());
    expect(run.stages.map((s) => s.name)).toEqual(["preprocess", "prefill", "decode", "postprocess"]);
    const stagesText = await page.evaluate<string>(`document.getElementById("stages").textContent`);
    for (const s of ["preprocess", "prefill", "decode", "postprocess", '"encoder"', '"decoder"']) expect(stagesText).toContain(s);
    expect(await page.evaluate<string>(`document.getElementById("generated").textContent`)).toBe(cli.generatedIds.map((id: number) => `[${id}]`).join(""));
    // The full report, drawn by src/report/ in the page.
    expect(await page.evaluate<string>(`document.getElementById("report-frame").srcdoc`)).toContain("The article's formula, predicting");
    expect(page.errors).toEqual([]);
    // The machine profile was measured after the run and kept in IndexedDB: the next visit uses it.
    expect(await page.evaluate<string>("globalThis.lastRun.machine.source")).toBe("measured");
    const again = await browser.open(`${served.url}?weights=server&inputIds=${IDS}&maxNewTokens=${NEW_TOKENS}&threads=2&autorun=1&profileLadder=tiny`);
    expect(await again.waitFor(settled, 60_000)).toBe("done");
    expect(await again.evaluate<[string, string]>("[globalThis.lastRun.machine.source, globalThis.lastRun.machine.path]")).toEqual(["cache", "(this browser's IndexedDB)"]);
    expect(await again.evaluate<number[]>("globalThis.lastRun.generatedIds")).toEqual(cli.generatedIds);
    expect(again.errors).toEqual([]);
  });

  it("the kernel and dtype hooks choose the engine: other kernels, other times, the same cycles", async () => {
    for (const [kernel, dtype, label] of [["packed", "f32", "packed, f32 weights"], ["auto", "bf16", "auto (WebAssembly SIMD), bf16 weights"], ["auto", "q8", "auto (WebAssembly SIMD), q8 weights"]]) {
      const page = await browser.open(`${served.url}?weights=server&inputIds=${IDS}&maxNewTokens=${NEW_TOKENS}&threads=1&kernel=${kernel}&dtype=${dtype}&autorun=1&profileLadder=tiny`);
      expect(await page.waitFor(settled, 60_000)).toBe("done");
      const run = await page.evaluate<{ kernel: string; threads: number; totals: { cycles: number } }>("globalThis.lastRun");
      expect([run.kernel, run.threads, run.totals.cycles]).toEqual([label, 1, cli.totals.cycles]);
      expect(page.errors).toEqual([]);
    }
  });

  it("random weights of a size and a text prompt: the tokenizer's ids, and the tokens of generate.ts --random-weights", { timeout: 120_000 }, async () => {
    const prompt = "Hello, world!";
    const terminal = JSON.parse(spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", "--random-weights", "distilgpt2", "--prompt", prompt, "--max-new-tokens", "3", "--threads", "1", "--json"], { cwd: ROOT, encoding: "utf8" }).stdout);
    const page = await browser.open(`${bare.url}?weights=random&randomSize=distilgpt2&prompt=${encodeURIComponent(prompt)}&maxNewTokens=3&threads=1&autorun=1&profileLadder=tiny`);
    expect(await page.waitFor(settled, 100_000)).toBe("done");
    const run = await page.evaluate<{ prompt: string; promptIds: number[]; generatedIds: number[]; weights: string; model: { name: string }; totals: { cycles: number } }>("globalThis.lastRun");
    expect(run.promptIds).toEqual([15496, 11, 995, 0]); // tiktoken's ids for the prompt
    expect([run.prompt, run.weights, run.model.name]).toEqual([prompt, "random", "distilgpt2"]);
    expect(await page.evaluate<string[]>(`[...document.getElementById("random-size").options].map((o) => o.value)`)).toEqual(["gpt2", "gpt2-medium", "gpt2-large", "gpt2-xl", "distilgpt2"]);
    expect(run.generatedIds).toEqual(terminal.generatedIds);
    expect(run.totals.cycles).toBe(terminal.totals.cycles);
    expect(page.errors).toEqual([]);
  });

  it("the article's 2×2 widget multiplies and adds with the engine's ops, cycles counted", async () => {
    const page = await browser.open(bare.url);
    await page.waitFor(`document.body?.dataset.state === "idle"`, 30_000);
    expect(await page.waitFor<string>(`document.getElementById("served-note").textContent`, 10_000)).toBe("(none: start the server with --model DIR)");
    const read = (id: string) => page.evaluate<string[]>(`[...document.getElementById("${id}").querySelectorAll("output")].map((o) => o.textContent)`);
    expect(await read("ab")).toEqual(["19", "22", "43", "50"]);
    expect(await read("a-plus-b")).toEqual(["6", "8", "10", "12"]);
    expect(await page.evaluate<string>(`document.getElementById("ab-cycles").textContent`)).toMatch(/^8 cycles/);
    expect(await page.evaluate<string>(`document.getElementById("add-cycles").textContent`)).toMatch(/^4 cycles/);
    await page.evaluate(`(() => { const a = document.querySelector("#a input"); a.value = "2"; a.dispatchEvent(new Event("input", { bubbles: true })); })()`);
    expect(await read("ab")).toEqual(["24", "28", "43", "50"]);
    expect(page.errors).toEqual([]);
  });

  /** Picks files, asks for ids and tokens, presses run, waits. */
  async function runFiles(page: Page, files: string[], ids: string, tokens: number): Promise<string> {
    await page.setFiles("files", files);
    await page.evaluate(`(() => {
      document.querySelector("input[name=weights][value=files]").checked = true;
      document.getElementById("input-ids").value = "${ids}";
      document.getElementById("max-new-tokens").value = "${tokens}";
      document.body.dataset.state = "submitted";
      document.getElementById("run").click();
    })()`);
    return page.waitFor(settled, 60_000);
  }

  it("a truncated served model is an error naming the file; the page keeps working with picked files", { timeout: 120_000 }, async () => {
    const page = await browser.open(`${broken.url}?weights=server&inputIds=${IDS}&maxNewTokens=${NEW_TOKENS}&autorun=1&profileLadder=tiny`);
    expect(await page.waitFor(settled, 60_000)).toMatch(/^error: /);
    const message = await page.evaluate<string>(`document.getElementById("error").textContent`);
    expect(message).toMatch(/^model\.safetensors: tensor "[^"]+": data_offsets \[\d+, \d+\] fall outside the data section/);
    expect(await page.evaluate<string>("globalThis.lastError")).toBe(message);
    expect(await page.evaluate("globalThis.lastRun ?? null")).toBeNull();
    // The same page, the fixture's files picked from disk (read by File.slice): the fixture's tokens.
    expect(await runFiles(page, [join(FIXTURE, "config.json"), join(FIXTURE, "model.safetensors")], IDS, NEW_TOKENS)).toBe("done");
    expect(await page.evaluate<number[]>("globalThis.lastRun.generatedIds")).toEqual(cli.generatedIds);
    expect(await page.evaluate<string>("globalThis.lastRun.model.path")).toBe("model.safetensors");
    // A prompt longer than the context: an error that says what to ask for.
    const long = Array.from({ length: 49 }, () => "1").join(",");
    expect(await runFiles(page, [join(FIXTURE, "config.json"), join(FIXTURE, "model.safetensors")], long, 1)).toMatch(/^error: /);
    expect(await page.evaluate<string>(`document.getElementById("error").textContent`)).toBe("the prompt (49 tokens) plus 1 new tokens exceed the model's context of 48 positions: ask for at most 0 new tokens after a shorter prompt");
    // A config.json picked without its weights.
    expect(await runFiles(page, [join(FIXTURE, "config.json")], IDS, 2)).toMatch(/^error: /);
    expect(await page.evaluate<string>(`document.getElementById("error").textContent`)).toBe("choose both files of the model at once: config.json and model.safetensors");
  });
});
if (chromium === undefined) it.skip("the playground in headless Chromium (skipped: no chromium on PATH; apt-get install chromium)", () => {});
