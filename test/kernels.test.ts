// Every matmul kernel against the naive reference, on the benchmark shapes and awkward ones.
import { describe, expect, it } from "vitest";
import { Clock, Engine, KERNELS, PackedMatrix, Tensor, matmul, nodePlatform } from "../src/node.ts";
import { matmulNaive } from "../src/kernels/naive.ts";
import { Random } from "../src/util/random.ts";

const BENCH_SHAPES = [[2, 2, 2], [1, 768, 2304], [1, 768, 3072], [1, 3072, 768], [1, 768, 50257], [128, 768, 2304], [128, 768, 3072], [128, 3072, 768], [1024, 1024, 1024]];
const AWKWARD = [[1, 1, 1], [3, 5, 7], [127, 769, 65], [5, 3, 2], [4, 4, 3], [9, 17, 1]];

function random(n: number, seed: number, shared = false): Float32Array {
  const rng = new Random(seed);
  const out = shared ? new Float32Array(new SharedArrayBuffer(4 * n)) : new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.next() - 0.5;
  return out;
}

function transposed(b: Float32Array, k: number, n: number): Float32Array {
  const t = new Float32Array(k * n);
  for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) t[j * k + p] = b[p * n + j];
  return t;
}

/** B in the layout a kernel reads. */
function layoutFor(layout: string, b: Float32Array, k: number, n: number): Float32Array {
  if (layout === "panels") return PackedMatrix.pack(new Tensor(b, [k, n]), 4).data as Float32Array;
  if (layout === "transposed") return transposed(b, k, n);
  return b;
}

/** fp32 tolerance: sums of k products of values in ±0.5, in another order than the reference. */
const tolerance = (k: number) => 2e-7 * k + 1e-6;

describe.each([...AWKWARD, ...BENCH_SHAPES].map((s) => [s.join("×"), s] as const))("%s", (_, [m, k, n]) => {
  const a = random(m * k, 1);
  const b = random(k * n, 2);
  const ref = new Float32Array(m * n);
  matmulNaive(a, b, ref, m, k, n, 0, n);

  it.each(KERNELS.filter((x) => x.name !== "naive" && x.fn !== null).map((x) => [x.name, x] as const))("%s matches naive", (_, kernel) => {
    const out = new Float32Array(m * n).fill(NaN);
    kernel.fn!(a, layoutFor(kernel.layout, b, k, n), out, m, k, n, 0, n);
    let worst = 0;
    for (let i = 0; i < out.length; i++) worst = Math.max(worst, Math.abs(out[i] - ref[i]));
    expect(worst).toBeLessThanOrEqual(tolerance(k)); // NaN (an output never written) fails too
  });
});

describe("kernels through the matmul op", () => {
  it("every kernel reports the same M·K·N cycles and the same result, on one and two threads", async () => {
    const [m, k, n] = [37, 300, 515];
    const a = new Tensor(random(m * k, 3), [m, k]);
    const raw = random(k * n, 4, true);
    const rowMajor = new Tensor(raw, [k, n]);
    const ref = new Float32Array(m * n);
    matmulNaive(a.data, raw, ref, m, k, n, 0, n);
    for (const threads of [1, 2]) {
      for (const kernel of KERNELS.filter((x) => x.layout !== "transposed")) {
        const engine = new Engine(nodePlatform, { kernel: kernel.name, threads });
        await engine.ready();
        const b = kernel.layout === "row-major" ? rowMajor : engine.prepareWeight(rowMajor);
        const clock = new Clock();
        const c = engine.run(() => clock.run(() => matmul(a, b)));
        await engine.dispose();
        expect(clock.cycles, `${kernel.name} × ${threads}`).toBe(m * k * n);
        let worst = 0;
        for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(c.data[i] - ref[i]));
        expect(worst, `${kernel.name} × ${threads}`).toBeLessThanOrEqual(tolerance(k));
      }
    }
  });

  it("two threads give bit-identical results to one (the split is by output columns)", async () => {
    const [m, k, n] = [3, 768, 50257];
    const a = new Tensor(random(m * k, 5), [m, k]);
    const wte = PackedMatrix.transposedView(new Tensor(random(n * k, 6, true), [n, k]));
    const engine = new Engine(nodePlatform, { kernel: "dot", threads: 1 });
    const one = engine.run(() => matmul(a, wte)).data;
    engine.setThreads(2);
    await engine.ready();
    const two = engine.run(() => matmul(a, wte)).data;
    await engine.dispose();
    const bytes = (x: Float32Array) => Buffer.from(x.buffer, x.byteOffset, x.byteLength);
    expect(bytes(two).equals(bytes(one))).toBe(true);
  });

  it("PackedMatrix round-trips and pads the last panel", () => {
    const b = Tensor.from([[1, 2, 3, 4, 5], [6, 7, 8, 9, 10]]);
    const p = PackedMatrix.pack(b, 4);
    expect(Array.from(p.data)).toEqual([1, 2, 3, 4, 6, 7, 8, 9, 5, 0, 0, 0, 10, 0, 0, 0]);
    expect(p.unpack().toArray()).toEqual(b.toArray());
    expect(PackedMatrix.transposedView(Tensor.from([[1, 2], [3, 4], [5, 6]])).unpack().toArray()).toEqual([[1, 3, 5], [2, 4, 6]]);
  });

  it("rejects unknown kernels and thread counts with the choices", () => {
    expect(() => new Engine(nodePlatform, { kernel: "fast" })).toThrow('unknown kernel "fast"; choose auto or one of: naive, ikj, packed, tiled, matvec, dot, simd');
    expect(() => new Engine(nodePlatform, { kernel: "packed", dtype: "bf16" })).toThrow("bf16 weights need the WebAssembly SIMD kernels (kernel auto or simd), not packed");
    expect(() => new Engine(nodePlatform, { threads: 0 })).toThrow("threads must be 1..64, got 0");
    expect(() => new Engine(nodePlatform).setThreads(65)).toThrow("threads must be 1..64, got 65");
  });
});
