import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const FIXTURES = join(import.meta.dirname, "fixtures");

export interface ReferenceCase {
  ids: number[];
  greedy: number[];
  greedyMargin: number;
  /** Logits per position (all positions, or only the last for the F16/BF16 fixtures). */
  logits: number[][];
}

export function readReference(fixture: string): { dtype: string; cases: ReferenceCase[] } {
  return JSON.parse(readFileSync(join(FIXTURES, fixture, "reference.json"), "utf8"));
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} ≠ ${b.length}`);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function argmax(xs: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < xs.length; i++) if (xs[i] > xs[best]) best = i;
  return best;
}

/** Sets every element of F32 tensor `tensor` in the safetensors file at `path` to `value`, in place. */
export function setTensor(path: string, tensor: string, value: number): void {
  const bytes = readFileSync(path);
  const headerLength = Number(bytes.readBigUInt64LE(0));
  const [begin, end] = JSON.parse(bytes.subarray(8, 8 + headerLength).toString("utf8"))[tensor].data_offsets;
  for (let at = 8 + headerLength + begin; at < 8 + headerLength + end; at += 4) bytes.writeFloatLE(value, at);
  writeFileSync(path, bytes);
}
