import { activeEngine } from "../kernels/engine.ts";

/** Zeroed room for an op's output: from the running engine's slabs (see Engine.floats), or a plain array outside any engine. */
export function outputFloats(n: number): Float32Array {
  return activeEngine()?.floats(n) ?? new Float32Array(n);
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
