// One end-to-end measurement of GPT-2 small with random weights, run by bench/run.ts in a
// fresh process: argv = threads, "quick" | "full", dtype (f32 | bf16 | q8), kernel, and
// optionally "batch" (decode batches of 1, 2, 4, 8, 16 sequences instead). Prints one JSON object.
import { Engine, GPT2_SMALL, type WeightDtype, nodePlatform, randomModel } from "../src/node.ts";
import { measureSpeed, spreadIds, warmUp } from "../src/run/speed.ts";

const threads = Number(process.argv[2]);
const quick = process.argv[3] === "quick";
const dtype = (process.argv[4] ?? "f32") as WeightDtype;
const kernel = process.argv[5] ?? "auto";
const model = await randomModel(new Engine(nodePlatform, { threads, dtype, kernel }), GPT2_SMALL);
await model.engine.ready();
if (process.argv[6] === "batch") {
  const into = warmUp(model);
  // A 16-token prompt prefilled once and copied to every sequence; then decode steps of all of them.
  const steps = quick ? 8 : 32;
  const prompt = model.newCache(16);
  model.step(spreadIds(16, 5, GPT2_SMALL.vocabSize), prompt, 1, into);
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

const speed = measureSpeed(model, quick ? 32 : 128, quick ? 16 : 64);
process.stdout.write(JSON.stringify({
  threads, dtype, kernel, ...speed, decodePrompt: 16, alonePasses: model.engine.alonePasses, peakRssBytes: nodePlatform.peakMemoryBytes(),
}));
