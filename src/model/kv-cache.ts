import { opEnd, opStart } from "../clock/clock.ts";
import { type Engine, activeEngine } from "../kernels/engine.ts";
import { type SimdLabel, simdCopyRows } from "../kernels/simd-ops.ts";
import { compute } from "../tensor/alloc.ts";
import { F32_BYTES, Tensor, shapeError } from "../tensor/tensor.ts";

/** Keys and values of every position seen so far, one [nPositions, d] buffer pair per layer. */
export class KVCache {
  /** Positions already cached (the same for every layer between forward passes). */
  length = 0;
  private readonly keys: Float32Array[] = [];
  private readonly values: Float32Array[] = [];

  /** `engine`: where the attention kernels will read it (null: plain arrays, for the TypeScript ops). */
  constructor(engine: Engine | null, nLayer: number, readonly capacity: number, readonly width: number) {
    for (let i = 0; i < nLayer; i++) {
      this.keys.push(engine?.allocCache(this, capacity * width) ?? new Float32Array(capacity * width));
      this.values.push(engine?.allocCache(this, capacity * width) ?? new Float32Array(capacity * width));
    }
  }

  /**
   * Takes another cache's positions (a prompt prefilled once, for each sequence that continues
   * it). Cost: 0 cycles (a copy); bytes: the keys and values read and written.
   */
  copyFrom(source: KVCache): void {
    if (source.width !== this.width || source.keys.length !== this.keys.length || source.length > this.capacity) {
      throw new Error(`kvCopy: a cache of ${source.length} positions × ${source.width} does not fit one of ${this.capacity} × ${this.width}`);
    }
    const t0 = opStart();
    const n = source.length * this.width;
    for (let layer = 0; layer < this.keys.length; layer++) {
      this.keys[layer].set(source.keys[layer].subarray(0, n));
      this.values[layer].set(source.values[layer].subarray(0, n));
    }
    this.length = source.length;
    opEnd("kvCopy", "", [[source.keys.length, 2, source.length, this.width]], [this.keys.length, 2, source.length, this.width], 0, 2 * 2 * F32_BYTES * n * this.keys.length, t0);
  }

  /**
   * Writes the new positions' keys and values for one layer after the cached ones and
   * returns views of all of them, [length + T, d] each. Cost: 0 cycles (a copy); bytes: the new
   * keys and values read and written into the cache.
   */
  append(layer: number, k: Tensor, v: Tensor): { keys: Tensor; values: Tensor } {
    const t = k.shape[0];
    const total = this.length + t;
    if (k.shape[1] !== this.width || v.shape[0] !== t || v.shape[1] !== this.width) throw shapeError("kvAppend", `cache width is ${this.width}`, k.shape, v.shape);
    if (total > this.capacity) throw new Error(`kvAppend: ${total} positions exceed the cache's ${this.capacity}`);
    const t0 = opStart();
    const at = this.length * this.width;
    const engine = activeEngine();
    let kernel: SimdLabel = "";
    for (const [from, into] of [[k.data, this.keys[layer]], [v.data, this.values[layer]]]) {
      kernel = simdCopyRows(engine, from, 0, from.length, into, at, from.length, 1, from.length);
      if (!kernel) compute(() => into.set(from, at));
    }
    const keys = new Tensor(this.keys[layer].subarray(0, total * this.width), [total, this.width]);
    const values = new Tensor(this.values[layer].subarray(0, total * this.width), [total, this.width]);
    opEnd("kvAppend", "", [k.shape, v.shape], [2, total, this.width], 0, 2 * F32_BYTES * (k.size + v.size), t0, kernel);
    return { keys, values };
  }
}
