// q8 weights: the quantization worked by hand, every generated q8 kernel against the naive
// kernel on the same quantized values, and GPT-2 against a PyTorch reference that quantizes
// exactly as we do (scripts/make-fixtures.py).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Clock, Engine, Tensor, loadModel, matmul, nodePlatform } from "../src/node.ts";
import { matmulNaive } from "../src/kernels/naive.ts";
import { PackedMatrix } from "../src/kernels/packed-matrix.ts";
import { activationBytes, flipWeight, paddedK, quantizeActivations, roundHalfEven } from "../src/kernels/q8.ts";
import { floatToHalf, halfToFloat } from "../src/io/half.ts";
import { PANEL } from "../src/wasm/kernels.ts";
import type { RelaxedDot } from "../src/wasm/q8-kernels.ts";
import { WasmHeap, relaxedDotForms, relaxedIntegerDot, relaxedIntegerDotWorks } from "../src/wasm/runtime.ts";
import { Random } from "../src/util/random.ts";
import { FIXTURES, type ReferenceCase, maxAbsDiff, readReference } from "./helpers.ts";

function random(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  new Random(seed).fillUniform(out, 1);
  return out;
}

describe("q8 quantization", () => {
  it("rounds half to even, as torch.round does", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, 2.5001].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, 3]);
  });

  it("rounds a float to float16 bits as IEEE 754 does (published values, ties to even)", () => {
    // 1, the largest half, the smallest subnormal and normal, 1/3, −2
    expect([1, 65504, 2 ** -24, 2 ** -14, 0.333251953125, -2].map(floatToHalf)).toEqual([0x3c00, 0x7bff, 0x0001, 0x0400, 0x3555, 0xc000]);
    // ties: 1 + 2^-11 sits halfway between 1 and the next half up (even: 1); 1 + 3·2^-11 rounds up
    expect([1 + 2 ** -11, 1 + 3 * 2 ** -11, 2 ** -25, 3 * 2 ** -25].map(floatToHalf)).toEqual([0x3c00, 0x3c02, 0x0000, 0x0002]);
    // past the largest half: 65519 rounds down to it, 65520 (the tie) up to infinity
    expect([65519, 65520, Infinity].map(floatToHalf)).toEqual([0x7bff, 0x7c00, 0x7c00]);
    // every finite half survives the round trip
    for (let h = 0; h < 0x10000; h++) if ((h & 0x7c00) !== 0x7c00 && h !== 0x8000) expect(floatToHalf(halfToFloat(h))).toBe(h);
    // between every two neighbouring halves of either sign: the midpoint goes to the even one, a
    // float32 step either side of it to the nearer (float32 has 13 more fraction bits, so all are exact)
    const below = (x: number) => x - Math.abs(x) * 2 ** -22, above = (x: number) => x + Math.abs(x) * 2 ** -22;
    let wrong = 0;
    for (let h = 0; h < 0x7bff; h++) {
      for (const s of [0, 0x8000]) {
        const lo = halfToFloat(h | s), hi = halfToFloat((h + 1) | s), mid = (lo + hi) / 2;
        const [near, far] = s === 0 ? [below(mid), above(mid)] : [above(mid), below(mid)];
        if (floatToHalf(mid) !== ((h & 1) === 0 ? h : h + 1) + s || floatToHalf(near) !== (h | s) || floatToHalf(far) !== ((h + 1) | s)) wrong++;
      }
    }
    expect(wrong).toBe(0);
  });

  it("quantizes an activation block by hand: scale = max|x| / 63, and the block's sum", () => {
    // max |x| = 63 → scale 1: 31.5 → 32 and 2.5 → 2 (ties to even), 15.75 → 16
    const a = Float32Array.from([31.5, -63, 15.75, 2.5]);
    const bytes = new Int8Array(32);
    const scales = new Float32Array(1);
    const sums = new Int32Array(1);
    quantizeActivations(a, 1, 4, bytes, scales, sums);
    expect(scales[0]).toBe(1);
    expect([...bytes.subarray(0, 5)]).toEqual([32, -63, 16, 2, 0]);
    expect([...bytes.subarray(4)].every((b) => b === 0)).toBe(true); // padding to 32
    expect(sums[0]).toBe(32 - 63 + 16 + 2);
    expect(activationBytes(1, 4)).toBe(32 + 4 + 4); // the bytes, one scale, one sum
  });

  it("quantizes the same bytes, scales and sums in WebAssembly SIMD as in TypeScript", () => {
    const [m, k] = [3, 96];
    const a = random(m * k, 5).map((v, i) => (i % 7 === 0 ? v * 1e4 : v));
    a.fill(0, 32, 64); // a block of zeros: scale 0, bytes 0
    a.fill(0, 96, 128).set([31.5, -63, 2.5, -2.5], 96); // ties, in a block whose scale is 1
    const bytes = new Int8Array(m * k);
    const scales = new Float32Array((m * k) / 32);
    const sums = new Int32Array(scales.length);
    quantizeActivations(a, m, k, bytes, scales, sums);
    const heap = new WasmHeap();
    const src = heap.allocate(4 * m * k);
    const dst = heap.allocate(activationBytes(m, k));
    heap.write(src, a);
    heap.smallOps().exports.quantize(src, dst, dst + m * k, dst + m * k + scales.byteLength, scales.length);
    expect(heap.i8View(dst, m * k)).toEqual(bytes);
    expect(heap.f32View(dst + m * k, scales.length)).toEqual(scales);
    expect(heap.i32View(dst + m * k + scales.byteLength, sums.length)).toEqual(sums);
    expect([scales[1], sums[1]]).toEqual([0, 0]);
    expect([...bytes.subarray(96, 100)]).toEqual([32, -63, 2, -2]);
    expect(sums[3]).toBe(32 - 63 + 2 - 2);
  });

  it("packs weights in blocks of 32 along K per column: scale = max|w| / 127 as float16, each stored as q + 128", () => {
    // Column 0: rows 0..32 (two blocks, the second holding row 32 alone); column 1: all zeros.
    const k = 33;
    const w = new Float32Array(k * 2);
    for (let row = 0; row < k; row++) w[row * 2] = row === 32 ? -2 : (row - 16) / 16; // block 0: max 1
    const p = PackedMatrix.pack(new Tensor(w, [k, 2]), PANEL, "q8");
    // 34 bytes per 32 weights (Q8_0's size), whatever the rows: nothing else is stored.
    expect(p.bytesPerWeight).toBe(1.0625);
    expect(p.data.length).toBe(2 * 272); // two block records
    expect(p.kernelAddress).toBe(p.data.byteOffset);
    // 1/127 = 2^-7 × 1.007874…: 10 bits of significand keep 1032/1024 (1031.9 rounded), bits 0x2008
    const scale0 = 2 ** -7 * (1032 / 1024);
    expect(p.scaleOf(0, 0)).toBe(scale0); // block 0, column 0
    expect(new Uint16Array(p.data.buffer, p.data.byteOffset + 256, 2)).toEqual(Uint16Array.of(0x2008, 0)); // where the kernels read it
    expect(p.scaleOf(32, 0)).toBe(2 * scale0); // block 1: 2/127, one exponent up
    expect(p.scaleOf(0, 1)).toBe(0); // an all-zero column
    const stored = (row: number, col: number) => new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.length)[p.index(row, col)];
    // −1 ÷ 0.0078735 = −127.007 → −127, stored as 1; −0.5 ÷ 0.0078735 = −63.504 → −64, stored as 64
    expect([p.quantized(0, 0), stored(0, 0), p.quantized(8, 0), stored(8, 0)]).toEqual([-127, 1, -64, 64]);
    expect([p.quantized(0, 1), stored(0, 1), stored(33, 0)]).toEqual([0, 128, 128]); // zeros, and K's padding
    expect(p.index(8, 0)).toBe(2 * 32 + 0); // step 2 of block 0, column 0, k 8 first of its four
    expect(p.index(33, 5)).toBe(272 + 0 * 32 + 16 + 1 * 4 + 1); // block 1, step 0, columns 4–7, column 5, k 33
    expect(p.get(8, 0)).toBe(-64 * scale0);
    expect([-127, -1, 0, 1, 127].map(flipWeight).map((b) => b & 255)).toEqual([1, 127, 128, 129, 255]);
    for (let row = 0; row < k; row++) expect(Math.abs(p.get(row, 0) - w[row * 2])).toBeLessThanOrEqual(p.scaleOf(row, 0) / 2 + 1e-9);
  });

  it.skipIf(!relaxedIntegerDotWorks())("reads the relaxed integer dot product's stored weights as this CPU does (x86 unsigned, Arm signed); Node 20 only in its i16 form", () => {
    const reading = process.arch === "x64" || process.arch === "ia32" ? "unsigned" : "signed";
    const node20 = process.versions.node.startsWith("20.");
    expect(relaxedDotForms()).toEqual([...(node20 ? [] : [{ reading, form: "add" }]), { reading, form: "pairs" }]);
    expect(relaxedIntegerDot()).toEqual({ reading, form: node20 ? "pairs" : "add" });
  });

  it("holds a block whose largest weight rounds past 127 units to ±127, and refuses scales float16 cannot hold", () => {
    // amax = 304.8 × 2^-24: amax / 127 = 2.4 units of 2^-24, a subnormal half that keeps 2 of
    // them; amax is then 152.4 units → 152, held to 127; amax / 2 is 76.2 units → 76
    const amax = 304.8 * 2 ** -24;
    const p = PackedMatrix.pack(new Tensor(Float32Array.of(amax, -amax, amax / 2), [3, 1]), PANEL, "q8");
    expect(p.scaleOf(0, 0)).toBe(2 ** -23);
    expect([0, 1, 2].map((row) => p.quantized(row, 0))).toEqual([127, -127, 76]);
    expect(() => PackedMatrix.pack(new Tensor(Float32Array.of(1e7), [1, 1]), PANEL, "q8")).toThrow(/float16 scales.*--dtype bf16 or f32/);
  });

  it("reads a whole column (an embedding row, block by block) as its elements one by one", () => {
    const [k, n] = [70, 13]; // three blocks, the last partial; two panels, the last partial
    const p = PackedMatrix.pack(new Tensor(Float32Array.from({ length: k * n }, (_, i) => Math.sin(i * 0.37)), [k, n]), PANEL, "q8");
    for (let col = 0; col < n; col++) {
      const column = new Float32Array(k + 2);
      p.column(col, column, 2);
      expect(column.subarray(2)).toEqual(Float32Array.from({ length: k }, (_, row) => p.get(row, col)));
    }
  });
});

