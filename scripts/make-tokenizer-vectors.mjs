// Writes test/fixtures/tokenizer-vectors.json: GPT-2 token ids for a few hundred strings,
// produced by an independent implementation — OpenAI's tiktoken (its Rust core, as the npm
// package's WebAssembly build), encoding "gpt2". Not a project dependency: install it anywhere
// and point TIKTOKEN_DIR there:
//
//   mkdir -p /tmp/tiktoken && (cd /tmp/tiktoken && npm init -y && npm install tiktoken@1.0.22)
//   TIKTOKEN_DIR=/tmp/tiktoken node scripts/make-tokenizer-vectors.mjs
import { writeFileSync, renameSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const dir = process.env.TIKTOKEN_DIR;
if (!dir) {
  console.error("set TIKTOKEN_DIR to a directory where `npm install tiktoken` was run (see the top of this file)");
  process.exit(1);
}
const { get_encoding } = createRequire(join(dir, "package.json"))("tiktoken");
const enc = get_encoding("gpt2");

const fixed = [
  "Hello, world!", "", " ", "  ", "\n", "\n\n\n", "\t", " \t\n ", "a", " a", "  a", "   leading spaces",
  "trailing spaces   ", "trailing newline\n", "two\n\nparagraphs\n\n\nthree", "CRLF\r\nline\r\n", "tabs\tbetween\twords",
  "I'm sure you're right, they've said we'll go, he'd've", "DON'T SHOUT, I'M HERE", "it's 'quoted' and ''double''",
  "O'Neil's dog's bone", "rock 'n' roll", "y'all'd've", "'s", "'", "''", "isn't", "isn' t",
  "The quick brown fox jumps over the lazy dog.", "GPT-2 is a decoder-only transformer.",
  "我是AI，我可以帮您解决问题。请告诉我您的疑问：", "今天天气很好，我们去公园散步吧。", "日本語のテキストとカタカナ、ひらがな。",
  "한국어 문장입니다. 안녕하세요!", "Привет, мир! Как дела?", "Γειά σου Κόσμε", "مرحبا بالعالم", "שלום עולם",
  "नमस्ते दुनिया", "สวัสดีชาวโลก", "Xin chào thế giới", "Ελληνικά και English μαζί", "Ünïcödé àçcéñts — naïve café résumé",
  "😀", "😀😃😄", "👩‍👩‍👧‍👦 family", "🇫🇷🇯🇵 flags", "👍🏽 skin tone", "emoji😀inside", "♥♦♣♠", "∑∫∂√∞≈≠",
  "e\u0301 combining acute", "a\u0308\u0304 stacked marks", "\u0915\u094d\u0937 conjunct", "Z\u0351\u0359\u0356alg\u0316o",
  "\u0000null\u0001controls\u001f", "\u007fdel", "bell\u0007", "\u001b[31mred\u001b[0m",
  "nbsp\u00a0here", "nel\u0085here", "bom\ufeffhere", "\ufeffleading bom", "ideographic\u3000space", "line\u2028separator",
  "para\u2029separator", "en\u2002space", "narrow\u202fnbsp", "ogham\u1680space", "zero\u200bwidth", "word  \u00a0 mixed",
  "12345", "1234567890123", "3.14159", "-42", "1e10", "1,000,000", "$9.99", "100%", "0x1F", "v1.2.3",
  "٠١٢٣٤٥٦٧٨٩ Arabic-Indic digits", "½ ¾ ² ³ Ⅻ", "12abc34", "abc123def", "2023-10-10 12:00:00",
  "def f(x):\n    return x ** 2\n", "for (let i = 0; i < n; i++) { sum += a[i]; }", "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
  "<div class=\"x\">&amp;</div>", "SELECT * FROM users WHERE id = 1;", "#include <stdio.h>\nint main() { return 0; }",
  "    indented\n        more\n\ttab", "a\n  b\n    c", "https://example.com/path?query=1&b=2#frag", "user@example.com",
  "--flag=value -x", "C:\\Windows\\System32", "~/.bashrc && ls -la | grep foo", "!!!???...", "...", "—–-", "«quoted»",
  "<|endoftext|>", "before<|endoftext|>after", "<|endoftext|><|endoftext|>", "a <|endoftext|> b", "<|endoftext|>\n",
  "<|endoftext", "|endoftext|>", "<|startoftext|>",
];

// Seeded random strings over a pool that mixes scripts, whitespace, digits, marks and symbols.
const pool = [..."abcXYZ  ' \n\t0123456789.,!?-_'\"()[]{}<>/\\@#$%^&*+=:;~`|", "éüñ", "中文字", "ひらカ", "한글", "Жж", "ΩΣ",
  "\u00a0", "\u0085", "\u3000", "\u2028", "\ufeff", "\u0301", "😀", "👍🏽", "٣", "½", "'s", "'ll", "<|endoftext|>", "\r\n", "   "];
let state = 12345;
const rand = (n) => {
  state = (Math.imul(state, 1103515245) + 12345) >>> 0;
  return (state >>> 8) % n;
};
const random = [];
for (let i = 0; i < 250; i++) {
  let s = "";
  const len = 1 + rand(24);
  for (let j = 0; j < len; j++) s += pool[rand(pool.length)];
  random.push(s);
}

const vectors = [...fixed, ...random].map((text) => ({ text, ids: Array.from(enc.encode(text, "all")) }));
const out = join(import.meta.dirname, "..", "test", "fixtures", "tokenizer-vectors.json");
writeFileSync(out + ".tmp", JSON.stringify({ source: "tiktoken 1.0.22 (npm), encoding gpt2, encode(text, allowed_special = 'all')", vectors }, null, 0) + "\n");
renameSync(out + ".tmp", out);
console.log(`wrote ${vectors.length} vectors to ${out}`);
