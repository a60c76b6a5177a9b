import { describe, expect, it } from "vitest";
import { loadTokenizer } from "../src/node.ts";
import { GREEDY, type SamplingOptions, TokenPicker } from "../src/run/sampling.ts";
import { Utf8Stream } from "../src/run/utf8-stream.ts";
import { Random } from "../src/util/random.ts";
import { SamplingKernels } from "../src/wasm/sampling-kernels.ts";

describe("streaming UTF-8", () => {
  const bytes = (s: string) => new TextEncoder().encode(s);

  it("holds a character's leading bytes until it is whole", () => {
    const s = new Utf8Stream();
    const wo = bytes("我"); // E6 88 91
    expect(s.push(wo.subarray(0, 1))).toBe("");
    expect(s.push(wo.subarray(1, 2))).toBe("");
    expect(s.push(wo.subarray(2))).toBe("我");
    const emoji = bytes("😀a"); // F0 9F 98 80 61
    expect(s.push(emoji.subarray(0, 3))).toBe("");
    expect(s.push(emoji.subarray(3))).toBe("😀a");
    expect(s.flush()).toBe("");
  });

  it("shows bytes that can never form a character as <0xNN>, never U+FFFD", () => {
    const s = new Utf8Stream();
    expect(s.push(Uint8Array.from([0x80, 0x41, 0xc0, 0xaf]))).toBe("<0x80>A<0xC0><0xAF>");
    expect(s.push(Uint8Array.from([0xe6, 0x88, 0x41]))).toBe("<0xE6><0x88>A"); // a lead byte cut short by ASCII
    expect(s.push(Uint8Array.from([0xed, 0xa0, 0x80]))).toBe("<0xED><0xA0><0x80>"); // a UTF-16 surrogate is not UTF-8
    expect(s.push(Uint8Array.from([0xf0, 0x9f]))).toBe("");
    expect(s.flush()).toBe("<0xF0><0x9F>"); // the stream ended mid-character
  });

  it("streams the article's prompt token by token with no broken character", async () => {
    const tok = await loadTokenizer();
    const text = "我是AI，我可以帮您解决问题。请告诉我您的疑问：🧑🏾‍🚀";
    const s = new Utf8Stream();
    const chunks = tok.encode(text).map((id) => s.push(tok.decodeBytes([id])));
    expect(chunks.join("") + s.flush()).toBe(text);
    expect(chunks.some((c) => c === "")).toBe(true); // some tokens are only part of a character
    expect(chunks.join("")).not.toContain("\ufffd");
  });
});

const pickers = new Map<number, TokenPicker>();
const pickToken = (logits: Float32Array, o: SamplingOptions, rng: Random) => {
  let picker = pickers.get(logits.length);
  if (picker === undefined) pickers.set(logits.length, (picker = new TokenPicker(logits.length)));
  return picker.pick(logits, o, rng);
};

/** The reference: sort the whole vocabulary, walk it (the picker selects instead of sorting). */
function sortedPick(logits: Float32Array, o: SamplingOptions, rng: Random): number {
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  if (!o.doSample) return order[0];
  const keep = o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
  const max = logits[order[0]] / o.temperature;
  const weights = order.slice(0, keep).map((id) => Math.exp(logits[id] / o.temperature - max));
  const total = weights.reduce((a, b) => a + b, 0);
  let nucleus = keep;
  for (let i = 0, mass = 0; i < keep && o.topP < 1; i++) {
    mass += weights[i] / total;
    if (mass >= o.topP) {
      nucleus = i + 1;
      break;
    }
  }
  let r = rng.next() * weights.slice(0, nucleus).reduce((a, b) => a + b, 0);
  for (let i = 0; i < nucleus; i++) {
    r -= weights[i];
    if (r < 0) return order[i];
  }
  return order[nucleus - 1];
}

