import type { Engine } from "./engine.ts";
import { kernel, span } from "./plan.ts";

/*
 * Add, scale, layer norm, causal softmax and GELU on the WebAssembly SIMD kernels
 * (src/wasm/small-op-kernels.ts), where they pay: the engine has the kernels, every operand lives
 * in its memory (a forward pass's outputs and the model's weights do), and rows are whole f32x4
 * vectors. Each returns false where the TypeScript op runs instead — a copy into the kernels'
 * memory and back would cost what the op saves. Inside a pass the call is recorded, split by
 * rows (or by runs of four floats) for the threads.
 */

/** The kernel an op reports: "" (its TypeScript loops ran), "simd", or "simd joined" (its chunks ran with the product before it, see plan.ts). */
export type SimdLabel = "" | "simd" | "simd joined";

/** The label of a call that joined the product before it: the report's `joined`, the prediction's 0 (roofline.ts isJoinedCall). */
export const JOINED: SimdLabel = "simd joined";

export const label = (joined: boolean): SimdLabel => (joined ? JOINED : "simd");

function inPlace(engine: Engine | null, ...views: Float32Array[]): engine is Engine & { heap: NonNullable<Engine["heap"]> } {
  const heap = engine?.heap ?? null;
  return heap !== null && views.every((v) => heap.holds(v));
}

/**
 * Floats per unit of element-wise work: 32 where they divide, as a one-row product's output units
 * do — so an op on a product's output can join the product (see plan.ts) — else 8 (a panel), else
 * 4 (one vector).
 */
const lanesPerUnit = (n: number) => (n % 32 === 0 ? 32 : n % 8 === 0 ? 8 : 4);

/** out = a + b, b of a's size or one row of `cols` added to every row. One row (decode's) is cut by columns. */
export function simdAdd(engine: Engine | null, a: Float32Array, b: Float32Array, out: Float32Array, cols: number, rowBroadcast: boolean): SimdLabel {
  if (cols % 4 !== 0 || !inPlace(engine, a, b, out)) return "";
  const rows = a.length / cols;
  const bStep = rowBroadcast ? 0 : 4 * cols;
  const add = kernel(engine.heap.smallOps(), "add");
  const lanes = lanesPerUnit(cols);
  const split = rows === 1
    ? { kind: "rows" as const, units: cols / lanes, count: 4, scale: lanes, steps: [4 * lanes, 4 * lanes, 4 * lanes], work: cols }
    : { kind: "rows" as const, units: rows, count: 3, scale: 1, steps: [4 * cols, bStep, 4 * cols], work: a.length };
  return label(engine.launch(add, [a.byteOffset, b.byteOffset, out.byteOffset, rows, cols, bStep], split, [span(a), span(b)], [span(out)]));
}

/** out = f(x), element by element, for a kernel (address in, address out, count). */
function elementwise(engine: Engine | null, name: "scale" | "gelu", x: Float32Array, out: Float32Array, extra: number[], cyclesPerElement: number): SimdLabel {
  if (x.length % 4 !== 0 || !inPlace(engine, x, out)) return "";
  const lanes = lanesPerUnit(x.length);
  return label(engine.launch(kernel(engine.heap.smallOps(), name), [x.byteOffset, out.byteOffset, x.length, ...extra],
    { kind: "rows", units: x.length / lanes, count: 2, scale: lanes, steps: [4 * lanes, 4 * lanes], work: cyclesPerElement * x.length }, [span(x)], [span(out)]));
}

export function simdScale(engine: Engine | null, x: Float32Array, s: number, out: Float32Array): SimdLabel {
  return elementwise(engine, "scale", x, out, [s], 1);
}

/** GELU (tanh form) in place in the engine's memory. */
export function simdGelu(engine: Engine | null, x: Float32Array, out: Float32Array, cyclesPerElement: number): SimdLabel {
  return elementwise(engine, "gelu", x, out, [], cyclesPerElement);
}

export function simdLayerNorm(engine: Engine | null, x: Float32Array, gamma: Float32Array, beta: Float32Array, out: Float32Array, cols: number, eps: number): boolean {
  if (cols % 4 !== 0 || !inPlace(engine, x, gamma, beta, out)) return false;
  const rows = x.length / cols;
  engine.launch(kernel(engine.heap.smallOps(), "layerNorm"), [x.byteOffset, gamma.byteOffset, beta.byteOffset, out.byteOffset, rows, cols, eps],
    { kind: "rows", units: rows, count: 4, scale: 1, steps: [4 * cols, 0, 0, 4 * cols], work: 7 * x.length }, [span(x), span(gamma), span(beta)], [span(out)]);
  return true;
}

/** Causal softmax of scores [heads, tq, tk]; out's masked entries are left as they are. */
export function simdCausalSoftmax(engine: Engine | null, scores: Float32Array, out: Float32Array, heads: number, tq: number, tk: number, past: number): SimdLabel {
  if (!inPlace(engine, scores, out)) return "";
  const head = 4 * tq * tk;
  return label(engine.launch(kernel(engine.heap.smallOps(), "softmax"), [scores.byteOffset, out.byteOffset, heads, tq, tk, past],
    { kind: "rows", units: heads, count: 2, scale: 1, steps: [head, head], work: 5 * scores.length }, [span(scores)], [span(out)]));
}

/**
 * `rows` rows of `width` floats from src (rows `srcStride` floats apart, from float `srcAt`) to
 * dst (likewise): q, k and v out of one product, keys and values into the cache. One row is
 * copied as the rows of its units of element-wise work would be, so a decode step's keys and
 * values join the product that made them.
 */
export function simdCopyRows(engine: Engine | null, src: Float32Array, srcAt: number, srcStride: number, dst: Float32Array, dstAt: number, dstStride: number, rows: number, width: number): SimdLabel {
  if (!inPlace(engine, src, dst)) return "";
  const from = src.byteOffset + 4 * srcAt;
  const to = dst.byteOffset + 4 * dstAt;
  const reads = [[from, from + 4 * ((rows - 1) * srcStride + width)]] as const;
  const writes = [[to, to + 4 * ((rows - 1) * dstStride + width)]] as const;
  const copy = kernel(engine.heap.smallOps(), "copy");
  if (rows === 1 && width % 4 === 0) {
    const lanes = lanesPerUnit(width);
    [srcStride, dstStride, rows, width] = [lanes, lanes, width / lanes, lanes];
  }
  return label(engine.launch(copy, [from, 4 * srcStride, to, 4 * dstStride, rows, 4 * width],
    { kind: "rows", units: rows, count: 4, scale: 1, steps: [4 * srcStride, 0, 4 * dstStride, 0], work: rows * width }, reads, writes));
}