describe.each([[1, 1, 1], [1, 5, 9], [3, 5, 7], [3, 40, 300], [7, 33, 17], [4, 64, 8], [127, 769, 65], [1, 768, 3072], [1, 768, 50257], [128, 768, 2304]])("q8 kernels on %i×%i×%i", (m, k, n) => {
  const heap = new WasmHeap();
  const kp = paddedK(k);
  const ldo = Math.ceil(n / PANEL) * PANEL;
  const packed = PackedMatrix.pack(new Tensor(random(k * n, 2), [k, n]), PANEL, "q8", (count) => heap.i8View(heap.allocate(count), count));
  const aAt = heap.allocate(activationBytes(m, k));
  const bytes = heap.i8View(aAt, m * kp);
  const scales = heap.f32View(aAt + m * kp, (m * kp) / 32);
  quantizeActivations(random(m * k, 1), m, k, bytes, scales, heap.i32View(aAt + m * kp + 4 * scales.length, scales.length));
  // The naive kernel on the values the integers stand for.
  const a = Float32Array.from({ length: m * k }, (_, e) => {
    const [i, p] = [Math.floor(e / k), e % k];
    return bytes[i * kp + p] * scales[(i * kp) / 32 + Math.floor(p / 32)];
  });
  const ref = new Float32Array(m * n);
  matmulNaive(a, packed.unpack().data, ref, m, k, n, 0, n);
  const outAt = heap.allocate(4 * m * ldo);
  const cases: (readonly [string, RelaxedDot | null])[] = [["i16 dot", null], ...relaxedDotForms().map((dot) => [dot.form === "add" ? "relaxed dot" : "relaxed dot in pairs", dot] as const)];
  const q8Fn = (dot: RelaxedDot | null) => heap.kernelsFor(k, dot !== null, dot).exports.matmul_q8;

  it.each(cases)("%s matches naive on the same quantized values", (_, dot) => {
    const out = heap.f32View(outAt, m * ldo).fill(NaN);
    q8Fn(dot)(aAt, packed.kernelAddress, outAt, m, ldo, 0, ldo);
    let worst = 0;
    for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(out[i * ldo + j] - ref[i * n + j]));
    expect(worst).toBeLessThanOrEqual(2e-7 * k + 1e-6); // NaN (an output never written) fails too
  });

  // Each block's sum is an exact integer, scaled and added in the same order by every integer dot
  // product; threads take the columns in chunks, and the kernel groups a range's panels in four streams.
  it("every kernel, whole or cut into column ranges, gives the same bits", () => {
    const results = cases.flatMap(([name, dot]) => {
      const f = q8Fn(dot);
      f(aAt, packed.kernelAddress, outAt, m, ldo, 0, ldo);
      const whole = heap.f32View(outAt, m * ldo).slice();
      heap.f32View(outAt, m * ldo).fill(NaN);
      const panels = ldo / PANEL;
      const cuts = [0, ...[1, 5, 14].filter((c) => c < panels), panels];
      for (let c = 0; c + 1 < cuts.length; c++) f(aAt, packed.kernelAddress, outAt, m, ldo, PANEL * cuts[c], PANEL * cuts[c + 1]);
      return [[name, whole], [`${name}, cut`, heap.f32View(outAt, m * ldo).slice()]] as const;
    });
    for (const [name, out] of results) expect(out, name).toEqual(results[0][1]);
  });
});

