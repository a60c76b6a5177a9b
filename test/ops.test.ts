// Every primitive op against hand-worked values or PyTorch (float64) values, and its cycle cost.
import { describe, expect, it } from "vitest";
import {
  Clock, GELU_CYCLES_PER_ELEMENT, LAYER_NORM_CYCLES_PER_ELEMENT, SOFTMAX_CYCLES_PER_ELEMENT, Tensor,
  PackedMatrix, add, attentionScores, attentionValues, causalSoftmax, embed, gelu, layerNorm, matmul,
  scale, softmax, splitColumns, stackRows, transpose,
} from "../src/index.ts";

function counted<T>(fn: () => T): { value: T; cycles: number; bytes: number; clock: Clock } {
  const clock = new Clock();
  const value = clock.run(fn);
  return { value, cycles: clock.cycles, bytes: clock.bytes, clock };
}

function expectClose(actual: Float32Array | number[], expected: number[], tol = 1e-6): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(Math.abs(actual[i] - expected[i]), `index ${i}`).toBeLessThanOrEqual(tol);
}

describe("Tensor", () => {
  it("round-trips nested arrays and checks sizes", () => {
    const t = Tensor.from([[[1, 2]], [[3, 4]]]);
    expect(t.shape).toEqual([2, 1, 2]);
    expect(t.toArray()).toEqual([[[1, 2]], [[3, 4]]]);
    expect(() => Tensor.from([[1, 2], [3]])).toThrow(/ragged/);
    expect(() => new Tensor(new Float32Array(3), [2, 2])).toThrow(/3 elements but shape \[2,2\] needs 4/);
  });
});

describe("matmul", () => {
  it("non-square [2,3]×[3,1] worked by hand, M·K·N cycles", () => {
    const { value, cycles, bytes } = counted(() => matmul(Tensor.from([[1, 2, 3], [4, 5, 6]]), Tensor.from([[1], [0], [-1]])));
    expect(value.toArray()).toEqual([[-2], [-2]]);
    expect(cycles).toBe(2 * 3 * 1);
    expect(bytes).toBe(4 * (6 + 3 + 2)); // A's 6 floats read, B's 3, 2 written
  });

  it("1×N times N×1 is a dot product; N×1 times 1×N an outer product", () => {
    const row = Tensor.from([[1, 2, 3, 4]]);
    const col = Tensor.from([[4], [3], [2], [1]]);
    expect(counted(() => matmul(row, col))).toMatchObject({ cycles: 4 });
    expect(matmul(row, col).toArray()).toEqual([[20]]);
    const outer = counted(() => matmul(col, row));
    expect(outer.value.toArray()).toEqual([[4, 8, 12, 16], [3, 6, 9, 12], [2, 4, 6, 8], [1, 2, 3, 4]]);
    expect(outer.cycles).toBe(4 * 1 * 4);
  });

  it.each([[1, 1, 1], [3, 5, 7], [16, 8, 4], [1, 64, 33]])("%i×%i×%i counts M·K·N cycles", (m, k, n) => {
    const a = new Tensor(new Float32Array(m * k).fill(1), [m, k]);
    const b = new Tensor(new Float32Array(k * n).fill(2), [k, n]);
    const { value, cycles } = counted(() => matmul(a, b));
    expect(cycles).toBe(m * k * n);
    expect(value.data.every((v) => v === 2 * k)).toBe(true);
  });

  it("names the op and both shapes on a mismatch", () => {
    expect(() => matmul(Tensor.from([[1, 2]]), Tensor.from([[1, 2]]))).toThrow("matmul: inner dimensions differ: [1,2] and [1,2]");
    expect(() => matmul(Tensor.from([1, 2]), Tensor.from([[1, 2]]))).toThrow(/matmul: expects two matrices: \[2\] and \[1,2\]/);
  });

  it("a transposed B (rows of Bᵀ, as GPT-2 stores wte) gives the same product and cycles", () => {
    const a = Tensor.from([[1, 2, 3], [4, 5, 6]]);
    const b = PackedMatrix.transposedView(Tensor.from([[1, 0, -1], [2, 2, 2], [0.5, 0, 0], [1, 1, 1]])); // Bᵀ is [N=4, K=3]
    expect(b.shape).toEqual([3, 4]);
    const { value, cycles } = counted(() => matmul(a, b));
    expect(value.toArray()).toEqual([[-2, 12, 0.5, 6], [-2, 30, 2, 15]]);
    expect(cycles).toBe(2 * 3 * 4);
    expect(() => matmul(a, PackedMatrix.transposedView(Tensor.from([[1, 2]])))).toThrow("matmul: inner dimensions differ: [2,3] and [2,1]");
  });
});

