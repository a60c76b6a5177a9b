// generate.ts end to end, through the real command.
import { execFile } from "node:child_process";
import { copyFileSync, existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FIXTURES, readReference, setTensor } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..");
const HOT = join(FIXTURES, "tiny-hot");

/**
 * The CLI in a child process, awaited: a synchronous spawn would block vitest's worker, which on a
 * busy machine then misses its RPC deadline and fails a run whose tests all passed.
 */
function run(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/generate.ts", ...args], { cwd: ROOT, encoding: "utf8", timeout: 120_000, maxBuffer: 64 * 2 ** 20 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr });
    });
  });
}

async function runJson(...args: string[]) {
  const r = await run(...args, "--json");
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout);
}

describe("generate.ts on the PyTorch fixture model", () => {
  const [, c] = readReference("tiny-hot").cases;

  it("greedy output equals the PyTorch reference, and --json has the documented schema", async () => {
    const doc = await runJson("--model", HOT, "--input-ids", c.ids.join(","), "--max-new-tokens", String(c.greedy.length));
    expect(doc.promptIds).toEqual(c.ids);
    expect(doc.generatedIds).toEqual(c.greedy);
    expect(doc.weights).toBe("file");
    expect(doc.steps).toHaveLength(c.greedy.length);
    for (const [i, s] of doc.steps.entries()) {
      expect(s.id).toBe(c.greedy[i]);
      expect(s.top).toHaveLength(5);
      expect(s.top[0].id).toBe(s.id);
      expect(s.top[0].logit).toBeGreaterThanOrEqual(s.top[4].logit);
    }
    expect(doc.stages.map((s: { name: string }) => s.name)).toEqual(["preprocess", "prefill", "decode", "postprocess"]);
    for (const s of doc.stages) {
      expect(Object.keys(s).sort()).toEqual(["bytes", "cycles", "durationMs", "name", "predictedMs", "startUnixMs"]);
      expect(Math.abs(s.startUnixMs - Date.now())).toBeLessThan(120_000);
    }
    for (const o of doc.ops) expect(Object.keys(o).sort()).toEqual(["bound", "bytes", "calls", "cycles", "kernel", "ms", "op", "predictedMs"]);
    for (const s of doc.steps) expect(s).toMatchObject({ bytes: expect.any(Number), predictedMs: expect.any(Number) });
    expect(doc.machine).toMatchObject({ source: expect.stringMatching(/^(cache|measured)$/), memoryBytesPerSec: expect.any(Number), computeCyclesPerSec: expect.any(Number), threads: doc.threads });
    // Bytes everywhere cycles are: stages add up to the total, steps to prefill + decode.
    expect(doc.totals.bytes).toBe(doc.stages.reduce((s: number, x: { bytes: number }) => s + x.bytes, 0));
    const stageBytes = (name: string) => doc.stages.find((x: { name: string }) => x.name === name).bytes;
    expect(doc.steps.reduce((s: number, x: { bytes: number }) => s + x.bytes, 0)).toBe(stageBytes("prefill") + stageBytes("decode"));
    expect(doc.opsByStage.decode.reduce((s: number, x: { bytes: number }) => s + x.bytes, 0)).toBe(stageBytes("decode"));
    expect(doc.ops.find((o: { op: string }) => o.op === "matmul(qkv)").kernel).toMatch(/^simd /);
    expect(Object.keys(doc.totals)).toEqual(expect.arrayContaining(["cycles", "macs", "prefillTokensPerSec", "decodeTokensPerSec", "peakRssBytes"]));
    expect(doc.totals.cycles).toBe(doc.stages.reduce((s: number, x: { cycles: number }) => s + x.cycles, 0));
    expect(doc.runtime).toEqual({ name: "node", version: process.versions.node, relaxedSimd: true });
    // Decode steps 4 on (contexts 9 to 24, one bucket of 64) were restored from the three recorded
    // before them (src/kernels/replay.ts), and still gave PyTorch's tokens above.
    expect(doc.steps.map((s: { restored: boolean }) => s.restored)).toEqual(doc.steps.map((_: unknown, i: number) => i > 3));
    expect(doc.parallel.restoredPasses).toBe(c.greedy.length - 4);
  });

  it("total matmul cycles equal the analytic formula for the run's shape", async () => {
    const doc = await runJson("--model", HOT, "--input-ids", c.ids.join(","), "--max-new-tokens", "7");
    const { nLayer: L, nEmbd: d, vocabSize: V } = doc.model;
    const T = c.ids.length;
    let expected = L * (12 * T * d * d + d * T * (T + 1)) + d * V;
    for (let t = T + 1; t < T + 7; t++) expected += L * (12 * d * d + 2 * d * t) + d * V;
    expect(doc.totals.macs).toBe(expected);
    const matmulRows = doc.ops.filter((o: { op: string }) => o.op.startsWith("matmul("));
    expect(matmulRows.reduce((s: number, o: { cycles: number }) => s + o.cycles, 0)).toBe(expected);
  });

  it("seeded sampling is reproducible run to run; another seed differs", async () => {
    const args = ["--model", HOT, "--input-ids", "1,2,3", "--max-new-tokens", "30", "--do-sample", "--temperature", "1.5"];
    const a = await runJson(...args, "--seed", "7");
    const b = await runJson(...args, "--seed", "7");
    const other = await runJson(...args, "--seed", "8");
    expect(a.generatedIds).toEqual(b.generatedIds);
    expect(other.generatedIds).not.toEqual(a.generatedIds);
    expect(a.sampling).toMatchObject({ doSample: true, temperature: 1.5, seed: 7 });
  });

  it("--num-return-sequences decodes them together: sequence s is what --seed (seed + s) gives alone", async () => {
    const flags = ["--model", HOT, "--input-ids", "1,2,3", "--max-new-tokens", "10", "--do-sample"];
    const doc = await runJson(...flags, "--seed", "3", "--num-return-sequences", "3");
    expect(doc.sequences).toHaveLength(3);
    expect(doc.sequences[0].generatedIds).toEqual(doc.generatedIds);
    expect(doc.sequences.map((s: { generatedIds: number[] }) => s.generatedIds)).toEqual([await runJson(...flags, "--seed", "3"), await runJson(...flags, "--seed", "4"), await runJson(...flags, "--seed", "5")].map((d) => d.generatedIds));
    expect(doc.totals.decodeTokens).toBe(27);
    expect(doc.steps[1].rows).toBe(3);
    const text = await run(...flags, "--seed", "3", "--num-return-sequences", "3");
    expect(text.stdout).toContain("--- sequence 3 of 3 (seed 5)");
    expect(text.stderr).toMatch(/decode +27 tokens in .* \(3 sequences in 9 batched steps, .*\/step\)/);
  });

  it("--num-return-sequences beyond what the KV caches' memory holds: one line with the limit", async () => {
    const r = await run("--random-weights", "--input-ids", "1,2", "--do-sample", "--num-return-sequences", "1000", "--max-new-tokens", "1000");
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(/--num-return-sequences 1000: at most \d+ sequences of 1002 positions fit in memory \(their KV caches and a decode step.s activations\)/);
  });

  it("--random-weights NAME runs that size's shapes, and the record and report name it", async () => {
    const r = await run("--random-weights", "distilgpt2", "--input-ids", "1,2", "--max-new-tokens", "2", "--threads", "1", "--json");
    expect(r.code, r.stderr).toBe(0);
    const { model } = JSON.parse(r.stdout);
    expect(model).toMatchObject({ name: "distilgpt2", nLayer: 6, nHead: 12, nEmbd: 768, parameters: 81_912_576 });
    const report = await run("--random-weights", "distilgpt2", "--input-ids", "1,2", "--max-new-tokens", "2", "--threads", "1");
    expect(report.stderr).toContain("distilgpt2 · 6 layers, 12 heads, d=768, context 1024, vocabulary 50257, 81.9M parameters");
  });

  it("a model whose pass overflows stops with one line naming the op and layer, exit 1, and no JSON", async () => {
    const dir = mkdtempSync(join(tmpdir(), "overflow-"));
    for (const file of ["config.json", "model.safetensors"]) copyFileSync(join(HOT, file), join(dir, file));
    setTensor(join(dir, "model.safetensors"), "h.0.mlp.c_proj.weight", 3e38);
    const r = await run("--model", dir, "--input-ids", "1,2,3", "--max-new-tokens", "4", "--json");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^generate: the forward pass produced (NaN|-?Infinity) first in matmul \(mlp down\) of layer 0: the weights or config.json hold values GPT-2 cannot compute with$/);
    expect(r.stdout).toBe("");
  });

  it("a config whose weights exceed the machine's memory is refused at once, naming the config and the dtype that would fit", async () => {
    const dir = mkdtempSync(join(tmpdir(), "huge-"));
    copyFileSync(join(HOT, "model.safetensors"), join(dir, "model.safetensors"));
    // 48·12·65536² + 50257·65536 matmul weights and 108,134,400 others: 2,477,302,939,648 parameters, 4 bytes each.
    writeFileSync(join(dir, "config.json"), JSON.stringify({ n_layer: 48, n_head: 16, n_embd: 65536, n_positions: 1024, vocab_size: 50257 }));
    const r = await run("--model", dir, "--input-ids", "1,2");
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toMatch(/^generate: .*config\.json: 2477303 M parameters need 9228\.7 GiB as f32 weights, more than this machine's \d+\.\d GiB of memory$/);
  });

  it("--max-length counts the prompt, as Hugging Face's max_length does", async () => {
    const doc = await runJson("--model", HOT, "--input-ids", "1,2,3,4", "--max-length", "10");
    expect(doc.generatedIds).toHaveLength(6);
  });

  it("prints the text report to stderr with the stages and the formula check", async () => {
    const r = await run("--model", HOT, "--input-ids", "1,2,3", "--max-new-tokens", "4", "--verbose");
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split(/\s*\[|\]\s*/).filter(Boolean)).toHaveLength(4); // ids shown as [id]: no tokenizer for this vocabulary
    for (const s of ["preprocess", "prefill", '"encoder"', "decode", '"decoder"', "postprocess", "processing delay", "matmul(qkv)", "h.2", "tokens/s"]) {
      expect(r.stderr).toContain(s);
    }
    for (const line of r.stderr.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
  });
});

