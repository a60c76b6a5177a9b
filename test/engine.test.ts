// The engine as an object: settings that belong to it, threads changed in place, and memory
// (its WebAssembly memory, its worker threads) given back by dispose.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Clock, Engine, Tensor, loadModel, matmul, nodePlatform, randomModel } from "../src/node.ts";
import { spreadIds } from "../src/run/speed.ts";
import { FIXTURES, readReference } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..");

describe("the engine object", () => {
  it("two models with different settings side by side give the same logits; a disposed one refuses to run", async () => {
    const fast = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 2 }));
    const plain = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { kernel: "packed", threads: 1 }));
    expect([fast.engine.usesSimd, plain.engine.usesSimd]).toEqual([true, false]);
    const ref = readReference("tiny-hot").cases[1];
    const last = ref.logits[ref.logits.length - 1];
    const error = (model: typeof fast) => Math.max(...Array.from(model.forward(ref.ids), (v, i) => Math.abs(v - last[i])));
    expect(error(fast)).toBeLessThan(1e-4);
    expect(error(plain)).toBeLessThan(1e-4);
    await plain.dispose();
    expect(() => plain.forward(ref.ids)).toThrow("this model was disposed: load it again");
    // Threads change in place, without reloading the weights.
    fast.engine.setThreads(1);
    expect(fast.engine.settings).toEqual({ kernel: "auto", threads: 1, dtype: "f32" });
    expect(error(fast)).toBeLessThan(1e-4);
    await fast.dispose();
  });

  it("ops outside any engine run the plain TypeScript kernels (the article's 2×2)", () => {
    expect(matmul(Tensor.from([[1, 2], [3, 4]]), Tensor.from([[5, 6], [7, 8]])).toArray()).toEqual([[19, 22], [43, 50]]);
  });

  it("load, run and dispose 20 times: the resident memory stays flat", () => {
    const run = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", "test/dispose-child.ts", "20"], { cwd: ROOT, encoding: "utf8" });
    expect(run.stderr).toBe("");
    const rss = JSON.parse(run.stdout) as number[];
    // One model: 4·12·256² + 8192·256 + 128·256 weights ≈ 5.3 M floats ≈ 21 MB (plus its caches and threads).
    const modelBytes = 4 * (4 * 12 * 256 * 256 + 8192 * 256 + 128 * 256);
    console.log(`RSS after rounds 2, 10, 20: ${[rss[1], rss[9], rss[19]].map((b) => `${(b / 2 ** 20).toFixed(0)} MiB`).join(", ")}; one model's weights ${(modelBytes / 2 ** 20).toFixed(0)} MiB`);
    // A leak would add a model per round (20 rounds: ~400 MiB). The allocator and V8's heap settle
    // over the first rounds (on Node 26 by up to ~2 models), then the memory is flat.
    expect(rss[19] - rss[9]).toBeLessThan(modelBytes);
    expect(rss[19] - rss[1]).toBeLessThan(3 * modelBytes);
  });
});

describe("a rehearsed pass (Engine.rehearse)", () => {
  // Large enough that a 400-token prefill needs more scratch than the short pass before it made:
  // each block's attention scores alone are 4 heads × 400² floats, 2.6 MB.
  const config = { nLayer: 2, nHead: 4, nEmbd: 128, nPositions: 512, vocabSize: 512, layerNormEpsilon: 1e-5 };
  const ids = spreadIds(400, 3, config.vocabSize);

  it("runs nothing, counts nothing, leaves the cache as it was; the pass after it makes no memory and gives the same logits", async () => {
    const cold = await randomModel(new Engine(nodePlatform, { threads: 2 }), config);
    await cold.engine.ready();
    cold.step([1, 2, 3], cold.newCache(8));
    // Unrehearsed, the long pass makes its scratch memory as it runs.
    const coldLeft = cold.engine.arenaBytesToCome();
    const coldLogits = cold.step(ids, cold.newCache(400)).data;
    expect(cold.engine.arenaBytesToCome()).toBeLessThan(coldLeft);

    // The same kernels as the cold model's (each engine times its own candidates, and on Node 26
    // two engines chose differently: logits a few ulps apart).
    const warm = await randomModel(new Engine(nodePlatform, { threads: 2 }), config);
    warm.engine.adoptKernelWisdom(cold.engine.kernelWisdom());
    await warm.engine.ready();
    warm.step([1, 2, 3], warm.newCache(8));
    const cache = warm.newCache(400);
    const clock = new Clock();
    clock.run(() => warm.rehearse(ids, cache));
    expect(cache.length).toBe(0);
    expect(clock.entries.length).toBe(0);
    expect(clock.cycles).toBe(0);
    // Nothing ran: the cache's keys are still the zeros it was made with.
    expect(cache["keys"].every((layer) => layer.every((x) => x === 0))).toBe(true);
    const madeLeft = warm.engine.arenaBytesToCome();
    expect(madeLeft).toBeLessThan(coldLeft);
    const warmLogits = clock.run(() => warm.step(ids, cache)).data;
    expect(warm.engine.arenaBytesToCome()).toBe(madeLeft);
    expect(clock.entries.length).toBeGreaterThan(0);
    expect(warmLogits).toEqual(coldLogits);
    await cold.dispose();
    await warm.dispose();
  });
});