describe("add, scale, transpose", () => {
  it("broadcasts a bias row over rows ([N] and [1,N]), 1 cycle per output element", () => {
    const x = Tensor.from([[1, 2, 3], [4, 5, 6]]);
    const r1 = counted(() => add(x, Tensor.from([10, 20, 30])));
    expect(r1.value.toArray()).toEqual([[11, 22, 33], [14, 25, 36]]);
    expect(r1.cycles).toBe(6);
    expect(r1.bytes).toBe(4 * (6 + 3 + 6)); // x and the bias row read once each, 6 floats written
    expect(add(x, Tensor.from([[1, 1, 1]])).toArray()).toEqual([[2, 3, 4], [5, 6, 7]]);
  });

  it("rejects shapes that neither match nor broadcast", () => {
    expect(() => add(Tensor.from([[1, 2]]), Tensor.from([1, 2, 3]))).toThrow("add: shapes do not match and b is not one row of a: [1,2] and [3]");
    expect(() => add(Tensor.from([[1, 2], [3, 4]]), Tensor.from([[1, 2], [3, 4], [5, 6]]))).toThrow(/\[2,2\] and \[3,2\]/);
  });

  it("scale multiplies every element, 1 cycle each", () => {
    const r = counted(() => scale(Tensor.from([[1, -2], [0.5, 4]]), 0.25));
    expect(r.value.toArray()).toEqual([[0.25, -0.5], [0.125, 1]]);
    expect(r.cycles).toBe(4);
  });

  it("transpose moves data for 0 cycles but is still timed", () => {
    const r = counted(() => transpose(Tensor.from([[1, 2, 3], [4, 5, 6]])));
    expect(r.value.toArray()).toEqual([[1, 4], [2, 5], [3, 6]]);
    expect(r.cycles).toBe(0);
    expect(r.clock.entries[0].op).toBe("transpose");
    expect(r.clock.entries[0].endNs).toBeGreaterThanOrEqual(r.clock.entries[0].startNs);
    expect(transpose(Tensor.from([[7, 8, 9]])).shape).toEqual([3, 1]);
    expect(() => transpose(Tensor.from([1, 2]))).toThrow("transpose: expects a matrix: [2]");
  });
});

describe("softmax", () => {
  it("[1000, 1001, 1002] without overflow (PyTorch float64 values)", () => {
    const r = counted(() => softmax(Tensor.from([1000, 1001, 1002])));
    expectClose(r.value.data, [0.09003057317038045, 0.2447284710547976, 0.6652409557748218]);
    expect(r.cycles).toBe(3 * SOFTMAX_CYCLES_PER_ELEMENT);
  });

  it("works row by row on the last axis", () => {
    const r = softmax(Tensor.from([[1, 2, 3], [-1, 0, 1.5]]));
    expectClose(r.data, [0.09003057317038045, 0.2447284710547976, 0.6652409557748218, 0.0628900132458675, 0.17095278019779026, 0.7661572065563422]);
  });

  it("causal: row i sees past+i+1 keys, counts only those, leaves the rest 0", () => {
    // 1 head, 2 new queries after 1 cached position: rows see 2 and 3 keys.
    const scores = Tensor.from([[[0, Math.log(3), 99], [1, 2, 3]]]);
    const r = counted(() => causalSoftmax(scores, 1));
    expectClose(r.value.data, [0.25, 0.75, 0, 0.09003057317038045, 0.2447284710547976, 0.6652409557748218]);
    expect(r.cycles).toBe((2 + 3) * SOFTMAX_CYCLES_PER_ELEMENT);
    expect(() => causalSoftmax(scores, 0)).toThrow(/causalSoftmax: 0 cached \+ 2 new positions ≠ 3 keys: \[1,2,3\]/);
  });
});

