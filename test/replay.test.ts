// Decode steps restored from their recordings (src/kernels/replay.ts) against the same steps
// recorded: the same logits bit for bit and the same clock entries, across context buckets,
// thread counts, dtypes and decode batches; and never a restore into memory laid out anew.
import { describe, expect, it } from "vitest";
import { Clock, Engine, type GPT2Model, type KVCache, type WeightDtype, nodePlatform, randomModel } from "../src/node.ts";
import { spreadIds } from "../src/run/speed.ts";

// Head width 16 and widths a multiple of 32: every op runs on the SIMD kernels, as GPT-2's do.
const config = { nLayer: 2, nHead: 4, nEmbd: 64, nPositions: 256, vocabSize: 300, layerNormEpsilon: 1e-5 };
const PROMPT = 5;
// From 5 to 150 positions: two bucket boundaries (64, 128) crossed.
const STEPS = 145;

async function modelOf(dtype: WeightDtype, threads: number): Promise<GPT2Model> {
  const model = await randomModel(new Engine(nodePlatform, { threads, dtype }), config, 7);
  await model.engine.ready();
  return model;
}

interface Decoded {
  logits: Float32Array[];
  cycles: number[];
  entries: string[];
  restored: number;
}

/** Decodes from the same prompt; `interleave`: a step on another cache between every two, so no step is ever restored. */
function decode(model: GPT2Model, sequences: number, interleave: boolean): Decoded {
  const caches: KVCache[] = Array.from({ length: sequences }, () => model.newCache(PROMPT + STEPS + 1));
  const other = model.newCache(PROMPT + STEPS + 1);
  const prompt = spreadIds(PROMPT, 1, config.vocabSize);
  for (const cache of caches) model.step(prompt, cache);
  model.step(prompt, other);
  const out: Decoded = { logits: [], cycles: [], entries: [], restored: 0 };
  for (let i = 0; i < STEPS; i++) {
    const ids = caches.map((_, s) => (i * 31 + s * 7) % config.vocabSize);
    const clock = new Clock();
    const logits = clock.run(() => (sequences === 1 ? model.step(ids, caches[0]) : model.stepBatch(ids, caches)));
    if (model.engine.lastPass.restored) out.restored++;
    out.logits.push(logits.data.slice());
    out.cycles.push(clock.cycles);
    out.entries.push(clock.entries.map((e) => `${e.op}/${e.role}/${e.layer}/${e.cycles}/${e.bytes}/${e.inputs.join(";")}/${e.output}`).join("|"));
    if (interleave && other.length < PROMPT + STEPS) model.step([i % config.vocabSize], other);
  }
  return out;
}

describe("restored decode steps", () => {
  for (const [dtype, threads, sequences] of [["f32", 1, 1], ["f32", 2, 1], ["q8", 2, 1], ["f32", 2, 3], ["q8", 1, 3]] as const) {
    it(`${dtype}, ${threads} thread(s), ${sequences} sequence(s): the logits and clock entries of steps that were recorded, bit for bit`, async () => {
      const model = await modelOf(dtype, threads);
      const recorded = decode(model, sequences, true);
      const restored = decode(model, sequences, false);
      console.log(`${dtype} ${threads}t ×${sequences}: ${restored.restored} of ${STEPS} steps restored, ${recorded.restored} in the control`);
      expect(recorded.restored).toBe(0);
      // All but three recordings per context bucket (three buckets here).
      expect(restored.restored).toBe(STEPS - 9);
      for (let i = 0; i < STEPS; i++) {
        expect(restored.logits[i]).toEqual(recorded.logits[i]);
        expect(restored.cycles[i]).toBe(recorded.cycles[i]);
        expect(restored.entries[i]).toBe(recorded.entries[i]);
      }
      await model.dispose();
    });
  }

  it("a step after its scratch memory was laid out anew is recorded again, not restored", async () => {
    const model = await modelOf("q8", 2);
    const cache = model.newCache(64);
    const control = model.newCache(64);
    model.step([1, 2, 3], cache);
    for (let i = 0; i < 5; i++) model.step([i], cache);
    expect(model.engine.lastPass.restored).toBe(true);
    // A long prompt rehearsed on another cache needs a larger block for its quantized activations, placed elsewhere.
    model.rehearse(spreadIds(200, 3, config.vocabSize), model.newCache(200));
    const logits = model.step([5], cache).data.slice();
    expect(model.engine.lastPass.restored).toBe(false);
    model.step([1, 2, 3], control);
    for (let i = 0; i < 5; i++) model.step([i], control);
    expect(logits).toEqual(model.step([5], control).data);
    await model.dispose();
  });
});