describe("q8 weights packed in WebAssembly SIMD", () => {
  it("gives TypeScript's bytes, subnormal scales, ties, zero columns and partial blocks and panels included; refuses what it refuses", async () => {
    const engine = new Engine(nodePlatform, { kernel: "simd", threads: 1, dtype: "q8" });
    await engine.ready();
    const [k, n] = [104, 43]; // three whole bands of 32 rows and 8 more; five whole panels and 3 columns
    const w = random(k * n, 9);
    const s = 2 ** -10; // a scale float16 holds exactly: column 1's largest weight is 127·s
    for (let row = 0; row < k; row++) {
      w[row * n] *= 1e-4; // column 0: scales below float16's smallest normal (2^-14)
      w[row * n + 4] *= 1e-6; // column 4: scales below float16's smallest subnormal, so 0
      w[row * n + 1] = row === 0 ? 127 * s : (((row % 9) - 4) + 0.5) * s; // column 1: every weight a tie
      w[row * n + 2] = 0; // column 2: nothing
      w[row * n + 11] *= 300;
    }
    const simd = engine.prepareWeight(new Tensor(w, [k, n])) as PackedMatrix;
    const typescript = PackedMatrix.pack(new Tensor(w, [k, n]), PANEL, "q8");
    const bytes = (p: PackedMatrix) => new Uint8Array(p.data.buffer, p.data.byteOffset, p.data.length);
    expect(bytes(simd)).toEqual(bytes(typescript));
    // rows 1–6 of column 1: −2.5, −1.5, −0.5, 0.5, 1.5, 2.5 scales, to even
    expect([1, 2, 3, 4, 5, 6].map((row) => simd.quantized(row, 1))).toEqual([-2, -2, 0, 0, 2, 2]);
    expect(simd.scaleOf(0, 0)).toBeGreaterThan(0);
    expect(simd.scaleOf(0, 0)).toBeLessThan(2 ** -14);
    expect([simd.scaleOf(0, 4), simd.quantized(0, 4)]).toEqual([0, 0]);
    // A weight float16 scales cannot hold, or a NaN: the same line as TypeScript's.
    for (const bad of [1e7, NaN]) {
      const v = w.slice();
      v[40 * n + 5] = bad;
      const message = (() => { try { PackedMatrix.pack(new Tensor(v, [k, n]), PANEL, "q8"); } catch (err) { return (err as Error).message; } })();
      expect(message).toMatch(/q8 cannot hold a weight block/);
      expect(() => engine.prepareWeight(new Tensor(v, [k, n]))).toThrow(message);
    }
    await engine.dispose();
  });
});