describe("layerNorm", () => {
  it("matches PyTorch's layer_norm with gamma, beta and eps = 1e-5", () => {
    const x = Tensor.from([[1, 2, 3, 4], [2, -2, 0, 8]]);
    const r = counted(() => layerNorm(x, Tensor.from([1, 0.5, 2, -1]), Tensor.from([0, 1, 0, 0.5]), 1e-5));
    expectClose(r.value.data, [-1.341635419968927, 0.7763940966718454, 0.8944236133126178, -0.8416354199689269, 0, 0.46547770707593605, -1.069044585848128, -1.1035668787721917], 2e-6);
    expect(r.cycles).toBe(8 * LAYER_NORM_CYCLES_PER_ELEMENT);
  });

  it("gives mean 0 and variance 1 before gamma and beta", () => {
    const n = 257;
    const x = new Tensor(Float32Array.from({ length: 3 * n }, (_, i) => Math.sin(i * 1.7) * 40 + i), [3, n]);
    const y = layerNorm(x, new Tensor(new Float32Array(n).fill(1), [n]), Tensor.zeros([n]));
    for (let r = 0; r < 3; r++) {
      const row = Array.from(y.data.subarray(r * n, r * n + n));
      const mean = row.reduce((s, v) => s + v, 0) / n;
      const variance = row.reduce((s, v) => s + (v - mean) ** 2, 0) / n;
      expect(Math.abs(mean)).toBeLessThan(1e-6);
      expect(Math.abs(variance - 1)).toBeLessThan(1e-4); // eps = 1e-5 pulls it just under 1
    }
  });

  it("names the op and the shapes when gamma does not fit", () => {
    expect(() => layerNorm(Tensor.from([[1, 2, 3]]), Tensor.from([1, 1]), Tensor.from([0, 0]))).toThrow("layerNorm: gamma and beta must match the last axis of x: [1,3] and [2] and [2]");
  });
});

describe("gelu", () => {
  it("is the tanh approximation (PyTorch approximate='tanh'), not the erf form", () => {
    const xs = [-3, -1, -0.5, 0, 0.5, 1, 2, 3];
    const tanhForm = [-0.0036373920817729943, -0.1588080093917233, -0.15428599017485606, 0, 0.34571400982514394, 0.8411919906082768, 1.954597694087775, 2.996362607918227];
    const erfForm = [-0.00404969409489031, -0.15865525393145702, -0.15426876936299344, 0, 0.34573123063700656, 0.841344746068543, 1.9544997361036416, 2.99595030590511];
    const r = counted(() => gelu(Tensor.from(xs)));
    expectClose(r.value.data, tanhForm, 1e-6);
    expect(Math.abs(r.value.data[0] - erfForm[0])).toBeGreaterThan(1e-4);
    expect(r.cycles).toBe(xs.length * GELU_CYCLES_PER_ELEMENT);
  });
});

