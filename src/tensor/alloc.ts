import { activeEngine } from "../kernels/engine.ts";

/** Zeroed room for an op's output: from the running engine's slabs (see Engine.floats), or a plain array outside any engine. */
export function outputFloats(n: number): Float32Array {
  return activeEngine()?.floats(n) ?? new Float32Array(n);
}

/**
 * A transformer block starts: the running engine may reuse the memory of outputs made two blocks
 * ago (see PassArena). Only the block's input may cross from earlier blocks.
 */
export function nextBlock(): void {
  activeEngine()?.nextBlock();
}