describe("generate.ts with GPT-2 small's shapes and no weights", () => {
  it.skipIf(existsSync(join(ROOT, "weights", "gpt2", "model.safetensors")))("says how to fetch weights, runs random weights, starts an empty prompt at <|endoftext|>", async () => {
    const r = await run("--prompt", "", "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("npm run fetch-weights");
    expect(r.stderr).toContain("<|endoftext|>");
    expect(r.stderr).toContain("The prompt is 1 token, so the article's max_length=50 leaves 49 new: --max-length 50 reproduces it.");
    for (const line of r.stderr.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
    const doc = JSON.parse(r.stdout);
    expect(doc.weights).toBe("random");
    expect(doc.promptIds).toEqual([50256]);
    expect(doc.generatedIds).toHaveLength(50); // the default: 50 new tokens
    expect(doc.model).toMatchObject({ nLayer: 12, nHead: 12, nEmbd: 768, vocabSize: 50257 });
  });
});

describe("bad input: one clear line, a non-zero exit, no stack trace", () => {
  const ids = ["--model", HOT, "--input-ids"];
  it.each([
    [["--bogus"], /unknown flag --bogus/],
    [["--prompt"], /--prompt needs a value/],
    [["--max-new-tokens", "--json"], /--max-new-tokens needs a value/],
    [["--max-new-tokens", "many"], /--max-new-tokens expects a number, got "many"/],
    [["--max-new-tokens", "0x10"], /--max-new-tokens expects a number, got "0x10"/],
    [["--max-new-tokens", "1e400"], /--max-new-tokens expects a number, got "1e400"/],
    [["--top-k", "2.5"], /--top-k expects a whole number/],
    [["--do-sample", "--temperature", "0"], /--temperature must be > 0 when sampling/],
    [["--do-sample", "--top-p", "1.5"], /--top-p must be in \(0, 1\]/],
    [["--top-p", "0"], /--top-p must be in \(0, 1\]/],
    [["--greedy", "--do-sample"], /exclude each other/],
    [["--num-return-sequences", "2"], /needs --do-sample/],
    [[...ids, "1,2,3", "--max-length", "3"], /--max-length 3 leaves no room for new tokens: the prompt alone is 3 tokens/],
    [[...ids, Array.from({ length: 49 }, () => "1").join(",")], /the prompt is 49 tokens, longer than the model's context of 48 positions/],
    [[...ids, "1,2,3", "--max-new-tokens", "46"], /plus 46 new tokens exceed the model's context of 48 positions: ask for at most 45/],
    [[...ids, "1,999"], /--input-ids: 999 is outside the vocabulary \(0..319\)/],
    [[...ids, `1,${"9".repeat(400)}`], /--input-ids: 999999999999…\(400 digits\) is outside the vocabulary \(0..319\)/],
    [[...ids, "1,x"], /--input-ids expects comma-separated token ids/],
    [["--model", HOT, "--prompt", "hi"], /no tokenizer files .* pass the prompt as --input-ids/],
    [["--model", join(FIXTURES, "missing")], /model directory .*missing does not exist/],
    [["--random-weights", "gpt9"], /--random-weights gpt9: not a GPT-2 size; choose one of gpt2, gpt2-medium, gpt2-large, gpt2-xl, distilgpt2/],
    [["--model", "gpt2-large"], /--model gpt2-large: no weights in weights\/gpt2-large: run npm run fetch-weights -- --model gpt2-large \(or try --random-weights gpt2-large\)/],
    [["--model", join(ROOT, "README.md")], /README\.md is a file, not a model directory: pass the directory that holds config\.json/],
    // Output paths are checked before the work (the temporary file is made first).
    [[...ids, "1,2", "--trace", "/proc/no-such-dir/t.json"], /--trace \/proc\/no-such-dir\/t\.json: cannot write there \(ENOENT\): choose a file in a writable directory/],
    [[...ids, "1,2", "--report", FIXTURES], /--report .*fixtures: cannot write there \(.*fixtures is a directory\)/],
  ])("%j", async (args, message) => {
    const r = await run(...(args as string[]));
    expect(r.code).not.toBe(0);
    const lines = r.stderr.trim().split("\n");
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(message);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe("");
  });

  it("--help lists every flag and exits 0", async () => {
    const r = await run("--help");
    expect(r.code).toBe(0);
    for (const flag of ["--prompt", "--max-length", "--max-new-tokens", "--num-return-sequences", "--greedy", "--do-sample", "--temperature", "--top-k", "--top-p", "--seed", "--model", "--input-ids", "--json", "--verbose"]) {
      expect(r.stdout).toContain(flag);
    }
  });
});

describe("--kernel, --threads and --dtype change the time, never the cycles", () => {
  it("every kernel family gives the same greedy tokens and the same cycle counts", async () => {
    const [, c] = readReference("tiny-hot").cases;
    const base = ["--model", HOT, "--input-ids", c.ids.join(","), "--max-new-tokens", "8"];
    const runs = [];
    for (const flags of [["--kernel", "naive", "--threads", "1"], ["--kernel", "packed", "--threads", "2"], ["--kernel", "simd"], ["--dtype", "bf16", "--threads", "2"]]) runs.push(await runJson(...base, ...flags));
    for (const doc of runs) {
      expect(doc.totals.cycles).toBe(runs[0].totals.cycles);
      expect(doc.generatedIds.slice(0, 8)).toEqual(c.greedy.slice(0, 8));
    }
    expect(runs.map((d) => d.kernel)).toEqual(["naive, f32 weights", "packed, f32 weights", "simd, f32 weights", "auto (WebAssembly SIMD), bf16 weights"]);
  });

  it("rejects bf16 or q8 with a TypeScript kernel and unknown values in one line", async () => {
    for (const [flags, message] of [[["--dtype", "bf16", "--kernel", "packed"], /bf16 weights need the WebAssembly SIMD kernels/], [["--dtype", "q8", "--kernel", "tiled"], /q8 weights need the WebAssembly SIMD kernels \(kernel auto or simd\), not tiled/], [["--dtype", "f16"], /dtype must be f32, bf16 or q8, got f16/], [["--kernel", "fast"], /unknown kernel "fast"/], [["--threads", "0"], /threads must be 1..64, got 0/]] as const) {
      const r = await run("--model", HOT, "--input-ids", "1,2", ...flags);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split("\n")).toHaveLength(1);
      expect(r.stderr).toMatch(message);
    }
  });
});
