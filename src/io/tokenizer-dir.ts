import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Tokenizer, tokenizerFromFiles } from "../tokenizer/tokenizer.ts";

/** OpenAI's GPT-2 files, vendored with their SHA-256 sums (SHA256SUMS beside them). */
export const VENDORED_TOKENIZER_DIR = join(import.meta.dirname, "..", "tokenizer", "gpt2");

/** The file pairs GPT-2's vocabulary ships as: Hugging Face's names, then OpenAI's. */
const LAYOUTS = [["vocab.json", "merges.txt"], ["encoder.json", "vocab.bpe"]] as const;

/** Whether `dir` holds tokenizer files in either layout. */
export function hasTokenizer(dir: string): boolean {
  return LAYOUTS.some(([v, m]) => existsSync(join(dir, v)) && existsSync(join(dir, m)));
}

/** Loads GPT-2's tokenizer from a model directory, or the vendored copy when none is given. */
export async function loadTokenizer(dir: string = VENDORED_TOKENIZER_DIR): Promise<Tokenizer> {
  const layout = LAYOUTS.find(([v, m]) => existsSync(join(dir, v)) && existsSync(join(dir, m)));
  if (layout === undefined) throw new Error(`${dir}: no tokenizer files (expected vocab.json + merges.txt, or encoder.json + vocab.bpe)`);
  const [vocabFile, mergesFile] = layout.map((f) => join(dir, f));
  return tokenizerFromFiles(readFileSync(vocabFile, "utf8"), vocabFile, readFileSync(mergesFile, "utf8"), mergesFile);
}
