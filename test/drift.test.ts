// The drift correction's arithmetic on a synthetic profile (never a timing): the warm-up's calls
// give the two roofs' factors, the profile is rescaled by them, and the rescaled profile then
// predicts those calls as they were timed.
import { describe, expect, it } from "vitest";
import type { OpEntry } from "../src/clock/clock.ts";
import { measureDrift, rescaled } from "../src/profile/drift.ts";
import type { ModelCosts } from "../src/profile/machine-profile.ts";
import { predictCallNs } from "../src/profile/roofline.ts";

// Read for a model: memory 40 GB/s, products at 100 G cycles/s, 1 µs per call.
const profile: ModelCosts = {
  memoryBytesPerSec: 40e9,
  computeCyclesPerSec: 100e9,
  ops: {
    "matmul(mlp up)": { callNs: 1000, cyclesPerSec: 100e9 },
    kvAppend: { callNs: 500, cyclesPerSec: 100e9, bytesPerSec: 4e9 },
    add: { callNs: 2000, cyclesPerSec: 1e9 },
  },
  passNs: { fixed: 8000, perToken: 400, recorded: 1600 },
  samplingNs: { greedy: 3000, sample: 6000 },
  extrapolated: null,
};

/** A call of mlp up (768 → 3072, f32 weights) on `rows` rows that took `ns`. */
function call(rows: number, ns: number): OpEntry {
  const [k, n] = [768, 3072];
  return {
    op: "matmul", role: "mlp up", inputs: [[rows, k], [k, n]], output: [rows, n], cycles: rows * k * n, bytes: 4 * (rows * k + rows * n + k * n),
    startNs: 0, endNs: ns, stage: rows === 1 ? "decode" : "prefill", layer: 0, step: 0, kernel: "simd",
  };
}

describe("drift", () => {
  // One row, the largest stream: 9.45 MB at 40 GB/s = 236 µs; today it took 236/1.25 µs (memory
  // 25% faster). 64 rows: 151 M cycles at 100 G/s = 1.51 ms, then their 10.2 MB at the roof (a
  // many-row product takes the two one after the other); today 1 µs + 1.51/0.8 ms (compute 20%
  // slower) + 255/1.25 µs.
  const one = call(1, 0);
  const many = call(64, 0);
  const memoryNs = (e: OpEntry) => (1e9 * e.bytes) / 40e9;
  const computeNs = (e: OpEntry) => (1e9 * e.cycles) / 100e9;
  one.endNs = memoryNs(one) / 1.25;
  many.endNs = 1000 + computeNs(many) / 0.8 + memoryNs(many) / 1.25;

  it("measures each roof as the profile did: the largest one-row stream, the many-row products' ceilings", () => {
    const smaller = { ...call(1, 0), bytes: one.bytes / 2, endNs: one.endNs }; // a stream at half the rate: not the roof
    const d = measureDrift(profile, [one, smaller, many, { ...one, op: "add", role: "" }]);
    expect(d.memory).toBeCloseTo(1.25, 12);
    expect(d.compute).toBeCloseTo(0.8, 12);
  });

  it("measures the calls' factor: the ops' time beyond their work at today's roofs, over the profile's fixed costs", () => {
    // The stream took no more than its bytes, the 64 rows 1 µs more than their cycles: 1 µs of
    // the 2 µs the profile's fixed costs say.
    expect(measureDrift(profile, [one, many]).calls).toBeCloseTo(0.5, 9);
    // An add of 1000 cycles (1 µs of work at 1 G/s, 2 µs fixed) that took 100 µs: ×49.5, held to 20.
    const add: OpEntry = { ...one, op: "add", role: "", cycles: 1000, bytes: 12_000, endNs: 100_000 };
    expect(measureDrift(profile, [add]).calls).toBe(20);
    // The same add right after a pass's embedding carries the pass's start (the workers' wake-up): not a call's cost.
    const embed: OpEntry = { ...one, op: "embed", role: "", cycles: 0, bytes: 0, endNs: 0 };
    expect(measureDrift(profile, [one, many, embed, add]).calls).toBeCloseTo(0.5, 9);
  });

  it("keeps a roof no call measured at factor 1", () => {
    expect(measureDrift(profile, [one])).toMatchObject({ memory: expect.closeTo(1.25, 12), compute: 1 });
    expect(measureDrift(profile, [])).toEqual({ memory: 1, compute: 1, calls: 1 });
    // Calls that took no time on the clock measure no rate (not an infinite one).
    expect(measureDrift(profile, [{ ...one, endNs: 0 }, { ...many, endNs: 0 }])).toMatchObject({ memory: 1, compute: 1 });
  });

  it("rescales bytes/s by the memory factor, cycles/s, token picks and recording by the compute factor, fixed costs by the calls' factor", () => {
    const r = rescaled(profile, { memory: 1.25, compute: 0.8, calls: 1.25 });
    expect(r.memoryBytesPerSec).toBeCloseTo(50e9, 0);
    expect(r.computeCyclesPerSec).toBeCloseTo(80e9, 0);
    expect(r.ops.kvAppend).toEqual({ callNs: 625, cyclesPerSec: 80e9, bytesPerSec: 5e9 });
    expect(r.ops.add.callNs).toBeCloseTo(2500, 9);
    expect(r.passNs).toEqual({ fixed: 10000, perToken: 500, recorded: 2000 });
    // recording a pass is JavaScript on the calling thread: the CPU's speed, not the calls'
    expect(rescaled(profile, { memory: 1, compute: 2, calls: 3 }).passNs.recorded).toBe(800);
    expect(r.samplingNs).toEqual({ greedy: 3750, sample: 7500 });
    expect(profile.memoryBytesPerSec).toBe(40e9); // the cached profile itself is left as it was
  });

  it("then predicts the warm-up's calls as they took, in all", () => {
    const r = rescaled(profile, measureDrift(profile, [one, many]));
    // Each call's work as timed, and half a µs of fixed cost each: the 1 µs they took beyond their work.
    const [a, b] = [predictCallNs(r, "matmul(mlp up)", one.cycles, one.bytes, true), predictCallNs(r, "matmul(mlp up)", many.cycles, many.bytes, false)];
    expect(a).toBeCloseTo(one.endNs + 500, 3);
    expect(b).toBeCloseTo(many.endNs - 500, 3);
    expect(a + b).toBeCloseTo(one.endNs + many.endNs, 3);
  });
});
