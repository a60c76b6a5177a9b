import type { Engine } from "./engine.ts";
import { kernel, span } from "./plan.ts";
import { type SimdLabel, label } from "./simd-ops.ts";

/*
 * Attention's products on the WebAssembly SIMD kernels, when the KV cache, the small operand
 * (queries, or attention weights) and the result all live in the engine's WebAssembly memory (a
 * forward pass's outputs and a model's caches do) and the head width is a multiple of 4. Inside a
 * pass the threads take heads of query rows (src/wasm/attention-kernels.ts): a decode step's one
 * query splits into its heads, and its scores, softmax and values run as one group of chunks.
 */

function usable(engine: Engine | null, d: number, heads: number, ...views: Float32Array[]): engine is Engine & { heap: NonNullable<Engine["heap"]> } {
  const heap = engine?.heap ?? null;
  return heap !== null && (d / heads) % 4 === 0 && views.every((v) => heap.holds(v));
}

/** scores [H, tq, past+tq] of q [tq, d] against the cached keys; "" when the SIMD path does not apply. */
export function simdScores(engine: Engine | null, q: Float32Array, keys: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): SimdLabel {
  if (!usable(engine, d, heads, q, keys, out)) return "";
  const tk = past + tq;
  return label(engine.launch(kernel(engine.heap.attentionKernelsFor(d, heads), "scores"), [q.byteOffset, keys.byteOffset, out.byteOffset, tq, past],
    { kind: "range", units: heads * tq, scale: 1, work: d * (tq * past + tq * tq / 2), unitWrites: [[out.byteOffset, 4 * tk]] }, [span(q), span(keys)], [span(out)]));
}

/** out [tq, d] = attention weights [H, tq, past+tq] × the cached values; "" when the SIMD path does not apply. */
export function simdValues(engine: Engine | null, p: Float32Array, values: Float32Array, out: Float32Array, d: number, heads: number, tq: number, past: number): SimdLabel {
  if (!usable(engine, d, heads, p, values, out)) return "";
  // Unit u reads row u of the weights; one query's unit h writes its head's columns.
  const tk = past + tq;
  return label(engine.launch(kernel(engine.heap.attentionKernelsFor(d, heads), "values"), [p.byteOffset, values.byteOffset, out.byteOffset, tq, past],
    { kind: "range", units: heads * tq, scale: 1, work: d * (tq * past + tq * tq / 2), unitReads: [[p.byteOffset, 4 * tk]], unitWrites: tq === 1 ? [[out.byteOffset, (4 * d) / heads]] : [] },
    [span(p), span(values)], [span(out)]));
}
