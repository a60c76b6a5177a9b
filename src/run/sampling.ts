import type { Random } from "../util/random.ts";
import { SamplingKernels, TOP_MAX } from "../wasm/sampling-kernels.ts";

export interface SamplingOptions {
  /** false: greedy (argmax), as GPT-2's generation config and the article's pipeline call do. */
  doSample: boolean;
  temperature: number;
  /** Keep the k most likely tokens (0: no limit). */
  topK: number;
  /** Keep the smallest set of tokens whose probability reaches p (1: no limit). */
  topP: number;
}

export const GREEDY: SamplingOptions = { doSample: false, temperature: 1, topK: 0, topP: 1 };

/**
 * Picks next tokens from logits. Sampling follows Hugging Face's order: divide by the
 * temperature, keep the top-k, keep the top-p nucleus, renormalise, draw — as walking the
 * vocabulary sorted by logit (ties: lower id first) would, but without sorting it.
 *
 * One pass puts every token in a bucket by how far its scaled logit lies below the highest,
 * 1/32 nat wide (bucket order is token order), and weighs it — e^(−d) as the bucket's e^(−b/32)
 * times a short series in the remainder, within 1e-14 of Math.exp; with top-k, only the kept
 * tokens are weighed, in a second pass. Each bucket's count and mass are summed as they go.
 * Top-k, the nucleus and the draw then walk the buckets and order only the one bucket they stop
 * in, by a weighted selection (quickselect that tracks probability mass). Every pass over the
 * vocabulary runs in WebAssembly (src/wasm/sampling-kernels.ts), on memory allocated once for
 * the vocabulary's size.
 */
export class TokenPicker {
  private readonly ids: Int32Array;
  private readonly kernels: SamplingKernels;
  /** e^(logit/T − max), by token id. */
  private readonly weights: Float64Array;
  private readonly counts: Int32Array;
  private readonly masses: Float64Array;
  private logits: Float32Array = new Float32Array(0);
  /**
   * The kept tokens: every bucket below `limit` whole, and of bucket `limit` the first
   * `partialCount` in ids[0, partialCount) (with mass `partialMass`).
   */
  private limit = 0;
  private partialCount = 0;
  private partialMass = 0;

  constructor(vocab: number) {
    this.kernels = new SamplingKernels(vocab);
    ({ weights: this.weights, counts: this.counts, masses: this.masses, ids: this.ids } = this.kernels);
  }

  /** The `count` (1 to 64) highest logits, best first (ties: lower id first). */
  top(logits: Float32Array, count: number): { id: number; logit: number }[] {
    if (!(count >= 1 && count <= TOP_MAX)) throw new RangeError(`TokenPicker.top: count ${count} is not in [1, ${TOP_MAX}]`);
    this.load(logits);
    const { kernels } = this;
    const n = kernels.top(logits.length, count);
    return Array.from({ length: n }, (_, j) => ({ id: kernels.topIds[j], logit: kernels.topLogits[j] }));
  }

  pick(logits: Float32Array, o: SamplingOptions, rng: Random): number {
    if (!o.doSample) return this.top(logits, 1)[0].id;
    const v = logits.length;
    this.load(logits);
    const { kernels, weights } = this;
    // logit × (1/T): a multiplication where a division would cost several times more, within
    // an ulp of logit ÷ T.
    const inv = 1 / o.temperature;
    const max = kernels.max(v) * inv;
    // Without top-k every token is kept: one pass buckets and weighs them. With it, the
    // buckets come first, then the weights of only the kept ones.
    const topK = o.topK > 0 && o.topK < v;
    kernels.bucketize(v, inv, max, !topK);
    this.limit = kernels.end;
    this.partialCount = 0;
    this.partialMass = 0;
    if (topK) {
      this.keepFirst(o.topK);
      kernels.weigh(v, inv, max, this.limit);
    }
    // The kept tokens' weights summed per bucket (a partial bucket's apart).
    const limit = this.limit;
    const whole = kernels.sumMasses(limit);
    for (let j = 0; j < this.partialCount; j++) {
      const id = this.ids[j];
      const w = kernels.weight(max - logits[id] * inv, limit);
      weights[id] = w;
      this.partialMass += w;
    }
    const total = whole + this.partialMass;
    const kept = o.topP < 1 ? this.keepNucleus(o.topP * total) : total;
    return this.draw(rng.next() * kept);
  }

  private load(logits: Float32Array): void {
    if (logits.length > this.weights.length) throw new Error(`TokenPicker: ${logits.length} logits for a vocabulary of ${this.weights.length}`);
    this.logits = logits;
    this.kernels.load(logits);
  }

  /** Gathers the ids of bucket b, in id order, into ids[0, count); returns count. */
  private gather(b: number): number {
    return this.kernels.gather(this.logits.length, b);
  }

