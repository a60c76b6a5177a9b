import { BYTE_TO_CHAR, CHAR_TO_BYTE } from "./byte-unicode.ts";
import { pretokenize } from "./pretokenize.ts";

export const END_OF_TEXT = "<|endoftext|>";

const utf8 = new TextEncoder();
// ignoreBOM: a leading U+FEFF is text the user wrote, not a byte-order mark to drop.
const utf8Decoder = new TextDecoder("utf-8", { ignoreBOM: true });

/** GPT-2's byte-level BPE: text → UTF-8 bytes → byte characters → merges by rank → ids. */
export class Tokenizer {
  private readonly encoder: Map<string, number>;
  private readonly decoder: string[] = [];
  private readonly ranks = new Map<string, number>();
  private readonly cache = new Map<string, number[]>();
  /** Id of <|endoftext|>, the token GPT-2 starts an empty prompt with and ends documents on. */
  readonly endOfText: number;

  /** `vocab`: token string → id (encoder.json / vocab.json); `merges`: pairs in rank order. */
  constructor(vocab: Record<string, number>, merges: readonly [string, string][]) {
    this.encoder = new Map(Object.entries(vocab));
    for (const [token, id] of this.encoder) this.decoder[id] = token;
    merges.forEach(([a, b], rank) => this.ranks.set(`${a} ${b}`, rank));
    const eot = this.encoder.get(END_OF_TEXT);
    if (eot === undefined) throw new Error(`vocabulary has no ${END_OF_TEXT} token`);
    this.endOfText = eot;
  }

  get vocabSize(): number {
    return this.decoder.length;
  }

  encode(text: string): number[] {
    const ids: number[] = [];
    const parts = text.split(END_OF_TEXT);
    parts.forEach((part, i) => {
      if (i > 0) ids.push(this.endOfText);
      for (const piece of pretokenize(part)) {
        for (const id of this.encodePiece(piece)) ids.push(id);
      }
    });
    return ids;
  }

  /** The raw bytes the ids stand for; a character may be split across tokens. */
  decodeBytes(ids: readonly number[]): Uint8Array {
    const bytes: number[] = [];
    for (const id of ids) {
      const token = this.decoder[id];
      if (token === undefined) throw new Error(`token id ${id} is outside the vocabulary (0..${this.decoder.length - 1})`);
      for (const ch of token) bytes.push(CHAR_TO_BYTE.get(ch)!);
    }
    return Uint8Array.from(bytes);
  }

  decode(ids: readonly number[]): string {
    return utf8Decoder.decode(this.decodeBytes(ids));
  }

  private encodePiece(piece: string): number[] {
    const cached = this.cache.get(piece);
    if (cached !== undefined) return cached;
    let word = Array.from(utf8.encode(piece), (b) => BYTE_TO_CHAR[b]);
    while (word.length > 1) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i < word.length - 1; i++) {
        const rank = this.ranks.get(`${word[i]} ${word[i + 1]}`);
        if (rank !== undefined && rank < bestRank) {
          bestRank = rank;
          best = i;
        }
      }
      if (best < 0) break;
      const first = word[best];
      const second = word[best + 1];
      const merged: string[] = [];
      for (let i = 0; i < word.length; i++) {
        if (i < word.length - 1 && word[i] === first && word[i + 1] === second) {
          merged.push(first + second);
          i++;
        } else {
          merged.push(word[i]);
        }
      }
      word = merged;
    }
    const ids = word.map((token) => {
      const id = this.encoder.get(token);
      if (id === undefined) throw new Error(`BPE produced "${token}", which the vocabulary lacks: vocabulary and merges do not belong together`);
      return id;
    });
    this.cache.set(piece, ids);
    return ids;
  }
}

/**
 * A tokenizer from the text of its two files (encoder.json or vocab.json; vocab.bpe or
 * merges.txt), wherever they were read from; the names are what errors name.
 */
export function tokenizerFromFiles(vocabText: string, vocabName: string, mergesText: string, mergesName: string): Tokenizer {
  let vocab: Record<string, number>;
  try {
    vocab = JSON.parse(vocabText);
  } catch {
    throw new Error(`${vocabName}: not valid JSON`);
  }
  const merges = mergesText
    .split("\n")
    .filter((line, i) => line.trim() !== "" && !(i === 0 && line.startsWith("#version")))
    .map((line, i): [string, string] => {
      const pair = line.split(" ");
      if (pair.length !== 2) throw new Error(`${mergesName}: merge ${i + 1} is not two tokens: "${line}"`);
      return [pair[0], pair[1]];
    });
  return new Tokenizer(vocab, merges);
}