describe("embedding, split and attention", () => {
  const wte = PackedMatrix.transposedView(Tensor.from([[1, 2], [3, 4], [5, 6]])); // the model holds wte as the head's B
  const wpe = Tensor.from([[0.5, 0.5], [10, 20], [100, 200]]);

  it("embed adds token and position rows, 1 cycle per element", () => {
    const r = counted(() => embed(wte, wpe, [2, 0], [1, 2]));
    expect(r.value.toArray()).toEqual([[15, 26], [101, 202]]);
    expect(r.cycles).toBe(4);
    expect(embed(wte, wpe, [2, 2], [2, 0]).toArray()).toEqual([[105, 206], [5.5, 6.5]]); // a batch: rows at their own positions
    expect(() => embed(wte, wpe, [3], [0])).toThrow("embed: token id 3 is outside the vocabulary (0..2)");
    expect(() => embed(wte, wpe, [0, 1], [2, 3])).toThrow("embed: position 3 is outside the model's context of 3 positions");
  });

  it("splitColumns cuts [T, 3w] into three [T, w] blocks", () => {
    const [a, b, c] = splitColumns(Tensor.from([[1, 2, 3, 4, 5, 6]]), 3);
    expect([a.toArray(), b.toArray(), c.toArray()]).toEqual([[[1, 2]], [[3, 4]], [[5, 6]]]);
  });

  it("stackRows puts a batch's rows back together, 0 cycles; one part is itself", () => {
    const one = Tensor.from([[1, 2]]);
    const r = counted(() => stackRows([one, Tensor.from([[3, 4], [5, 6]])]));
    expect(r.value.toArray()).toEqual([[1, 2], [3, 4], [5, 6]]);
    expect(r.cycles).toBe(0);
    expect(stackRows([one])).toBe(one);
    expect(() => stackRows([one, Tensor.from([[1, 2, 3]])])).toThrow("stack: every part needs 2 columns");
  });

  it("attention scores and values with 2 heads over a cached position, worked by hand", () => {
    // d = 4, 2 heads of width 2. One cached position (past = 1) and two new queries.
    const q = Tensor.from([[1, 0, 0, 1], [1, 1, 2, 0]]);
    const keys = Tensor.from([[1, 2, 3, 4], [0, 1, 1, 0], [2, 0, 0, 2]]);
    const s = counted(() => attentionScores(q, keys, 2, 1));
    expect(s.value.toArray()).toEqual([
      [[1, 0, 0], [3, 1, 2]], // head 0: q·k over columns 0..1; query 0 cannot see key 2
      [[4, 0, 0], [6, 2, 0]], // head 1: columns 2..3
    ]);
    expect(s.cycles).toBe(4 * (2 * 1 + 3)); // d · (T·past + T(T+1)/2) = 4 · 5
    const probs = Tensor.from([[[0.5, 0.5, 0], [0, 0, 1]], [[1, 0, 0], [0.25, 0.25, 0.5]]]);
    const values = Tensor.from([[2, 4, 6, 8], [0, 2, 2, 0], [1, 1, 1, 1]]);
    const v = counted(() => attentionValues(probs, values, 1));
    expect(v.value.toArray()).toEqual([[1, 3, 6, 8], [1, 1, 2.5, 2.5]]);
    expect(v.cycles).toBe(20);
  });

  it("attention rejects heads that do not divide the width and mismatched caches", () => {
    const q = Tensor.from([[1, 0, 0]]);
    expect(() => attentionScores(q, Tensor.from([[1, 1, 1]]), 2, 0)).toThrow("attentionScores: width 3 does not split into 2 heads: [1,3] and [1,3]");
    expect(() => attentionScores(q, Tensor.from([[1, 1, 1]]), 1, 1)).toThrow(/queries and keys disagree \(past = 1\)/);
  });
});

describe("the clock", () => {
  it("ops outside a clock still work and count nowhere", () => {
    const clock = new Clock();
    const c = matmul(Tensor.from([[2]]), Tensor.from([[3]]));
    expect(c.toArray()).toEqual([[6]]);
    expect(clock.cycles).toBe(0);
    expect(clock.entries).toHaveLength(0);
  });

  it("labels entries with the stage and sums stage cycles", () => {
    const clock = new Clock();
    clock.run(() => {
      clock.stage("prefill", () => matmul(Tensor.from([[1, 2]]), Tensor.from([[1], [2]])));
      clock.stage("decode", () => add(Tensor.from([1, 2, 3]), Tensor.from([1, 1, 1])));
    });
    expect(clock.entries.map((e) => [e.op, e.stage, e.cycles])).toEqual([["matmul", "prefill", 2], ["add", "decode", 3]]);
    expect(clock.stages.map((s) => [s.name, s.cycles])).toEqual([["prefill", 2], ["decode", 3]]);
    expect(clock.cycles).toBe(5);
    const [p, d] = clock.stages;
    expect(p.endNs).toBeLessThanOrEqual(d.startNs);
    expect(Math.abs(clock.unixMs(p.startNs) - Date.now())).toBeLessThan(60_000);
  });

  it("nested clocks restore the outer one", () => {
    const outer = new Clock();
    const inner = new Clock();
    outer.run(() => {
      inner.run(() => scale(Tensor.from([1, 2]), 2));
      scale(Tensor.from([1, 2, 3]), 2);
    });
    expect(inner.cycles).toBe(2);
    expect(outer.cycles).toBe(3);
  });
});