describe("q8 through the engine", () => {
  it.each([1, 2])("on %i thread(s): the quantized product, M·K·N cycles, 1.0625 bytes per weight", async (threads) => {
    const engine = new Engine(nodePlatform, { kernel: "simd", threads, dtype: "q8" });
    await engine.ready();
    for (const [m, k, n] of [[1, 300, 515], [37, 300, 515]]) {
      const a = new Tensor(random(m * k, 3), [m, k]);
      const w = engine.prepareWeight(new Tensor(random(k * n, 4), [k, n])) as PackedMatrix;
      expect(w.dtype).toBe("q8");
      const clock = new Clock();
      const c = engine.run(() => clock.run(() => matmul(a, w)));
      expect(clock.cycles).toBe(m * k * n);
      expect(clock.entries[0].kernel).toMatch(/^simd matmul·dot(8|8p|16)$/);
      expect(clock.entries[0].bytes).toBe(4 * (m * k + m * n) + (34 / 32) * k * n);
      // Against fp32 on the unquantized operands: off by the quantization only (the worst of
      // 19k sums of 300 products whose activations are each off by up to 1/126).
      const ref = new Float32Array(m * n);
      matmulNaive(a.data, w.unpack().data, ref, m, k, n, 0, n);
      const exact = new Float32Array(m * n);
      matmulNaive(a.data, random(k * n, 4), exact, m, k, n, 0, n);
      expect(maxAbsDiff(c.data, exact)).toBeLessThan(0.3);
      expect(maxAbsDiff(c.data, ref)).toBeGreaterThan(1e-4); // the activations were quantized too
    }
    await engine.dispose();
  });

  it("keeps the integer dot product it chose in the kernel wisdom; an engine that adopts it runs the same kernel without tuning", async () => {
    const [m, k, n] = [5, 64, 40];
    const a = new Tensor(random(m * k, 5), [m, k]);
    const labels: string[] = [];
    let wisdom = {};
    for (const adopt of [false, true]) {
      const engine = new Engine(nodePlatform, { kernel: "simd", threads: 1, dtype: "q8" });
      await engine.ready();
      if (adopt) engine.adoptKernelWisdom(wisdom);
      const w = engine.prepareWeight(new Tensor(random(k * n, 6), [k, n])) as PackedMatrix;
      const clock = new Clock();
      engine.run(() => clock.run(() => matmul(a, w)));
      labels.push(clock.entries[0].kernel);
      wisdom = engine.kernelWisdom();
      await engine.dispose();
    }
    const entry = (wisdom as Record<string, { fn: string; relaxed: boolean; dot?: string }>)[`q8/${k}/${n}/m`];
    expect(entry.fn).toBe("matmul_q8");
    // The form is kept exactly where a relaxed kernel won, and it is one this runtime computes right.
    expect(entry.dot === undefined).toBe(!entry.relaxed);
    if (entry.relaxed) expect(relaxedDotForms().map((f) => f.form)).toContain(entry.dot);
    expect(labels[0]).toBe(entry.dot === "pairs" ? "simd matmul·dot8p" : entry.dot === "add" ? "simd matmul·dot8" : "simd matmul·dot16");
    expect(labels[1]).toBe(labels[0]);
  });
});

describe("GPT-2 with q8 weights", () => {
  it("matches a PyTorch reference that quantizes the same way; states the drift from fp32", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 1, dtype: "q8" }));
    const q8 = JSON.parse(readFileSync(join(FIXTURES, "tiny-hot", "reference-q8.json"), "utf8")) as { cases: ReferenceCase[] };
    const fp32 = readReference("tiny-hot");
    let err = 0;
    let drift = 0;
    for (const [i, c] of q8.cases.entries()) {
      const logits = model.forward(c.ids);
      err = Math.max(err, maxAbsDiff(logits, c.logits[0]));
      const f = fp32.cases[i].logits;
      drift = Math.max(drift, maxAbsDiff(logits, f[f.length - 1]));
    }
    console.log(`q8 weights and activations: max |Δlogit| vs the PyTorch q8 reference ${err.toExponential(2)} (tolerance 1e-4); drift from fp32 ${drift.toExponential(2)}`);
    expect(err).toBeLessThan(1e-4);
    expect(drift).toBeGreaterThan(1e-2); // the quantization is real
    await model.dispose();
  });
});
