// The GPT-2 family: the published sizes' shapes and parameter counts, their hub repositories,
// and the flag that asks for one.
import { execFile } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseFlags } from "../src/cli/args.ts";
import { repositoryOf } from "../src/io/fetch-model.ts";
import { GPT2_FAMILY, familyMember, familyOf, parameterCounts } from "../src/model/family.ts";
import { type SweepRow, sweepHtml } from "../src/report/sweep.ts";

const ROOT = join(import.meta.dirname, "..");

describe("the GPT-2 family", () => {
  // Parameter counts as Hugging Face's model cards and `sum(p.numel() for p in model.parameters())` give them.
  it.each([
    ["gpt2", 124_439_808], ["gpt2-medium", 354_823_168], ["gpt2-large", 774_030_080], ["gpt2-xl", 1_557_611_200], ["distilgpt2", 81_912_576],
  ])("%s has %i parameters", (name, count) => {
    const { config } = familyMember(name)!;
    const { matmul, others } = parameterCounts(config);
    expect(matmul + others).toBe(count);
    expect(familyOf(config)?.name).toBe(name);
  });

  it("each size comes from its own repository; other names are taken as they are", () => {
    expect(GPT2_FAMILY.map((m) => repositoryOf(m.name))).toEqual(["openai-community/gpt2", "openai-community/gpt2-medium", "openai-community/gpt2-large", "openai-community/gpt2-xl", "distilbert/distilgpt2"]);
    expect(repositoryOf("someone/gpt2-finetuned")).toBe("someone/gpt2-finetuned");
    expect(familyOf({ nLayer: 3, nHead: 4, nEmbd: 48, nPositions: 48, vocabSize: 320, layerNormEpsilon: 1e-5 })).toBeUndefined();
  });

  it("--random-weights takes a size or none", () => {
    const specs = { "random-weights": { kind: "optional" as const, help: "" }, threads: { kind: "int" as const, help: "" } };
    expect(parseFlags(["--random-weights"], specs)).toEqual({ "random-weights": true });
    expect(parseFlags(["--random-weights", "gpt2-xl"], specs)).toEqual({ "random-weights": "gpt2-xl" });
    expect(parseFlags(["--random-weights", "--threads", "2"], specs)).toEqual({ "random-weights": true, threads: 2 });
    expect(parseFlags(["--random-weights=distilgpt2"], specs)).toEqual({ "random-weights": "distilgpt2" });
  });

  it("fetch-weights --list shows each size's parameters and the memory its weights take", async () => {
    const stdout = await new Promise<string>((resolve, reject) => {
      execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "fetch-weights", "--list"], { cwd: ROOT, encoding: "utf8" }, (err, out) => (err ? reject(err) : resolve(out)));
    });
    // gpt2-xl: 48·12·1600² + 50257·1600 = 1,554,971,200 matmul weights and 2,640,000 others (float32):
    // f32 4 × 1,557,611,200 B = 5.80 GiB; bf16 2 × 1,554,971,200 + 4 × 2,640,000 = 2.91 GiB;
    // q8 (34 bytes per 32 weights) 1.0625 × 1,554,971,200 + 4 × 2,640,000 = 1.55 GiB.
    expect(stdout).toMatch(/^gpt2-xl +openai-community\/gpt2-xl +48 +25 +1600 +1,557,611,200 +5\.80 GiB\* +2\.91 GiB +1\.55 GiB$/m);
    expect(stdout).toMatch(/^distilgpt2 +distilbert\/distilgpt2 +6 +12 +768 +81,912,576 /m);
  });
});

describe("npm run sweep", () => {
  const sweep = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((resolve) => {
    execFile(process.execPath, ["--import", "tsx", "src/cli/main.ts", "sweep", ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === "number" ? err.code : -1, stdout, stderr });
    });
  });

  it("lists its flags; a bad dtype is one line and exit 2", async () => {
    const help = await sweep(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--quick +distilgpt2 and gpt2 at prompts of 1 and 64 tokens/);
    const bad = await sweep(["--dtype", "f8"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr.trim().split("\n")).toEqual(["sweep: dtype must be f32, bf16 or q8, got f8"]);
    // a report that cannot be written fails before anything is measured
    const unwritable = await sweep(["--quick", "--report", "/nonexistent-dir/sweep.html"]);
    expect(unwritable.code).toBe(2);
    expect(unwritable.stderr.trim().split("\n")).toEqual(["sweep: --report /nonexistent-dir/sweep.html: cannot write there (ENOENT): choose a file in a writable directory"]);
  });

  it("draws the prediction beside every measured point, and counts the predictions within 15 %", () => {
    // Two sizes at two prompt lengths: errors +10 %, −20 %, +5 %, 0 % (worked by hand).
    const row = (model: string, parameters: number, prompt: number, predicted: number, measured: number): SweepRow => ({
      model, parameters, prompt, decodeCyclesPerToken: parameters, decodeBytesPerToken: 4 * parameters, predictedMsPerToken: predicted, measuredMsPerToken: measured, prefillTokensPerSec: 100,
    });
    const rows = [row("distilgpt2", 81.9e6, 1, 5.5, 5), row("distilgpt2", 81.9e6, 64, 4.8, 6), row("gpt2", 124.4e6, 1, 8.4, 8), row("gpt2", 124.4e6, 64, 9, 9)];
    const html = sweepHtml(rows, "two sizes <by hand>");
    expect(html).toContain("two sizes &lt;by hand&gt;");
    expect(html).toContain("3 of 4 predictions within ±15 %, the worst 20 % off");
    const charts = html.split("<svg").slice(1);
    expect(charts.length).toBe(3);
    // cycles: one series per prompt length, a point per size; time: each measured point and its prediction
    const points = (svg: string) => [...svg.matchAll(/<circle [^>]*>/g)].map((m) => (m[0].includes('fill="white"') ? "predicted" : "measured"));
    expect(points(charts[0])).toEqual(["measured", "measured", "measured", "measured"]);
    for (const chart of charts.slice(1)) expect(points(chart).sort()).toEqual(["measured", "measured", "measured", "measured", "predicted", "predicted", "predicted", "predicted"]);
    expect(charts[1]).toContain("<title>64-token prompt, predicted: 124.4, 9.00</title>");
    expect(charts[2]).toContain("<title>distilgpt2, measured: 64, 6.00</title>");
    expect(html).toMatch(/<td>distilgpt2<\/td><td>82 M<\/td><td>64<\/td>.*<td>-20\.0%<\/td>/);
  });
});
