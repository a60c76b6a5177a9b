// One end-to-end measurement of GPT-2 small with random weights, run by bench/run.ts in a
// fresh process: argv = threads, "quick" | "full", dtype (f32 | bf16 | q8), kernel, and
// optionally "batch" (decode batches of 1, 2, 4, 8, 16 sequences instead). Prints one JSON object.
import { Engine, GPT2_SMALL, type WeightDtype, nodePlatform, randomModel } from "../src/node.ts";

const threads = Number(process.argv[2]);
const quick = process.argv[3] === "quick";
const dtype = (process.argv[4] ?? "f32") as WeightDtype;
const kernel = process.argv[5] ?? "auto";
const model = await randomModel(new Engine(nodePlatform, { threads, dtype, kernel }), GPT2_SMALL);
await model.engine.ready();
// Every step's logits land in one array, as generate.ts does (see GPT2Model.step).
const into = new Float32Array(16 * GPT2_SMALL.vocabSize);
const ids = (count: number, offset: number) => Array.from({ length: count }, (_, i) => (offset + i * 7919) % GPT2_SMALL.vocabSize);

// Warm up the JIT on the same code paths first: until V8 has optimised the code between the
// kernels (on every thread), passes run slower and stall now and then.
const warm = model.newCache(40);
model.step(ids(8, 1), warm, 1, into);
for (let i = 0; i < 30; i++) model.step([i], warm, 1, into);

if (process.argv[6] === "batch") {
  // A 16-token prompt prefilled once and copied to every sequence; then decode steps of all of them.
  const steps = quick ? 8 : 32;
  const prompt = model.newCache(16);
  model.step(ids(16, 5), prompt, 1, into);
  const batches = [1, 2, 4, 8, 16].map((n) => {
    const caches = Array.from({ length: n }, () => {
      const cache = model.newCache(16 + steps + 1);
      cache.copyFrom(prompt);
      return cache;
    });
    const tokens = (step: number) => caches.map((_, s) => (step * 31 + s * 977) % GPT2_SMALL.vocabSize);
    model.stepBatch(tokens(0), caches, into); // the batch's first step tunes nothing new, but warms its path
    const start = performance.now();
    for (let step = 1; step <= steps; step++) model.stepBatch(tokens(step), caches, into);
    const ms = performance.now() - start;
    return { sequences: n, steps, msPerStep: ms / steps, tokensPerSec: (n * steps * 1000) / ms };
  });
  process.stdout.write(JSON.stringify({ threads, dtype, kernel, batches, peakRssBytes: nodePlatform.peakMemoryBytes() }));
  process.exit(0);
}

const prefillTokens = quick ? 32 : 128;
// Caches are made (and their memory touched) before the clock starts, as generate.ts does.
const prefillCache = model.newCache(prefillTokens);
let t0 = performance.now();
model.step(ids(prefillTokens, 3), prefillCache, 1, into);
const prefillMs = performance.now() - t0;
const prefillBarriers = model.engine.lastPass.barriers;

const decodePrompt = 16;
const decodeSteps = quick ? 16 : 64;
const cache = model.newCache(decodePrompt + decodeSteps);
model.step(ids(decodePrompt, 5), cache, 1, into);
t0 = performance.now();
for (let i = 0; i < decodeSteps; i++) model.step([(i * 31) % GPT2_SMALL.vocabSize], cache, 1, into);
const decodeMs = performance.now() - t0;

process.stdout.write(JSON.stringify({
  threads, dtype, kernel, prefillTokens, prefillMs, prefillTokensPerSec: (prefillTokens * 1000) / prefillMs,
  decodePrompt, decodeSteps, decodeTokensPerSec: (decodeSteps * 1000) / decodeMs,
  prefillBarriers, barriersPerToken: model.engine.lastPass.barriers, alonePasses: model.engine.alonePasses,
  peakRssBytes: nodePlatform.peakMemoryBytes(),
}));
