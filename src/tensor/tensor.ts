/** Nested number arrays, as accepted by Tensor.from and returned by toArray. */
export type NestedArray = number | NestedArray[];

export type Shape = readonly number[];

/** Bytes of one activation value: activations, biases, norms and the KV cache are float32. */
export const F32_BYTES = 4;

/** A dense row-major Float32Array with a shape. Ops never mutate their inputs. */
export class Tensor {
  readonly data: Float32Array;
  readonly shape: Shape;

  constructor(data: Float32Array, shape: Shape) {
    const size = shapeSize(shape);
    if (data.length !== size) {
      throw new Error(`Tensor: data has ${data.length} elements but shape ${formatShape(shape)} needs ${size}`);
    }
    this.data = data;
    this.shape = Object.freeze([...shape]);
  }

  static zeros(shape: Shape): Tensor {
    return new Tensor(new Float32Array(shapeSize(shape)), shape);
  }

  /** Builds a tensor from (possibly nested) arrays; every row must have the same length. */
  static from(values: NestedArray): Tensor {
    const shape: number[] = [];
    let probe: NestedArray = values;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      if (probe.length === 0) break;
      probe = probe[0];
    }
    const data = new Float32Array(shapeSize(shape));
    let at = 0;
    const fill = (v: NestedArray, depth: number): void => {
      if (depth === shape.length) {
        if (typeof v !== "number") throw new Error(`Tensor.from: ragged array (expected a number at depth ${depth})`);
        data[at++] = v;
        return;
      }
      if (!Array.isArray(v) || v.length !== shape[depth]) {
        throw new Error(`Tensor.from: ragged array (expected ${shape[depth]} items at depth ${depth})`);
      }
      for (const item of v) fill(item, depth + 1);
    };
    fill(values, 0);
    return new Tensor(data, shape);
  }

  get size(): number {
    return this.data.length;
  }

  /** Number of rows when viewed as a matrix [size / lastDim, lastDim]. */
  get rows(): number {
    return this.shape.length === 0 ? 1 : this.data.length / this.cols;
  }

  /** Size of the last axis (1 for a scalar). */
  get cols(): number {
    return this.shape.length === 0 ? 1 : this.shape[this.shape.length - 1];
  }

  /** Rows [start, end) of a matrix, sharing this tensor's memory (no copy, no cycles). */
  sliceRows(start: number, end: number): Tensor {
    if (this.shape.length !== 2 || start < 0 || end > this.shape[0] || start > end) {
      throw shapeError("sliceRows", `rows ${start}..${end} out of range`, this.shape);
    }
    const n = this.shape[1];
    return new Tensor(this.data.subarray(start * n, end * n), [end - start, n]);
  }

  toArray(): NestedArray {
    const build = (depth: number, offset: number): NestedArray => {
      if (depth === this.shape.length) return this.data[offset];
      const stride = shapeSize(this.shape.slice(depth + 1));
      const out: NestedArray[] = [];
      for (let i = 0; i < this.shape[depth]; i++) out.push(build(depth + 1, offset + i * stride));
      return out;
    };
    return build(0, 0);
  }
}

export function shapeSize(shape: Shape): number {
  let n = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0) throw new Error(`invalid shape ${formatShape(shape)}`);
    n *= d;
  }
  return n;
}

export function formatShape(shape: Shape): string {
  return `[${shape.join(",")}]`;
}

/** The error every op throws on bad shapes: names the op and the shapes it was given. */
export function shapeError(op: string, why: string, ...shapes: Shape[]): Error {
  return new Error(`${op}: ${why}: ${shapes.map(formatShape).join(" and ")}`);
}
