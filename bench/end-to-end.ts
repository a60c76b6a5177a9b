// One end-to-end measurement of GPT-2 small with random weights, run by bench/run.ts in a
// fresh process: argv = threads, "quick" | "full", dtype (f32 | bf16), kernel. Prints one JSON object.
import { Engine, GPT2_SMALL, type WeightDtype, nodePlatform, randomModel } from "../src/node.ts";

const threads = Number(process.argv[2]);
const quick = process.argv[3] === "quick";
const dtype = (process.argv[4] ?? "f32") as WeightDtype;
const kernel = process.argv[5] ?? "auto";
const model = await randomModel(new Engine(nodePlatform, { threads, dtype, kernel }), GPT2_SMALL);
await model.engine.ready();
const ids = (count: number, offset: number) => Array.from({ length: count }, (_, i) => (offset + i * 7919) % GPT2_SMALL.vocabSize);

// Warm up the JIT on the same code paths first.
const warm = model.newCache();
model.step(ids(8, 1), warm);
for (let i = 0; i < 3; i++) model.step([i], warm);

const prefillTokens = quick ? 32 : 128;
let t0 = performance.now();
model.step(ids(prefillTokens, 3), model.newCache());
const prefillMs = performance.now() - t0;

const decodePrompt = 16;
const decodeSteps = quick ? 16 : 64;
const cache = model.newCache();
model.step(ids(decodePrompt, 5), cache);
t0 = performance.now();
for (let i = 0; i < decodeSteps; i++) model.step([(i * 31) % GPT2_SMALL.vocabSize], cache);
const decodeMs = performance.now() - t0;

process.stdout.write(JSON.stringify({
  threads, dtype, kernel, prefillTokens, prefillMs, prefillTokensPerSec: (prefillTokens * 1000) / prefillMs,
  decodePrompt, decodeSteps, decodeTokensPerSec: (decodeSteps * 1000) / decodeMs,
  peakRssBytes: nodePlatform.peakMemoryBytes(),
}));
