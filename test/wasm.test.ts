// The WebAssembly emitter against known encodings, and every generated SIMD kernel against the
// naive kernel (float32 and bfloat16 weights, with and without the relaxed fused multiply-add).
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Clock, Engine, KVCache, Tensor, add, attentionScores, attentionValues, causalSoftmax, gelu, layerNorm, loadModel, matmul, nodePlatform, scale } from "../src/node.ts";
import { floatToBfloat16, bfloat16ToFloat } from "../src/io/half.ts";
import { matmulNaive } from "../src/kernels/naive.ts";
import { PackedMatrix } from "../src/kernels/packed-matrix.ts";
import { I32, emitModule, op, sleb, uleb } from "../src/wasm/emitter.ts";
import { PANEL } from "../src/wasm/kernels.ts";
import { WasmHeap, relaxedAvailable, simdAvailable } from "../src/wasm/runtime.ts";
import { Random } from "../src/util/random.ts";
import { FIXTURES, maxAbsDiff, readReference } from "./helpers.ts";

const simdEngine = (dtype: "f32" | "bf16" = "f32", threads = 1) => new Engine(nodePlatform, { kernel: "simd", threads, dtype });

describe("the emitter", () => {
  it("writes LEB128 as the spec's examples", () => {
    expect(uleb(0)).toEqual([0x00]);
    expect(uleb(127)).toEqual([0x7f]);
    expect(uleb(128)).toEqual([0x80, 0x01]);
    expect(uleb(624485)).toEqual([0xe5, 0x8e, 0x26]);
    expect(sleb(-1)).toEqual([0x7f]);
    expect(sleb(63)).toEqual([0x3f]);
    expect(sleb(64)).toEqual([0xc0, 0x00]);
    expect(sleb(-64)).toEqual([0x40]);
    expect(sleb(-65)).toEqual([0xbf, 0x7f]);
    expect(sleb(-123456)).toEqual([0xc0, 0xbb, 0x78]);
  });

  it("encodes the SIMD opcodes as the spec numbers them", () => {
    expect(op.v128Load(0)).toEqual([0xfd, 0x00, 0x04, 0x00]);
    expect(op.v128Store(16)).toEqual([0xfd, 0x0b, 0x04, 0x10]);
    expect(op.v128Load32Splat(4)).toEqual([0xfd, 0x09, 0x02, 0x04]);
    expect(op.v128And).toEqual([0xfd, 0x4e]);
    expect(op.v128ConstI32x4(0xffff0000)).toEqual([0xfd, 0x0c, ...Array(4).fill([0x00, 0x00, 0xff, 0xff]).flat()]);
    expect(op.f32x4Add).toEqual([0xfd, 0xe4, 0x01]);
    expect(op.f32x4Mul).toEqual([0xfd, 0xe6, 0x01]);
    expect(op.i32x4Shl).toEqual([0xfd, 0xab, 0x01]);
    expect(op.f32x4RelaxedMadd).toEqual([0xfd, 0x85, 0x02]);
    expect(op.i32Const(-2)).toEqual([0x41, 0x7e]);
    expect([op.f32x4Sub, op.f32x4Div, op.f32x4Min, op.f32x4Max]).toEqual([[0xfd, 0xe5, 0x01], [0xfd, 0xe7, 0x01], [0xfd, 0xe8, 0x01], [0xfd, 0xe9, 0x01]]);
    expect([op.f32x4Nearest, op.f32x4Ge, op.i32x4Splat]).toEqual([[0xfd, 0x6a], [0xfd, 0x46], [0xfd, 0x11]]);
    expect([op.i32x4Add, op.i32x4TruncSatF32x4S]).toEqual([[0xfd, 0xae, 0x01], [0xfd, 0xf8, 0x01]]);
    expect(op.f32x4Const(1)).toEqual([0xfd, 0x0c, ...Array(4).fill([0x00, 0x00, 0x80, 0x3f]).flat()]);
  });

  it("emits a module that validates, instantiates on a shared memory and runs", () => {
    const add = { name: "add", params: [I32, I32], results: [I32], locals: [], body: [...op.localGet(0), ...op.localGet(1), ...op.i32Add] };
    const bytes = emitModule([add], 65536);
    expect(Array.from(bytes.subarray(0, 8))).toEqual([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
    expect(WebAssembly.validate(bytes as BufferSource)).toBe(true);
    const instance = new WebAssembly.Instance(new WebAssembly.Module(bytes as BufferSource), { env: { memory: new WasmHeap().memory } });
    expect((instance.exports.add as (a: number, b: number) => number)(40, 2)).toBe(42);
  });

  it("knows what fits wasm32's 4 GiB: gpt2-large in fp32, gpt2-xl only in bf16", () => {
    const matmulParameters = (layers: number, d: number) => layers * 12 * d * d + 50257 * d;
    expect(simdEngine("f32").weightsFit(matmulParameters(36, 1280))).toBe(true);
    expect(simdEngine("f32").weightsFit(matmulParameters(48, 1600))).toBe(false);
    expect(simdEngine("bf16").weightsFit(matmulParameters(48, 1600))).toBe(true);
  });

  it("Node 20 has SIMD, and relaxed SIMD once the runtime sets V8's flag (else its kernel tests would not run)", () => {
    expect(simdAvailable).toBe(true);
    expect(relaxedAvailable()).toBe(true);
  });
});

function random(n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  return Float32Array.from({ length: n }, () => rng.next() - 0.5);
}

describe("the kernels' memory past 2 GiB", () => {
  it("views, writes and a kernel reach addresses above 2^31 (a signed shift made them negative)", () => {
    const heap = new WasmHeap();
    heap.allocate(2 ** 31 + 64); // address space only: pages never touched take no memory
    const at = heap.allocate(64);
    expect(at).toBeGreaterThan(2 ** 31);
    heap.write(at, Float32Array.of(1.5, -2, 3));
    expect(Array.from(heap.f32View(at, 3))).toEqual([1.5, -2, 3]);
    expect(heap.f32View(at, 3).byteOffset).toBe(at);
    expect(heap.u16View(at, 2).byteOffset).toBe(at);
    // The copy kernel reads and writes there too (an address past 2^31 is a negative i32, which wasm reads unsigned).
    heap.smallOps().exports.copy(at, 12, at + 16, 12, 1, 12);
    expect(Array.from(heap.f32View(at + 16, 3))).toEqual([1.5, -2, 3]);
  });
});

describe.each([[1, 1, 1], [1, 5, 9], [3, 5, 7], [3, 40, 300], [7, 33, 17], [4, 64, 8], [127, 769, 65], [1, 768, 3072], [1, 768, 50257], [128, 768, 2304]])("SIMD kernels on %i×%i×%i", (m, k, n) => {
  const a = random(m * k, 1);
  const b = random(k * n, 2);
  const ldo = Math.ceil(n / PANEL) * PANEL;
  const cases = (["f32", "bf16"] as const).flatMap((dtype) => (relaxedAvailable() ? [false, true] : [false]).map((relaxed) =>
    [`matmul ${dtype}${relaxed ? " relaxed" : ""}`, dtype, relaxed] as const));

  // Weights, references and scratch once per dtype, in one heap for the shape.
  const heap = new WasmHeap();
  const prepared = new Map<string, { ref: Float32Array; b: number; a: number; out: number }>();
  const prepare = (dtype: "f32" | "bf16") => {
    let p = prepared.get(dtype);
    if (p === undefined) {
      const weights = new Float32Array(b);
      if (dtype === "bf16") for (let i = 0; i < weights.length; i++) weights[i] = bfloat16ToFloat(floatToBfloat16(weights[i]));
      const ref = new Float32Array(m * n);
      matmulNaive(a, weights, ref, m, k, n, 0, n);
      const packed = PackedMatrix.pack(new Tensor(b, [k, n]), PANEL, dtype, (count, t) => (t === "f32" ? heap.f32View(heap.allocate(4 * count), count) : heap.u16View(heap.allocate(2 * count), count)));
      p = { ref, b: packed.data.byteOffset, a: heap.allocate(4 * m * k), out: heap.allocate(4 * m * ldo) };
      heap.f32View(p.a, m * k).set(a);
      prepared.set(dtype, p);
    }
    return p;
  };

  it.each(cases)("%s matches naive on the same weights", (_, dtype, relaxed) => {
    const p = prepare(dtype);
    const out = heap.f32View(p.out, m * ldo).fill(NaN);
    const f = heap.kernelsFor(k, relaxed).exports[`matmul_${dtype}`];
    f(p.a, p.b, p.out, m, ldo, 0, ldo);
    let worst = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(out[i * ldo + j] - p.ref[i * n + j]));
    expect(worst).toBeLessThanOrEqual(2e-7 * k + 1e-6); // NaN (an output never written) fails too
  });

  // Threads take a product's columns in chunks, and the matmul kernel groups a range's panels in
  // four streams: each panel's sums must not depend on the range it came in.
  it.each(cases)("%s gives the same bits cut into column ranges as whole", (_, dtype, relaxed) => {
    const p = prepare(dtype);
    const f = heap.kernelsFor(k, relaxed).exports[`matmul_${dtype}`];
    f(p.a, p.b, p.out, m, ldo, 0, ldo);
    const whole = heap.f32View(p.out, m * ldo).slice();
    heap.f32View(p.out, m * ldo).fill(NaN);
    const panels = ldo / PANEL;
    const cuts = [0, ...[1, 5, 14].filter((c) => c < panels), panels];
    for (let c = 0; c + 1 < cuts.length; c++) f(p.a, p.b, p.out, m, ldo, PANEL * cuts[c], PANEL * cuts[c + 1]);
    expect(heap.f32View(p.out, m * ldo)).toEqual(whole);
  });
});

describe("SIMD through the engine", () => {
  it.each([["f32", 1], ["f32", 2], ["bf16", 1], ["bf16", 2]] as const)("%s weights on %i thread(s): naive's result, M·K·N cycles", async (dtype, threads) => {
    const engine = simdEngine(dtype, threads);
    await engine.ready();
    for (const [m, k, n] of [[1, 300, 515], [37, 300, 515]]) {
      const a = new Tensor(random(m * k, 3), [m, k]);
      const b = new Tensor(random(k * n, 4), [k, n]);
      const w = engine.prepareWeight(b);
      expect(w).toBeInstanceOf(PackedMatrix);
      expect((w as PackedMatrix).dtype).toBe(dtype);
      const ref = new Float32Array(m * n);
      matmulNaive(a.data, dtype === "f32" ? b.data : Float32Array.from(b.data, (v) => bfloat16ToFloat(floatToBfloat16(v))), ref, m, k, n, 0, n);
      const clock = new Clock();
      const c = engine.run(() => clock.run(() => matmul(a, w)));
      expect(clock.cycles).toBe(m * k * n);
      expect(clock.entries[0].kernel).toMatch(/^simd matmul/);
      expect(maxAbsDiff(c.data, ref)).toBeLessThanOrEqual(2e-7 * k + 1e-6);
    }
    await engine.dispose();
  });
});

describe("GPT-2 with bf16 weights", () => {
  it("matches a reference computed on the same rounded weights; states the drift from fp32", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 1, dtype: "bf16" }));
    const bf16 = JSON.parse((await import("node:fs")).readFileSync(join(FIXTURES, "tiny-hot", "reference-bf16-matmul-weights.json"), "utf8")) as ReturnType<typeof readReference>;
    const fp32 = readReference("tiny-hot");
    let err = 0;
    let drift = 0;
    for (const [i, c] of bf16.cases.entries()) {
      const logits = model.forward(c.ids);
      err = Math.max(err, maxAbsDiff(logits, c.logits[0]));
      const f = fp32.cases[i].logits;
      drift = Math.max(drift, maxAbsDiff(logits, f[f.length - 1]));
    }
    console.log(`bf16 matmul weights: max |Δlogit| vs the rounded-weights reference ${err.toExponential(2)} (tolerance 1e-4); drift from fp32 ${drift.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(drift).toBeGreaterThan(1e-3); // the rounding is real
  });
});

describe("SIMD add, scale, layer norm and causal softmax", () => {
  // Inside a forward pass the outputs live in the engine's memory; so do these inputs. The ops
  // are recorded, then run when the pass ends: their outputs are read after it.
  const inPass = (engine: Engine, fn: (place: (v: Float32Array, shape: number[]) => Tensor) => Tensor[]): Float32Array[] => engine.pass(() => fn((v, shape) => {
    const t = new Tensor(engine.floats(v.length), shape);
    t.data.set(v);
    return t;
  })).map((t) => Float32Array.from(t.data));

  it.each([[1, 768], [5, 48], [128, 3072]])("%i rows of %i: the TypeScript ops' results and cycles", (rows, cols) => {
    const engine = simdEngine();
    const x = random(rows * cols, 11);
    const y = random(rows * cols, 12).map((v) => 3 * v);
    const bias = random(cols, 13);
    const gamma = random(cols, 14).map((v) => 1 + v);
    const clock = new Clock();
    const ours = inPass(engine, (place) => clock.run(() => {
      const [a, b, c, g] = [place(x, [rows, cols]), place(y, [rows, cols]), place(bias, [cols]), place(gamma, [cols])];
      return [add(a, b), add(a, c), scale(a, 0.125), scale(a, 1 / Math.sqrt(12)), layerNorm(b, g, c)];
    }));
    // "simd joined": the call ran in the chunks of the one before it (the same units, see plan.ts).
    for (const e of clock.entries) expect(e.kernel).toMatch(/^simd( joined)?$/);
    const plain = new Clock();
    const [a, b, c, g] = [new Tensor(x, [rows, cols]), new Tensor(y, [rows, cols]), new Tensor(bias, [cols]), new Tensor(gamma, [cols])];
    const theirs = plain.run(() => [add(a, b), add(a, c), scale(a, 0.125), scale(a, 1 / Math.sqrt(12)), layerNorm(b, g, c)]);
    expect(plain.entries.map((e) => e.kernel)).toEqual(["", "", "", "", ""]);
    expect(clock.cycles).toBe(plain.cycles);
    expect(ours[0]).toEqual(theirs[0].data); // float32 sums: the same roundings
    expect(ours[1]).toEqual(theirs[1].data);
    expect(ours[2]).toEqual(theirs[2].data); // × 1/8 is exact
    expect(maxAbsDiff(ours[3], theirs[3].data)).toBeLessThanOrEqual(3e-8); // × 1/√12, rounded to float32 first
    expect(maxAbsDiff(ours[4], theirs[4].data)).toBeLessThan(2e-5); // sums in float32 lanes, not float64
  });

  it.each([[12, 1, 37], [12, 9, 0], [4, 5, 3], [2, 7, 2]])("causal softmax, %i heads, %i queries after %i cached: the TypeScript op's result", (heads, tq, past) => {
    const engine = simdEngine();
    const tk = past + tq;
    const scores = random(heads * tq * tk, 15).map((v) => 20 * v);
    const clock = new Clock();
    const [ours] = inPass(engine, (place) => clock.run(() => [causalSoftmax(place(scores, [heads, tq, tk]), past)]));
    expect(clock.entries[0].kernel).toBe("simd");
    const theirs = causalSoftmax(new Tensor(scores, [heads, tq, tk]), past);
    expect(maxAbsDiff(ours, theirs.data)).toBeLessThan(1e-6);
    for (let h = 0; h < heads; h++) for (let i = 0; i < tq; i++) for (let j = past + i + 1; j < tk; j++) expect(ours[(h * tq + i) * tk + j]).toBe(0); // masked: still zero
  });
});

describe("the check for NaN and ±∞", () => {
  // 16 at a time, then one at a time: a bad value at either end of a block of 16, in the tail,
  // two of them (the first counts); with none, −1. Forty floats: two blocks and a tail of eight.
  it.each([
    [[], -1], [[[0, NaN]], 0], [[[15, Infinity]], 15], [[[17, -Infinity]], 17], [[[31, NaN]], 31], [[[32, NaN]], 32],
    [[[39, Infinity]], 39], [[[33, Infinity], [20, NaN]], 20], [[[1, 3.4e38], [30, -3.4e38]], -1],
  ] as [[number, number][], number][])("with %j among forty floats: %i, as the TypeScript check finds", (bad, expected) => {
    const engine = simdEngine();
    const at = engine.heap!.allocate(4 * 43);
    const values = engine.heap!.f32View(at + 4, 40); // not 16-byte aligned
    values.set(Array.from({ length: 40 }, (_, i) => i - 20.5));
    for (const [i, v] of bad) values[i] = v;
    expect(engine.firstNonFinite(values)).toBe(expected);
    expect(engine.firstNonFinite(Float32Array.from(values))).toBe(expected); // outside its memory: the TypeScript check
  });
});

describe("SIMD attention", () => {
  it.each([[768, 12, 1, 37], [768, 12, 1, 998], [768, 12, 9, 0], [768, 12, 4, 6], [48, 4, 5, 3], [24, 6, 3, 2]])("d=%i, %i heads, %i queries after %i cached: the TypeScript op's result and cycles", (d, heads, tq, past) => {
    const engine = simdEngine();
    const tk = past + tq;
    const cache = new KVCache(engine, 1, tk, d); // in the WebAssembly memory under the SIMD kernels
    const k = new Tensor(random(tk * d, 7), [tk, d]);
    const v = new Tensor(random(tk * d, 8), [tk, d]);
    const { keys, values } = cache.append(0, k, v);
    expect(engine.heap!.holds(keys.data)).toBe(true);
    const q = new Tensor(random(tq * d, 9), [tq, d]);
    const clock = new Clock();
    // In a pass, where the queries live in the engine's memory as a product's output does.
    const [simdScores, simdMixed] = engine.pass(() => clock.run(() => {
      const placed = new Tensor(engine.floats(q.size), q.shape);
      placed.data.set(q.data);
      const s = attentionScores(placed, keys, heads, past);
      return [s, attentionValues(causalSoftmax(s, past), values, past)];
    })).map((t) => ({ data: Float32Array.from(t.data) }));
    // One query splits into its heads: softmax and values join the scores' chunks, head for head (plan.ts).
    const joined = tq === 1 ? "simd joined" : "simd";
    expect(clock.entries.map((e) => `${e.op} ${e.kernel}`)).toEqual(["matmul simd", `softmax ${joined}`, `matmul ${joined}`]);
    // The same ops on plain arrays take the TypeScript loops.
    const plainScores = attentionScores(q, new Tensor(Float32Array.from(k.data), [tk, d]), heads, past);
    const plainMixed = attentionValues(causalSoftmax(plainScores, past), new Tensor(Float32Array.from(v.data), [tk, d]), past);
    expect(maxAbsDiff(simdScores.data, plainScores.data)).toBeLessThan(1e-5);
    expect(maxAbsDiff(simdMixed.data, plainMixed.data)).toBeLessThan(1e-6);
    expect(clock.cycles).toBe(2 * d * (tq * past + (tq * (tq + 1)) / 2) + 5 * heads * (tq * past + (tq * (tq + 1)) / 2));
  });

  it("a head width that is not a multiple of 4 stays on the TypeScript loops", () => {
    const engine = simdEngine();
    const cache = new KVCache(engine, 1, 3, 10);
    const { keys } = cache.append(0, new Tensor(random(30, 1), [3, 10]), new Tensor(random(30, 2), [3, 10]));
    const clock = new Clock();
    engine.run(() => clock.run(() => attentionScores(new Tensor(random(10, 3), [1, 10]), keys, 2, 2)));
    expect(clock.entries[0].kernel).toBe("");
  });
});

describe("SIMD GELU", () => {
  /** GELU in a pass of `engine`, on x placed in its memory (as a product's output is). */
  const geluInPass = (engine: Engine, clock: Clock, x: Float32Array): Float32Array => engine.pass(() => clock.run(() => {
    const placed = new Tensor(engine.floats(x.length), [x.length]);
    placed.data.set(x);
    return gelu(placed);
  })).data.slice();

  it("follows the engine: under a TypeScript kernel (or none) the Math.tanh loop runs, to the same values", () => {
    const xs = new Tensor(Float32Array.from({ length: 1000 }, (_, i) => (i - 500) / 50), [1000]);
    const plain = new Clock();
    const ts = geluInPass(new Engine(nodePlatform, { kernel: "packed", threads: 1 }), plain, xs.data);
    const fast = new Clock();
    const simd = geluInPass(simdEngine(), fast, xs.data);
    const none = new Clock();
    none.run(() => gelu(xs));
    expect(none.entries[0].kernel).toBe("");
    expect([plain.entries[0].kernel, fast.entries[0].kernel]).toEqual(["", "simd"]);
    for (let i = 0; i < xs.size; i++) expect(Math.abs(simd[i] - ts[i])).toBeLessThanOrEqual(2e-6 * Math.abs(ts[i]) + 1e-12);
  });

  it("matches the tanh form within 2e-6 relative over ±100 and at the float32 extremes", () => {
    const n = 10_008;
    const xs = Float32Array.from({ length: n }, (_, i) => (i / (n - 1) - 0.5) * 30);
    xs.set([0, -100, 100, 1e-8, -1e-8, 3e38, -3e38], 0);
    const clock = new Clock();
    const y = { data: geluInPass(simdEngine(), clock, xs) };
    expect(clock.entries[0].kernel).toBe("simd");
    for (let i = 0; i < n; i++) {
      const v = xs[i];
      const exact = 0.5 * v * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
      // u is computed in float32 here (in float64 by the TypeScript op): e^{2u} inherits its rounding.
      const tolerance = 2e-6 * Math.abs(exact) + 1e-12;
      expect(Math.abs(y.data[i] - exact), `gelu(${v})`).toBeLessThanOrEqual(tolerance);
    }
  });
});
