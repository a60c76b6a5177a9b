/*
 * GPT-2's pre-tokenisation: text is cut into pieces that BPE never merges across —
 * contractions, an optional space plus a run of letters, of digits, or of other symbols,
 * and whitespace (a run of spaces keeps its last space for the word that follows).
 *
 * The reference implementations (Python's `regex`, Rust's `regex`) read \s as Unicode
 * White_Space. JavaScript's \s differs — it adds U+FEFF and lacks U+0085 — so the class is
 * spelled out here.
 */
const WS = "\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000";

export const GPT2_PATTERN = new RegExp(
  `'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^${WS}\\p{L}\\p{N}]+|[${WS}]+(?![^${WS}])|[${WS}]+`,
  "gu",
);

export function pretokenize(text: string): string[] {
  return text.match(GPT2_PATTERN) ?? [];
}
