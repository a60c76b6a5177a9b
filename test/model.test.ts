// Parity with the float64 PyTorch reference (scripts/make-fixtures.py), in the spirit of llm.c's
// test_gpt2.c: the tolerance is stated, and the error reached is printed.
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Clock, Engine, loadModel, nodePlatform } from "../src/node.ts";
import { FIXTURES, argmax, maxAbsDiff, readReference } from "./helpers.ts";

const LOGIT_TOLERANCE = 1e-4;

describe.each(["tiny-hot", "tiny-init"])("%s matches the PyTorch reference", (fixture) => {
  const ref = readReference(fixture);

  it.each(ref.cases.map((c) => [c.ids.length, c] as const))(`logits at every position of a %i-token prompt within ${LOGIT_TOLERANCE}`, async (_, c) => {
    const model = await loadModel(join(FIXTURES, fixture));
    const logits = model.step(c.ids, model.newCache(), c.ids.length);
    const err = maxAbsDiff(logits.data, c.logits.flat());
    const scale = Math.max(...c.logits.flat().map(Math.abs));
    console.log(`${fixture} T=${c.ids.length}: max |Δlogit| = ${err.toExponential(2)} (tolerance ${LOGIT_TOLERANCE}; logits up to ${scale.toFixed(2)})`);
    expect(err).toBeLessThan(LOGIT_TOLERANCE);
    // A fresh pass for the last position only (a one-row product, maybe another kernel) agrees.
    expect(maxAbsDiff(model.forward(c.ids), logits.data.subarray(logits.data.length - model.config.vocabSize))).toBeLessThan(1e-5);
  });

  it.each(ref.cases.map((c) => [c.ids.length, c] as const))("greedy continuation of a %i-token prompt is identical, KV-cached", async (_, c) => {
    const model = await loadModel(join(FIXTURES, fixture));
    const cache = model.newCache();
    // Every step's logits land in the same array, as a generation loop reuses one.
    const into = new Float32Array(model.config.vocabSize);
    let logits = model.step(c.ids, cache, 1, into).data;
    const out: number[] = [];
    for (let i = 0; i < c.greedy.length; i++) {
      out.push(argmax(logits));
      if (i + 1 < c.greedy.length) logits = model.step([out[i]], cache, 1, into).data;
    }
    expect(out).toEqual(c.greedy);
    expect(logits.buffer).toBe(into.buffer);
    const length = cache.length;
    expect(() => model.step([1], cache, 1, new Float32Array(7))).toThrow(`the logits need ${model.config.vocabSize} floats, and the array given for them holds 7`);
    expect(cache.length).toBe(length); // refused before the pass ran
  });
});

describe("the KV cache", () => {
  it("decoding step by step gives the logits of a full recompute", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"));
    const [c] = readReference("tiny-hot").cases.slice(1);
    const sequence = [...c.ids, ...c.greedy];
    const cache = model.newCache();
    model.step(c.ids, cache);
    let worst = 0;
    for (let t = c.ids.length; t < sequence.length; t++) {
      const cached = model.step([sequence[t]], cache).data;
      worst = Math.max(worst, maxAbsDiff(cached, model.forward(sequence.slice(0, t + 1))));
    }
    console.log(`cached vs recomputed logits over ${sequence.length - c.ids.length} steps: max |Δ| = ${worst.toExponential(2)}`);
    expect(worst).toBeLessThan(5e-5); // a one-row step may run another kernel than the full pass
  });
});

describe("F16 and BF16 checkpoints", () => {
  it.each(["f16", "bf16"])("%s loads, matches a reference on the same rounded weights, and stays near fp32", async (dtype) => {
    const model = await loadModel(join(FIXTURES, `tiny-hot-${dtype}`));
    const [c] = readReference(`tiny-hot-${dtype}`).cases;
    const logits = model.forward(c.ids);
    const err = maxAbsDiff(logits, c.logits[0]);
    const fp32 = readReference("tiny-hot").cases.find((r) => r.ids.join() === c.ids.join())!;
    const drift = maxAbsDiff(logits, fp32.logits[fp32.logits.length - 1]);
    console.log(`${dtype}: max |Δlogit| vs its reference ${err.toExponential(2)}; drift from fp32 weights ${drift.toExponential(2)}`);
    expect(err).toBeLessThan(LOGIT_TOLERANCE);
    expect(drift).toBeGreaterThan(0);
    expect(drift).toBeLessThan(dtype === "f16" ? 0.05 : 0.5);
  });
});

describe("cycle counts equal the analytic formula", () => {
  // Per layer: prefill of T tokens 12·T·d² + d·T(T+1); decode at context t 12·d² + 2·d·t;
  // LM head d·V per computed position.
  const macs = (clock: Clock) => clock.entries.filter((e) => e.op === "matmul").reduce((s, e) => s + e.cycles, 0);

  it.each([["tiny-hot", 1], ["tiny-hot", 12], ["tiny-init", 5], ["tiny-init", 32]] as const)("%s: prefill of %i tokens, then 3 decode steps", async (fixture, T) => {
    const model = await loadModel(join(FIXTURES, fixture));
    const { nLayer: L, nEmbd: d, vocabSize: V } = model.config;
    const cache = model.newCache();
    const prefill = new Clock();
    prefill.run(() => model.step(Array.from({ length: T }, (_, i) => i % V), cache));
    expect(macs(prefill)).toBe(L * (12 * T * d * d + d * T * (T + 1)) + d * V);
    for (let t = T + 1; t <= Math.min(T + 3, model.config.nPositions); t++) {
      const step = new Clock();
      step.run(() => model.step([t % V], cache));
      expect(macs(step)).toBe(L * (12 * d * d + 2 * d * t) + d * V);
    }
  });
});

describe("byte counts equal the analytic formula", () => {
  // Bytes each op must move, summed by hand over one block (see each op's comment in src/tensor/):
  // weights 12·w·d² (w = 2 or 4 bytes as stored) per block; activations per block 272·T·d + 52·d
  // for a T-token prefill (of which the split of q, k, v moves 24·T·d: none for one row, whose
  // parts are views), 292·d + 8·d·t for a decode step at context t (the KV cache read);
  // attention's scores and weights 16·H per visible pair. Outside the blocks: the embedding
  // (w + 8)·d per token, ln_f on the last row 16·d, the LM head 4·(d + V) + w·d·V.
  it.each([["f32", 4, 1], ["f32", 4, 9], ["bf16", 2, 6]] as const)("%s weights (%i bytes each): prefill of %i tokens, then 3 decode steps", async (dtype, w, T) => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { dtype }));
    const { nLayer: L, nEmbd: d, nHead: H, vocabSize: V } = model.config;
    const head = 4 * (d + V) + w * d * V + 16 * d;
    const cache = model.newCache();
    const prefill = new Clock();
    prefill.run(() => model.step(Array.from({ length: T }, (_, i) => i % V), cache));
    const split = T === 1 ? 0 : 24 * T * d;
    expect(prefill.bytes).toBe(L * (12 * w * d * d + 248 * T * d + split + 52 * d + 8 * H * T * (T + 1)) + (w + 8) * T * d + head);
    for (let t = T + 1; t <= T + 3; t++) {
      const step = new Clock();
      step.run(() => model.step([t % V], cache));
      expect(step.bytes).toBe(L * (12 * w * d * d + 292 * d + 8 * d * t + 16 * H * t) + (w + 8) * d + head);
    }
  });
});
