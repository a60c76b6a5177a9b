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
 * Picks the next token. Sampling follows Hugging Face's order: divide by the temperature,
 * keep the top-k, keep the top-p nucleus, renormalise, draw.
 */
export function pickToken(logits: Float32Array, o: SamplingOptions, rng: Random): number {
  if (!o.doSample) return topLogits(logits, 1)[0].id;
  const order = Array.from(logits.keys()).sort((a, b) => logits[b] - logits[a] || a - b);
  const keep = o.topK > 0 ? Math.min(o.topK, order.length) : order.length;
  const max = logits[order[0]] / o.temperature;
  const weights = new Float64Array(keep);
  let total = 0;
  for (let i = 0; i < keep; i++) {
    weights[i] = Math.exp(logits[order[i]] / o.temperature - max);
    total += weights[i];
  }
  let nucleus = keep;
  if (o.topP < 1) {
    let mass = 0;
    for (let i = 0; i < keep; i++) {
      mass += weights[i] / total;
      if (mass >= o.topP) {
        nucleus = i + 1;
        break;
      }
    }
  }
  let kept = 0;
  for (let i = 0; i < nucleus; i++) kept += weights[i];
  let r = rng.next() * kept;
  for (let i = 0; i < nucleus; i++) {
    r -= weights[i];
    if (r < 0) return order[i];
  }
  return order[nucleus - 1];
}
