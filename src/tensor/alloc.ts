import { activeEngine } from "../kernels/engine.ts";

/** Zeroed room for an op's output: from the running engine's slabs (see Engine.floats), or a plain array outside any engine. */
export function outputFloats(n: number): Float32Array {
  return activeEngine()?.floats(n) ?? new Float32Array(n);
}
