import { Engine, nodePlatform, randomModel } from "../../src/node.ts";
import { familyMember } from "../../src/model/family.ts";
const model = await randomModel(new Engine(nodePlatform, { threads: 2, dtype: "f32" }), familyMember("distilgpt2")!.config);
await model.engine.ready();
const into = new Float32Array(50257);
const cache = model.newCache(1024);
const step = (id: number) => { const t0 = performance.now(); model.step([id], cache, 1, into); return performance.now() - t0; };
for (let i = 0; i < 40; i++) step(i);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
for (let round = 0; round < 5; round++) {
  const hot = [step(1), step(2), step(3)];
  await sleep(30);
  const afterIdle = step(4);
  const next = step(5);
  console.log(`hot ${hot.map((x) => x.toFixed(2)).join(" ")} · after 30 ms idle ${afterIdle.toFixed(2)} · next ${next.toFixed(2)} ms`);
  cache.length = 10;
}
process.exit(0);
