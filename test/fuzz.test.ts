// Seeded mutations of a fixture's model.safetensors and config.json: every mutant either loads
// (and then runs a pass, or stops it with one error) or is refused with an Error that names the
// file — never a crash, a hang, another kind of exception, or memory out of bounds.
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Engine, loadModel, nodePlatform } from "../src/node.ts";
import { Random } from "../src/util/random.ts";
import { FIXTURES, maxAbsDiff } from "./helpers.ts";

const CASES = 500;
const SEED = 20261206;
/** A mutant must be loaded or refused within this, and the process must stay under MAX_RSS. */
const CASE_MS = 5_000;
const MAX_RSS = 1.5 * 2 ** 30;

const original = readFileSync(join(FIXTURES, "tiny-hot", "model.safetensors"));
const config = JSON.parse(readFileSync(join(FIXTURES, "tiny-hot", "config.json"), "utf8")) as Record<string, unknown>;
const headerLength = Number(original.readBigUInt64LE(0));
const header = JSON.parse(original.subarray(8, 8 + headerLength).toString("utf8")) as Record<string, { dtype: string; shape: number[]; data_offsets: number[] }>;
const names = Object.keys(header).filter((n) => n !== "__metadata__");

/** The file with a new header (its data section as it was). */
function withHeader(h: object): Buffer {
  const json = Buffer.from(JSON.stringify(h), "utf8");
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([length, json, original.subarray(8 + headerLength)]);
}

const ODD_NUMBERS = [-1, 0, 1, 2, 3, 7, 1.5, 1e9, 2 ** 31, 2 ** 53, -(2 ** 53), Number.MAX_SAFE_INTEGER];
const ODD_VALUES: unknown[] = [...ODD_NUMBERS, null, "12", "", [], {}, true];

/**
 * One mutant: what changed (for the failure message), the weights file and config.json.
 * `structural`: only the file's structure changed, so if it loads at all it must be the same
 * model (a change to a tensor the loader never reads, such as an attn.bias mask).
 */
interface Mutant {
  what: string;
  structural: boolean;
  weights: Buffer;
  config: Record<string, unknown>;
}

function mutate(rng: Random): Mutant {
  const pick = <T>(list: readonly T[]): T => list[Math.floor(rng.next() * list.length)];
  const int = (n: number) => Math.floor(rng.next() * n);
  const h = structuredClone(header);
  const name = pick(names);
  const kind = int(9);
  switch (kind) {
    case 0: {
      const weights = Buffer.from(original);
      const length = pick([0n, 1n, 7n, BigInt(headerLength - 1), BigInt(headerLength + 1), BigInt(headerLength + int(1000)), 2n ** 63n, 2n ** 64n - 1n]);
      weights.writeBigUInt64LE(length, 0);
      return { what: `header length ${length}`, structural: true, weights, config };
    }
    case 1: {
      const weights = Buffer.from(original);
      const at = 8 + int(headerLength);
      weights[at] = int(256);
      return { what: `header byte ${at} = ${weights[at]}`, structural: true, weights, config };
    }
    case 2: {
      const offsets = h[name].data_offsets;
      const which = int(2);
      offsets[which] = pick([offsets[which] + pick([-4, -1, 1, 4, 1000]), 0, -8, 2 ** 40, 1.5]);
      return { what: `${name} data_offsets ${JSON.stringify(offsets)}`, structural: true, weights: withHeader(h), config };
    }
    case 3: {
      h[name].dtype = pick(["F16", "BF16", "F64", "I8", "", "f32", "__proto__", "constructor"]);
      return { what: `${name} dtype ${h[name].dtype}`, structural: true, weights: withHeader(h), config };
    }
    case 4: {
      const shape = h[name].shape;
      if (rng.next() < 0.2) shape.pop();
      else shape[int(shape.length)] = pick(ODD_NUMBERS);
      return { what: `${name} shape ${JSON.stringify(shape)}`, structural: true, weights: withHeader(h), config };
    }
    case 5: {
      delete (h as Record<string, unknown>)[name];
      return { what: `no ${name}`, structural: true, weights: withHeader(h), config };
    }
    case 6: {
      const cut = int(original.length);
      return { what: `truncated to ${cut} bytes`, structural: true, weights: original.subarray(0, cut), config };
    }
    case 7: {
      // Data bytes: any pattern, including NaN and infinity (0xff 0xff 0x7f 0x7f… ).
      const weights = Buffer.from(original);
      const at = 8 + headerLength + int(original.length - 8 - headerLength - 4);
      const word = pick([0x7fc00000, 0x7f800000, 0xff800000, 0x7f7fffff, int(2 ** 32)]);
      weights.writeUInt32LE(word >>> 0, at);
      return { what: `data word at ${at} = 0x${(word >>> 0).toString(16)}`, structural: false, weights, config };
    }
    default: {
      const key = pick(["n_layer", "n_head", "n_embd", "n_positions", "n_ctx", "vocab_size", "layer_norm_epsilon", "activation_function"]);
      const value = pick(ODD_VALUES);
      return { what: `config ${key} = ${JSON.stringify(value)}`, structural: false, weights: original, config: { ...config, [key]: value } };
    }
  }
}