describe("sampling", () => {
  const logits = Float32Array.from([0.5, 2, -1, 2, 1.5]);

  it("top lists the highest first, lower id first on ties, as sorting does", () => {
    const picker = new TokenPicker(1000);
    expect(picker.top(logits, 3)).toEqual([{ id: 1, logit: 2 }, { id: 3, logit: 2 }, { id: 4, logit: 1.5 }]);
    expect(picker.top(logits, 9)).toEqual([{ id: 1, logit: 2 }, { id: 3, logit: 2 }, { id: 4, logit: 1.5 }, { id: 0, logit: 0.5 }, { id: 2, logit: -1 }]);
    const data = new Random(11);
    for (const spread of [1, 1000]) {
      // Coarse logits: many ties.
      const many = Float32Array.from({ length: 1000 }, () => Math.round((data.next() - 0.5) * spread));
      const sorted = Array.from(many.keys()).sort((a, b) => many[b] - many[a] || a - b);
      for (const count of [1, 5, 64]) expect(picker.top(many, count)).toEqual(sorted.slice(0, count).map((id) => ({ id, logit: many[id] })));
    }
    expect(() => picker.top(logits, 65)).toThrow(/count 65 is not in \[1, 64\]/);
  });

  it("greedy, top-k 1 and a tiny top-p all pick the argmax", () => {
    const rng = new Random(1);
    expect(pickToken(logits, GREEDY, rng)).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(pickToken(logits, { doSample: true, temperature: 1, topK: 1, topP: 1 }, rng)).toBe(1);
      expect(pickToken(logits, { doSample: true, temperature: 1, topK: 0, topP: 0.01 }, rng)).toBe(1);
    }
  });

  it("draws with the softmax probabilities (p = 1/4, 3/4) and the temperature sharpens them", () => {
    const two = Float32Array.from([Math.log(1), Math.log(3)]);
    const rng = new Random(42);
    const draws = (temperature: number) => {
      let ones = 0;
      for (let i = 0; i < 20_000; i++) ones += pickToken(two, { doSample: true, temperature, topK: 0, topP: 1 }, rng);
      return ones / 20_000;
    };
    expect(draws(1)).toBeCloseTo(0.75, 1);
    // T = 0.5 squares the odds: 9 : 1 → 0.9.
    expect(Math.abs(draws(0.5) - 0.9)).toBeLessThan(0.015);
  });

  it("top-p keeps the smallest set whose probability reaches p", () => {
    // probabilities 0.5, 0.3, 0.2: p = 0.7 keeps the first two only.
    const l = Float32Array.from([Math.log(0.5), Math.log(0.3), Math.log(0.2)]);
    const rng = new Random(5);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(pickToken(l, { doSample: true, temperature: 1, topK: 0, topP: 0.7 }, rng));
    expect([...seen].sort()).toEqual([0, 1]);
  });

  it("the picker draws exactly what walking the sorted vocabulary draws: 8,040 picks, ties included", () => {
    const data = new Random(3);
    const settings: SamplingOptions[] = [
      { doSample: true, temperature: 1, topK: 0, topP: 1 }, { doSample: true, temperature: 0.7, topK: 40, topP: 1 },
      { doSample: true, temperature: 1.3, topK: 0, topP: 0.9 }, { doSample: true, temperature: 1, topK: 50, topP: 0.8 },
      { doSample: true, temperature: 1, topK: 1, topP: 1 }, { doSample: false, temperature: 1, topK: 0, topP: 1 },
    ];
    for (const vocab of [1, 2, 7, 1000, 50257]) {
      const picker = new TokenPicker(vocab);
      for (let trial = 0; trial < (vocab > 1000 ? 3 : 40); trial++) {
        // Peaked or flat, with ties: logits rounded to a coarse grid.
        const spread = trial % 2 === 0 ? 8 : 1;
        const logits = Float32Array.from({ length: vocab }, () => Math.round((data.next() - 0.5) * spread * 4) / 4);
        for (const o of settings) {
          const seed = 1000 * vocab + trial;
          const ours = new Random(seed);
          const reference = new Random(seed);
          for (let draw = 0; draw < (vocab > 1000 ? 20 : 8); draw++) {
            expect(picker.pick(logits, o, ours), `V=${vocab} trial ${trial} ${JSON.stringify(o)}`).toBe(sortedPick(logits, o, reference));
          }
        }
      }
    }
  });

  it("weighs a token e^(−d) to within 1e-14 of Math.exp (the series stops at r⁶), and nothing past 128 nats below the top", () => {
    const kernels = new SamplingKernels(8);
    let worst = 0;
    for (let d = 0; d < 127.9; d += 0.0137) worst = Math.max(worst, Math.abs(kernels.weight(d, Math.floor(d * 32)) / Math.exp(-d) - 1));
    expect(worst).toBeLessThan(1e-14);
    expect(kernels.weight(200, 4095)).toBe(0);
    // The highest logit: four lanes at a time, then the tail; or one at a time. NaNs left out.
    for (const k of [kernels, new SamplingKernels(8, false)]) {
      const highest = (xs: number[]) => {
        k.load(Float32Array.from(xs));
        return k.max(xs.length);
      };
      expect(highest([1, NaN, 0, 0, 0, 3, NaN])).toBe(3);
      expect(highest([NaN, 5, -1, 4.5])).toBe(5);
      expect(highest([-7, -2, -3, -4, -5, -6, -9, -8])).toBe(-2);
    }
    // The buckets: ⌊(max − logit/T)·32⌋, capped at the last; counts per bucket. Twice: the
    // histograms that are merged into counts and masses start from zero each time.
    for (let pass = 0; pass < 2; pass++) {
      kernels.load(Float32Array.from([2, 1.5, 2, -1e30, 1.99]));
      const all = 1 + Math.exp(-0.5) + 1 + Math.exp(-(2 - Math.fround(1.99))); // logits are float32
      kernels.bucketize(5, 1, 2, false);
      expect([...kernels.bucketOf.subarray(0, 5)]).toEqual([0, 16, 0, 4095, 0]);
      expect([kernels.counts[0], kernels.counts[16], kernels.counts[4095]]).toEqual([3, 1, 1]);
      kernels.weigh(5, 1, 2, 1);
      expect(kernels.sumMasses(1)).toBeCloseTo(all - Math.exp(-0.5), 12); // bucket 0 only
      kernels.weigh(5, 1, 2, 4096);
      expect(kernels.sumMasses(4096)).toBeCloseTo(all, 12);
      expect(kernels.masses[16]).toBeCloseTo(Math.exp(-0.5), 14);
      // Bucketed and weighed in one pass: the same.
      kernels.bucketize(5, 1, 2, true);
      expect([kernels.counts[0], kernels.counts[16], kernels.counts[4095]]).toEqual([3, 1, 1]);
      expect(kernels.sumMasses(4096)).toBeCloseTo(all, 12);
      expect(kernels.masses[0]).toBeCloseTo(2 + Math.exp(-(2 - Math.fround(1.99))), 12);
    }
  });

  it("the seeded generator repeats its stream and stays in [0, 1)", () => {
    const a = new Random(9);
    const b = new Random(9);
    const xs = Array.from({ length: 1000 }, () => a.next());
    expect(xs).toEqual(Array.from({ length: 1000 }, () => b.next()));
    expect(Math.min(...xs)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...xs)).toBeLessThan(1);
  });
});
