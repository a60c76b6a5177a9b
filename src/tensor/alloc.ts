import { activeEngine } from "../kernels/engine.ts";

/** Zeroed room for an op's output: from the running engine's slabs (see Engine.floats), or a plain array outside any engine. */
export function outputFloats(n: number): Float32Array {
  return activeEngine()?.floats(n) ?? new Float32Array(n);
}

/** Positions an output that grows with the context is carved for at a time (see contextFloats). */
const CONTEXT_BUCKET = 64;

/** The context rounded up to whole buckets: decode steps in one bucket carve the same room. */
export const contextRoom = (context: number): number => Math.ceil(context / CONTEXT_BUCKET) * CONTEXT_BUCKET;

/**
 * Room for an output of `rows` rows that are `context` long (attention's [H, T, past+T]), carved
 * for the context rounded up to a bucket: so every output after it in a decode step stands where
 * it stood in the step before, and the engine can run the step again from its recording (see
 * kernels/replay.ts) for the rest of the bucket.
 */
export function contextFloats(rows: number, context: number): Float32Array {
  return outputFloats(rows * contextRoom(context)).subarray(0, rows * context);
}

/**
 * An op's TypeScript work: now, or inside a recorded pass, in its place among the kernels (once
 * the ops before it have run; see kernels/plan.ts). Ops that read or write data do it in here.
 */
export function compute(fn: () => void): void {
  const engine = activeEngine();
  if (engine === null) fn();
  else engine.compute(fn);
}

/**
 * A transformer block starts: the running engine may reuse the memory of outputs made two blocks
 * ago (see PassArena). Only the block's input may cross from earlier blocks.
 */
export function nextBlock(): void {
  activeEngine()?.nextBlock();
}