/** Loads the mutant in `dir` and runs one pass: how it ended (any other ending fails the test). */
async function tryMutant(dir: string, m: Mutant, expected: Float32Array): Promise<"loaded" | "loaded, a pass refused" | "refused"> {
  let model;
  try {
    model = await loadModel(dir, new Engine(nodePlatform, { threads: 1 }));
  } catch (err) {
    expect(err, m.what).toBeInstanceOf(Error);
    expect((err as Error).message, m.what).toContain(dir);
    return "refused";
  }
  let logits: Float32Array;
  try {
    logits = model.forward([1, 2, 3]);
  } catch (err) {
    // A model that loads runs, or stops with the one non-finite error (data mutations).
    expect((err as Error).message, m.what).toMatch(/^the forward pass produced /);
    return "loaded, a pass refused";
  } finally {
    await model.dispose();
  }
  // A file whose structure was damaged never loads as other weights (a header one byte short
  // did). Each engine tunes its own kernels, and an FMA kernel rounds differently: hence 1e-5.
  if (m.structural) expect(maxAbsDiff(logits, expected), m.what).toBeLessThan(1e-5);
  return "loaded";
}

describe(`${CASES} seeded mutations of tiny-hot (seed ${SEED})`, () => {
  it("each loads, or is refused with an Error naming the file, within bounds", { timeout: 240_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), "fuzz-"));
    copyFileSync(join(FIXTURES, "tiny-hot", "config.json"), join(dir, "config.json"));
    const reference = await loadModel(join(FIXTURES, "tiny-hot"), new Engine(nodePlatform, { threads: 1 }));
    const expected = reference.forward([1, 2, 3]);
    await reference.dispose();
    const rng = new Random(SEED);
    const outcomes: Record<string, number> = { loaded: 0, "loaded, a pass refused": 0, refused: 0 };
    for (let i = 0; i < CASES; i++) {
      const m = mutate(rng);
      writeFileSync(join(dir, "model.safetensors"), m.weights);
      writeFileSync(join(dir, "config.json"), JSON.stringify(m.config));
      const started = performance.now();
      const outcome = await tryMutant(dir, m, expected);
      outcomes[outcome]++;
      expect(performance.now() - started, m.what).toBeLessThan(CASE_MS);
      expect(process.memoryUsage().rss, m.what).toBeLessThan(MAX_RSS);
    }
    console.log(`fuzz: ${CASES} mutants: ${Object.entries(outcomes).map(([k, n]) => `${n} ${k}`).join(", ")}`);
    expect(outcomes.refused).toBeGreaterThan(CASES / 2);
  });
});
