// Run by engine.test.ts with --expose-gc: loads, runs and disposes a model `rounds` times and
// prints the resident memory after each round (after a full collection), as JSON.
import { Engine, nodePlatform, randomModel } from "../src/node.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --expose-gc");
const rounds = Number(process.argv[2]);
const config = { nLayer: 4, nHead: 4, nEmbd: 256, nPositions: 128, vocabSize: 8192, layerNormEpsilon: 1e-5 };
const rss: number[] = [];
for (let i = 0; i < rounds; i++) {
  const model = await randomModel(new Engine(nodePlatform, { threads: 2 }), config);
  await model.engine.ready();
  const cache = model.newCache();
  model.step([1, 2, 3, 4, 5, 6, 7, 8], cache);
  model.step([9], cache);
  await model.dispose();
  // Collections finish over a few turns of the event loop (weak references, finalizers, workers).
  for (let k = 0; k < 3; k++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  rss.push(process.memoryUsage().rss);
}
process.stdout.write(JSON.stringify(rss));
