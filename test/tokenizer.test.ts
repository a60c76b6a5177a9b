import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { VENDORED_TOKENIZER_DIR, loadTokenizer } from "../src/node.ts";
import { FIXTURES } from "./helpers.ts";

const tok = await loadTokenizer();
const { source, vectors } = JSON.parse(readFileSync(join(FIXTURES, "tokenizer-vectors.json"), "utf8")) as {
  source: string;
  vectors: { text: string; ids: number[] }[];
};

describe("GPT-2 byte-level BPE", () => {
  it("encodes the published example", () => {
    expect(tok.encode("Hello, world!")).toEqual([15496, 11, 995, 0]);
    expect(tok.decode([15496, 11, 995, 0])).toBe("Hello, world!");
  });

  it(`matches ${vectors.length} vectors from an independent implementation (${source})`, () => {
    expect(vectors.length).toBeGreaterThan(300);
    const wrong = vectors.filter((v) => tok.encode(v.text).join() !== v.ids.join());
    expect(wrong.map((v) => JSON.stringify(v.text))).toEqual([]);
  });

  it("encodes the literal <|endoftext|> as 50256, as Hugging Face's tokenizer does", () => {
    expect(tok.encode("<|endoftext|>")).toEqual([50256]);
    expect(tok.endOfText).toBe(50256);
    expect(tok.decode([50256])).toBe("<|endoftext|>");
  });

  it("treats \\s as Unicode White_Space: U+0085 is whitespace, U+FEFF is not", () => {
    // JavaScript's own \s would get both of these wrong.
    const nel = vectors.find((v) => v.text === "nel\u0085here")!;
    const bom = vectors.find((v) => v.text === "bom\ufeffhere")!;
    expect(tok.encode(nel.text)).toEqual(nel.ids);
    expect(tok.encode(bom.text)).toEqual(bom.ids);
  });

  it("round-trips every vector and odd text: decode(encode(s)) === s", () => {
    const extra = ["🧑🏾‍🚀 in 宇宙", "\u0000\u0001\u0002", "a\u0301\u0302\u0303", "mixed\r\n\t \u00a0\u2003end", "x".repeat(5000)];
    for (const text of [...vectors.map((v) => v.text), ...extra]) expect(tok.decode(tok.encode(text))).toBe(text);
  });

  it("says which id is outside the vocabulary", () => {
    expect(() => tok.decode([50257])).toThrow("token id 50257 is outside the vocabulary (0..50256)");
  });

  it("the vendored files carry the published SHA-256 sums", () => {
    const sums = readFileSync(join(VENDORED_TOKENIZER_DIR, "SHA256SUMS"), "utf8").trim().split("\n");
    expect(sums).toHaveLength(2);
    for (const line of sums) {
      const [hash, file] = line.split(/\s+/);
      expect(createHash("sha256").update(readFileSync(join(VENDORED_TOKENIZER_DIR, file))).digest("hex"), file).toBe(hash);
    }
    expect(sums.join("\n")).toContain("196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783  encoder.json");
  });

  it("loads the Hugging Face file names (vocab.json + merges.txt) too, and fails clearly without files", async () => {
    const { mkdtempSync, copyFileSync } = await import("node:fs");
    const { tmpdir } = await import("node:os");
    const dir = mkdtempSync(join(tmpdir(), "tok-"));
    await expect(loadTokenizer(dir)).rejects.toThrow(/no tokenizer files \(expected vocab.json \+ merges.txt, or encoder.json \+ vocab.bpe\)/);
    copyFileSync(join(VENDORED_TOKENIZER_DIR, "encoder.json"), join(dir, "vocab.json"));
    copyFileSync(join(VENDORED_TOKENIZER_DIR, "vocab.bpe"), join(dir, "merges.txt"));
    const hf = await loadTokenizer(dir);
    expect(hf.encode("Hello, world!")).toEqual([15496, 11, 995, 0]);
  });
});
