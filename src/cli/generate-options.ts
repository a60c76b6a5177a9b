import type { SamplingOptions } from "../run/sampling.ts";
import { type ParsedFlags, UsageError } from "./args.ts";

/*
 * generate.ts's flags turned into checked settings. Each mistake is a UsageError naming the flag
 * and what would fix it; advice that is not an error goes to `notices`.
 */

export const DEFAULT_NEW_TOKENS = 50;

/** "464,3290" → [464, 3290], each id inside the vocabulary. */
export function parseIds(list: string, vocab: number): number[] {
  const parts = list.split(",").map((s) => s.trim());
  if (parts.some((p) => !/^\d+$/.test(p))) throw new UsageError(`--input-ids expects comma-separated token ids like 464,3290, got "${list}"`);
  const ids = parts.map(Number);
  const bad = ids.findIndex((id) => id >= vocab);
  // The id as written (shortened): a 400-digit one would print as "Infinity".
  const shown = (p: string) => (p.length > 24 ? `${p.slice(0, 12)}…(${p.length} digits)` : p);
  if (bad >= 0) throw new UsageError(`--input-ids: ${shown(parts[bad])} is outside the vocabulary (0..${vocab - 1})`);
  return ids;
}

/** Greedy (the default) or sampling with temperature, top-k and top-p, Hugging Face's way. */
export function samplingFrom(f: ParsedFlags, notices: string[]): SamplingOptions {
  if (f.greedy === true && f["do-sample"] === true) throw new UsageError("--greedy and --do-sample exclude each other");
  const doSample = f["do-sample"] === true;
  const temperature = (f.temperature as number | undefined) ?? 1;
  const topK = (f["top-k"] as number | undefined) ?? 0;
  const topP = (f["top-p"] as number | undefined) ?? 1;
  if (doSample && temperature <= 0) throw new UsageError(`--temperature must be > 0 when sampling, got ${temperature} (use --greedy for the most likely token)`);
  if (topK < 0) throw new UsageError(`--top-k must be ≥ 0 (0 means no limit), got ${topK}`);
  if (!(topP > 0 && topP <= 1)) throw new UsageError(`--top-p must be in (0, 1], got ${topP}`);
  if (!doSample && ["temperature", "top-k", "top-p", "seed"].some((k) => k in f)) {
    notices.push("--temperature, --top-k, --top-p and --seed only apply with --do-sample; decoding greedily.");
  }
  return { doSample, temperature, topK, topP };
}

/** How many tokens to generate, from --max-new-tokens or --max-length (Hugging Face semantics). */
export function newTokenCount(f: ParsedFlags, promptLength: number, context: number, notices: string[]): number {
  if ("max-length" in f && "max-new-tokens" in f) throw new UsageError("give --max-length or --max-new-tokens, not both");
  let n: number;
  if (typeof f["max-length"] === "number") {
    const total = f["max-length"];
    if (total <= promptLength) {
      throw new UsageError(`--max-length ${total} leaves no room for new tokens: the prompt alone is ${promptLength} tokens (raise it, or use --max-new-tokens)`);
    }
    n = total - promptLength;
  } else {
    n = (f["max-new-tokens"] as number | undefined) ?? DEFAULT_NEW_TOKENS;
    if (n < 1) throw new UsageError(`--max-new-tokens must be at least 1, got ${n}`);
    if (!("max-new-tokens" in f)) {
      // The article's pipeline call counts the prompt in max_length; its 49-token prompt leaves 1.
      notices.push(`The prompt is ${promptLength} token${promptLength === 1 ? "" : "s"}, so the article's max_length=50 leaves ${Math.max(0, 50 - promptLength)} new: --max-length 50 reproduces it.`);
    }
  }
  if (promptLength > context) throw new UsageError(`the prompt is ${promptLength} tokens, longer than the model's context of ${context} positions`);
  if (promptLength + n > context) {
    throw new UsageError(`the prompt (${promptLength} tokens) plus ${n} new tokens exceed the model's context of ${context} positions: ask for at most ${context - promptLength}`);
  }
  return n;
}