  /** Keeps the first k tokens: whole buckets while they fit, then a selection in the next. */
  private keepFirst(k: number): void {
    let b = 0;
    let before = 0;
    while (before + this.counts[b] < k) before += this.counts[b++];
    const c = this.gather(b);
    this.selectFirst(0, c, k - before);
    this.limit = b;
    this.partialCount = k - before;
  }

  /**
   * Keeps the smallest prefix whose mass reaches `target` (top-p); returns its mass. Within the
   * bucket where it is reached, the tokens are ordered by selection only as far as needed.
   */
  private keepNucleus(target: number): number {
    let acc = 0;
    for (let b = 0; b < this.limit; b++) {
      if (acc + this.masses[b] >= target) {
        const c = this.gather(b);
        return this.keepWithin(b, c, acc, target);
      }
      acc += this.masses[b];
    }
    if (this.partialCount > 0 && acc + this.partialMass >= target) return this.keepWithin(this.limit, this.partialCount, acc, target);
    return acc + this.partialMass; // rounding: the whole kept set
  }

  /** The nucleus ends inside bucket b, whose candidates are ids[0, c). */
  private keepWithin(b: number, c: number, acc: number, target: number): number {
    const p = this.crossing(0, c, target - acc, false);
    let mass = acc;
    for (let j = 0; j <= p; j++) mass += this.weights[this.ids[j]];
    this.limit = b;
    this.partialCount = p + 1;
    this.partialMass = mass - acc;
    return mass;
  }

  /** The token at which the kept mass, accumulated in token order, first exceeds `target`. */
  private draw(target: number): number {
    let acc = 0;
    let last = -1;
    for (let b = 0; b < this.limit; b++) {
      const m = this.masses[b];
      if (this.counts[b] === 0) continue;
      if (acc + m > target) return this.ids[this.crossing(0, this.gather(b), target - acc, true)];
      acc += m;
      last = b;
    }
    if (this.partialCount > 0) return this.ids[this.crossing(0, this.partialCount, target - acc, true)];
    // Past the end (rounding): the last kept token.
    return this.ids[this.crossing(0, this.gather(last), Infinity, true)];
  }

  /** Whether token a comes before token b: a higher logit, or the same and a lower id. */
  private before(a: number, b: number): boolean {
    const la = this.logits[a];
    const lb = this.logits[b];
    return la > lb || (la === lb && a < b);
  }

  /**
   * Partitions ids[lo, hi) around a pivot (the median of three): the tokens before it, then it,
   * then the rest. Returns the pivot's position; `this.beforeMass` is the weight of the tokens
   * before it (summed as they are moved, so no second pass).
   */
  private beforeMass = 0;

  private partition(lo: number, hi: number): number {
    const { ids, logits, weights } = this;
    const mid = (lo + hi) >>> 1;
    let p = hi - 1;
    const a = ids[lo], b = ids[mid], c = ids[hi - 1];
    if (this.before(a, b) !== this.before(a, c)) p = lo;
    else if (this.before(b, a) !== this.before(b, c)) p = mid;
    const pivot = ids[p];
    const lp = logits[pivot];
    ids[p] = ids[hi - 1];
    ids[hi - 1] = pivot;
    let store = lo;
    let mass = 0;
    for (let i = lo; i < hi - 1; i++) {
      const id = ids[i];
      const l = logits[id];
      if (l > lp || (l === lp && id < pivot)) {
        ids[i] = ids[store];
        ids[store++] = id;
        mass += weights[id];
      }
    }
    ids[hi - 1] = ids[store];
    ids[store] = pivot;
    this.beforeMass = mass;
    return store;
  }

  /** Rearranges ids[lo, hi) so that its first `count` are the `count` tokens that come first. */
  private selectFirst(lo: number, hi: number, count: number): void {
    const end = lo + count;
    while (hi - lo > 1) {
      const p = this.partition(lo, hi);
      if (p === end || p + 1 === end) return;
      if (p > end) hi = p;
      else lo = p + 1;
    }
  }

  /**
   * The position in ids[lo, hi) of the token at which the probability mass, accumulated in
   * token order, first reaches `target` (exceeds it, if `strict`); ids[lo, position] are then
   * exactly the tokens up to it. Past the end (rounding), the last token.
   */
  private crossing(lo: number, hi: number, target: number, strict: boolean): number {
    const { ids, weights } = this;
    while (hi - lo > 1) {
      const p = this.partition(lo, hi);
      const mass = this.beforeMass;
      if (strict ? mass > target : mass >= target) {
        hi = p;
        continue;
      }
      const withPivot = mass + weights[ids[p]];
      if (strict ? withPivot > target : withPivot >= target) return p;
      target -= withPivot;
      lo = p + 1;
    }
    return lo;
  }
}
