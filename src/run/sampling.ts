import type { Random } from "../util/random.ts";

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

/** The `count` largest logits, best first (ties: lower id first). */
export function topLogits(logits: Float32Array, count: number): { id: number; logit: number }[] {
  const best: { id: number; logit: number }[] = [];
  for (let id = 0; id < logits.length; id++) {
    const logit = logits[id];
    if (best.length === count && logit <= best[count - 1].logit) continue;
    let at = best.length < count ? best.length : count - 1;
    while (at > 0 && best[at - 1].logit < logit) at--;
    best.splice(at, 0, { id, logit });
    if (best.length > count) best.pop();
  }
  return best;
}

/**
 * Picks next tokens from logits. Sampling follows Hugging Face's order: divide by the
 * temperature, keep the top-k, keep the top-p nucleus, renormalise, draw — as walking the
 * vocabulary sorted by logit (ties: lower id first) would, but without sorting it: top-k, the
 * nucleus and the draw are each a weighted selection (quickselect that tracks probability mass),
 * a few passes over the vocabulary. Its scratch is allocated once, for the vocabulary's size.
 */
export class TokenPicker {
  private readonly ids: Int32Array;
  /** exp(logit/T − max), by token id. */
  private readonly weights: Float64Array;
  private logits: Float32Array = new Float32Array(0);

  constructor(vocab: number) {
    this.ids = new Int32Array(vocab);
    this.weights = new Float64Array(vocab);
  }

  pick(logits: Float32Array, o: SamplingOptions, rng: Random): number {
    const v = logits.length;
    if (!o.doSample) return argmax(logits);
    if (v > this.ids.length) throw new Error(`TokenPicker: ${v} logits for a vocabulary of ${this.ids.length}`);
    this.logits = logits;
    const { ids, weights } = this;
    let n = v;
    for (let i = 0; i < v; i++) ids[i] = i;
    if (o.topK > 0 && o.topK < v) {
      this.selectFirst(0, v, o.topK);
      n = o.topK;
    }
    const max = logits[argmax(logits)] / o.temperature;
    let total = 0;
    for (let i = 0; i < n; i++) {
      const id = ids[i];
      const w = Math.exp(logits[id] / o.temperature - max);
      weights[id] = w;
      total += w;
    }
    let kept = total;
    if (o.topP < 1) {
      n = this.crossing(0, n, o.topP * total, false) + 1;
      kept = 0;
      for (let i = 0; i < n; i++) kept += weights[ids[i]];
    }
    return ids[this.crossing(0, n, rng.next() * kept, true)];
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

/** The most likely token (ties: lower id). */
function argmax(logits: Float32Array): number {
  let best = 0;
  for (let i = 1; i < logits.length; i++) if (logits[i] > logits[best]) best = i;
  return best;
}
