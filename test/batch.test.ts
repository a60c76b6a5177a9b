// Batched decode: a sequence decoded with others gets exactly what it gets alone — the same
// logits bit for bit, so the same seeded tokens — and one that ends leaves the batch.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine, type GPT2Model, loadModel, nodePlatform, randomModel } from "../src/node.ts";
import type { WeightDtype } from "../src/kernels/packed-matrix.ts";
import { machineIdentity, profileKey } from "../src/profile/machine-profile.ts";
import { TINY_LADDER, measureProfile } from "../src/profile/measure.ts";
import { generate } from "../src/run/generate-run.ts";
import type { Tokenizer } from "../src/tokenizer/tokenizer.ts";
import { FIXTURES } from "./helpers.ts";

const SAMPLING = { doSample: true, temperature: 1.3, topK: 0, topP: 1 };

describe("stepBatch", () => {
  // Wide enough that every product is split across two threads.
  const config = { nLayer: 2, nHead: 4, nEmbd: 256, nPositions: 64, vocabSize: 1000, layerNormEpsilon: 1e-5 };
  it.each([["f32", 1], ["f32", 2], ["bf16", 2], ["q8", 2]] as const)("%s on %i thread(s): each row is bit for bit the logits of that sequence alone", async (dtype, threads) => {
    const model = await randomModel(new Engine(nodePlatform, { threads, dtype: dtype as WeightDtype }), config, 5);
    await model.engine.ready();
    const prompt = model.newCache();
    model.step([3, 141, 59, 265], prompt);
    const next = [7, 7, 999, 0, 512];
    const fork = () => {
      const cache = model.newCache();
      cache.copyFrom(prompt);
      return cache;
    };
    const alone = next.map((id) => model.step([id], fork()).data);
    const caches = next.map(fork);
    const batch = model.stepBatch(next, caches);
    expect(batch.shape).toEqual([next.length, config.vocabSize]);
    next.forEach((_, s) => expect(batch.data.subarray(s * config.vocabSize, (s + 1) * config.vocabSize)).toEqual(alone[s]));
    expect(caches.map((c) => c.length)).toEqual(next.map(() => 5));
    await model.dispose();
  });
});

describe("generate with several sequences", () => {
  const run = async (model: GPT2Model, sequences: number, seed: number, tokenizer: Tokenizer | null = null) => {
    const profile = await measureProfile(() => new Engine(nodePlatform, model.engine.settings), profileKey(model.engine.settings, machineIdentity(nodePlatform)), () => {}, TINY_LADDER);
    return generate({
      model, tokenizer, prompt: null, inputIds: [17, 250, 3, 99, 64], maxNewTokens: 16, sampling: SAMPLING, seed, sequences,
      stopAtEndOfText: true, loadMs: 0, machine: async () => ({ profile, source: "measured", path: "" }), warmUp: "short",
    });
  };

  it("prefills once and decodes together; sequence s has the tokens of seed + s alone; totals count all", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 1 }));
    const { record } = await run(model, 4, 11);
    const alone = await Promise.all([11, 12, 13, 14].map(async (seed) => (await run(model, 1, seed)).record));
    expect(record.sequences!.map((q) => q.generatedIds)).toEqual(alone.map((r) => r.generatedIds));
    expect(record.sequences!.map((q) => q.seed)).toEqual([11, 12, 13, 14]);
    expect(new Set(record.sequences!.map((q) => q.generatedIds.join())).size).toBe(4); // the seeds differ, so do the tokens
    expect(record.generatedIds).toEqual(alone[0].generatedIds);
    expect(record.steps.map((s) => s.rows)).toEqual([4, ...new Array(15).fill(4)]);
    expect(record.totals.decodeTokens).toBe(4 * 15);
    expect(record.totals.decodeTokensPerSec).toBeCloseTo((60 * 1000) / record.totals.decodeMs, 6);
    // One prefill, copied to the three other caches; the decode's products have 4 rows.
    expect(record.ops.find((o) => o.op === "kvCopy")?.calls).toBe(3);
    expect(record.opsByStage.prefill!.find((o) => o.op === "matmul(qkv)")!.calls).toBe(3);
    expect(record.totals.cycles).toBeGreaterThan(alone[0].totals.cycles * 3);
    await model.dispose();
  });

  it("a sequence that reaches <|endoftext|> leaves the batch; the others go on", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 1 }));
    // tiny-hot has no tokenizer: a stand-in whose end-of-text is a token these seeds draw early.
    const endOfText = (await run(model, 1, 12)).record.generatedIds[3];
    const tokenizer = { endOfText, decodeBytes: (ids: number[]) => Uint8Array.from(ids, (id) => 65 + (id % 26)) } as unknown as Tokenizer;
    const { record } = await run(model, 3, 11, tokenizer);
    const alone = await Promise.all([11, 12, 13].map(async (seed) => (await run(model, 1, seed, tokenizer)).record));
    expect(record.sequences!.map((q) => q.generatedIds)).toEqual(alone.map((r) => r.generatedIds));
    expect(record.sequences![1].stopReason).toBe("end-of-text");
    expect(record.sequences![1].generatedIds).toHaveLength(4);
    expect(record.sequences![1].text).toBe(alone[1].text);
    const rows = record.steps.map((s) => s.rows);
    expect(rows.slice(0, 4)).toEqual([3, 3, 3, 3]);
    expect(rows[4]).toBe(2); // sequence 2 is gone from the fifth pass on
    expect(record.totals.decodeTokens).toBe(record.sequences!.reduce((n, q) => n + q.generatedIds.length - 1, 0));
    await model.dispose();
  });
});
