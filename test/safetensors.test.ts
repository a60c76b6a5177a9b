import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ByteSource, Engine, SafetensorsFile, nodePlatform, blobSource, fileSource, httpSource, loadModel, loadModelFrom, writeSafetensors } from "../src/node.ts";
import { playgroundServer } from "../src/playground/server.ts";
import { FIXTURES, setTensor } from "./helpers.ts";

const dir = mkdtempSync(join(tmpdir(), "st-"));

/** A file with an arbitrary header text and `dataBytes` zero bytes after it. */
function rawFile(name: string, header: string, dataBytes = 0, declaredLength?: number | bigint): string {
  const json = Buffer.from(header, "utf8");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(declaredLength ?? json.length));
  const path = join(dir, name);
  writeFileSync(path, Buffer.concat([len, json, Buffer.alloc(dataBytes)]));
  return path;
}

const open = async (path: string) => SafetensorsFile.open(await fileSource(path));

// The same files over HTTP Range requests (the playground's server) and as a Blob (a page's File).
const server = playgroundServer({ "/f": dir });
let base = "";
beforeAll(async () => {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/f`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const SOURCES: Record<string, (path: string) => Promise<ByteSource>> = {
  file: (path) => fileSource(path),
  http: (path) => httpSource(`${base}/${path.slice(dir.length + 1)}`, path),
  blob: async (path) => blobSource(new Blob([readFileSync(path)]), path),
};

const entry = (dtype: string, shape: number[], begin: number, end: number) => ({ dtype, shape, data_offsets: [begin, end] });

describe("safetensors reader", () => {
  it("reads F32 and BF16 written by our writer, with metadata", async () => {
    const path = join(dir, "ok.safetensors");
    writeSafetensors(path, [
      { name: "b", shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 1e-3]) },
      { name: "a", shape: [5], data: Float32Array.from([1, 1.0078125, 1.00390625, 1.01171875, -65504]), dtype: "BF16" },
    ]);
    const f = await open(path);
    expect(f.metadata).toEqual({ format: "pt" });
    expect(Array.from(await f.read("b"))).toEqual([1, -2, 3.5, Math.fround(1e-3)]);
    // bf16 keeps 7 mantissa bits: 1 + 2^-7 is exact; 1 + 2^-8 and 1 + 3·2^-8 are ties that
    // round to the even neighbour (1 and 1 + 2^-6); -65504 rounds to -65536.
    expect(Array.from(await f.read("a"))).toEqual([1, 1.0078125, 1, 1.015625, -65536]);
    await expect(f.read("c")).rejects.toThrow(`${path}: no tensor "c"`);
    // A range of elements, as the loader reads wte a few thousand rows at a time.
    expect(Array.from(await f.read("b", undefined, 1, 2))).toEqual([-2, 3.5]);
    expect(Array.from(await f.read("a", new Float32Array(2), 3, 2))).toEqual([1.015625, -65536]);
    await expect(f.read("b", undefined, 3, 2)).rejects.toThrow(`tensor "b" has 4 elements, not 3..5`);
    await f.close();
  });

  it("reads F16, including subnormals and infinities", async () => {
    const halves = Uint16Array.from([0x3c00, 0xc000, 0x0001, 0x7bff, 0x7c00, 0x8000]);
    const path = rawFile("f16.safetensors", JSON.stringify({ h: entry("F16", [6], 0, 12) }), 0);
    writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.from(halves.buffer)]));
    const f = await open(path);
    const values = Array.from(await f.read("h"));
    await f.close();
    expect(values).toEqual([1, -2, Math.fround(2 ** -24), 65504, Infinity, -0]);
  });

  it.each([
    ["a header length past the end of the file", () => rawFile("long.st", "{}", 0, 1000), /header length 1000 runs past the end of the file \(10 bytes\)/],
    ["a header length of 2^64 − 1, printed exactly", () => rawFile("max.st", "{}", 0, 2n ** 64n - 1n), /header length 18446744073709551615 runs past the end/],
    ["a file shorter than 8 bytes", () => { const p = join(dir, "tiny.st"); writeFileSync(p, "abc"); return p; }, /not a safetensors file: 3 bytes/],
    ["a header that is not JSON", () => rawFile("nojson.st", "{not json"), /header is not valid JSON/],
    ["offsets outside the data section", () => rawFile("out.st", JSON.stringify({ w: entry("F32", [2], 0, 8) }), 4), /tensor "w": data_offsets \[0, 8\] fall outside the data section \(4 bytes\)/],
    ["overlapping tensors", () => rawFile("overlap.st", JSON.stringify({ a: entry("F32", [2], 0, 8), b: entry("F32", [2], 4, 12) }), 12), /tensors "a" and "b" overlap/],
    ["a byte size that disagrees with the shape", () => rawFile("size.st", JSON.stringify({ w: entry("F32", [3], 0, 8) }), 8), /tensor "w": holds 8 bytes but shape \[3\] of F32 needs 12/],
    ["an unsupported dtype", () => rawFile("i64.st", JSON.stringify({ w: entry("I64", [1], 0, 8) }), 8), /tensor "w": dtype I64 is not supported \(F32, F16, BF16 are\)/],
    ["an unknown dtype", () => rawFile("q.st", JSON.stringify({ w: entry("Q4", [1], 0, 1) }), 1), /tensor "w": unknown dtype "Q4"/],
    ["a gap between tensors", () => rawFile("gap.st", JSON.stringify({ a: entry("F32", [1], 0, 4), b: entry("F32", [1], 8, 12) }), 12), /bytes 4..8 of the data section belong to no tensor \(before "b"\)/],
    ["bytes after the last tensor", () => rawFile("tail.st", JSON.stringify({ a: entry("F32", [1], 0, 4) }), 5), /1 bytes after the last tensor belong to none/],
    ["a byte-order mark before the header", () => rawFile("bom.st", `\uFEFF${JSON.stringify({ a: entry("F32", [1], 0, 4) })}`, 4), /header does not start with "\{"/],
    ["__metadata__ that is not a map of strings", () => rawFile("meta.st", JSON.stringify({ __metadata__: { n: 1 }, a: entry("F32", [1], 0, 4) }), 4), /"__metadata__" is not a map of strings/],
    ["a dtype named after an object's prototype", () => rawFile("proto.st", JSON.stringify({ w: entry("__proto__", [1], 0, 1) }), 1), /tensor "w": unknown dtype "__proto__"/],
  ])("rejects %s, naming the file, read from disk, over HTTP and as a Blob", async (_, make, message) => {
    const path = make();
    for (const source of Object.values(SOURCES)) {
      await expect(source(path).then((s) => SafetensorsFile.open(s))).rejects.toThrow(message);
      await expect(source(path).then((s) => SafetensorsFile.open(s))).rejects.toThrow(path);
    }
  });

  it("reads the same values from every source, range by range", async () => {
    const path = join(dir, "sources.safetensors");
    writeSafetensors(path, [
      { name: "b", shape: [2, 2], data: Float32Array.from([1, -2, 3.5, 1e-3]) },
      { name: "a", shape: [5], data: Float32Array.from([1, 1.0078125, 1.00390625, 1.01171875, -65504]), dtype: "BF16" },
    ]);
    for (const [name, source] of Object.entries(SOURCES)) {
      const f = await SafetensorsFile.open(await source(path));
      expect(Array.from(await f.read("b", undefined, 1, 2)), name).toEqual([-2, 3.5]);
      expect(Array.from(await f.read("a")), name).toEqual([1, 1.0078125, 1, 1.015625, -65536]);
      await f.close();
    }
  });

  it("the fixtures reproduce the real gpt2 file's quirks: odd data start, data not in name order", async () => {
    for (const fixture of ["tiny-hot", "tiny-init", "tiny-hot-f16", "tiny-hot-bf16"]) {
      const f = await open(join(FIXTURES, fixture, "model.safetensors"));
      expect((8 + f.headerLength) % 4).not.toBe(0);
      const names = [...f.tensors.keys()];
      const byOffset = [...f.tensors.values()].sort((a, b) => a.begin - b.begin).map((t) => t.name);
      expect(byOffset).not.toEqual([...names].sort());
      await f.close();
    }
  });
});

describe("model loading", () => {
  it("never reads the attn.bias mask buffers", async () => {
    const { model, bytesRead } = await loadModelFrom(join(FIXTURES, "tiny-hot"));
    const f = await open(join(FIXTURES, "tiny-hot", "model.safetensors"));
    const all = [...f.tensors.values()];
    const masks = all.filter((t) => t.name.endsWith(".attn.bias"));
    expect(masks).toHaveLength(model.config.nLayer);
    const paramBytes = all.filter((t) => !t.name.endsWith(".attn.bias")).reduce((s, t) => s + t.end - t.begin, 0);
    expect(bytesRead).toBe(paramBytes);
    await f.close();
  });

  function modelDir(name: string, edit?: (dir: string) => void): string {
    const d = join(dir, name);
    mkdirSync(d, { recursive: true });
    copyFileSync(join(FIXTURES, "tiny-hot", "config.json"), join(d, "config.json"));
    copyFileSync(join(FIXTURES, "tiny-hot", "model.safetensors"), join(d, "model.safetensors"));
    edit?.(d);
    return d;
  }
  /** The fixture with config.json's values changed. */
  const withConfig = (name: string, change: object) => modelDir(name, (d) => {
    const c = JSON.parse(readFileSync(join(d, "config.json"), "utf8"));
    writeFileSync(join(d, "config.json"), JSON.stringify({ ...c, ...change }));
  });
  /** The fixture with the last element of its last tensor (tiny-hot is F32) set to `value`. */
  const withLastWeight = (name: string, value: number) => modelDir(name, (d) => {
    const path = join(d, "model.safetensors");
    const bytes = readFileSync(path);
    bytes.writeFloatLE(value, bytes.length - 4);
    writeFileSync(path, bytes);
  });

  it.each([
    ["a missing directory", () => join(dir, "nope"), /model directory .*nope does not exist/],
    ["a missing config.json", () => modelDir("noconfig", (d) => rmSync(join(d, "config.json"))), /config.json: not found/],
    ["a missing model.safetensors", () => modelDir("noweights", (d) => rmSync(join(d, "model.safetensors"))), /model.safetensors: not found/],
    ["a truncated model.safetensors", () => modelDir("trunc", (d) => truncateSync(join(d, "model.safetensors"), 100_000)), /fall outside the data section/],
    ["a NaN weight (named with its tensor and element)", () => withLastWeight("nan", NaN), /tensor "[\w.]+" holds NaN at element \d+: the file is damaged/],
    ["an infinite weight", () => withLastWeight("inf", -Infinity), /tensor "[\w.]+" holds -Infinity at element \d+/],
    ["a config that is not JSON", () => modelDir("badjson", (d) => writeFileSync(join(d, "config.json"), "{")), /config.json: not valid JSON/],
    ["a config with more layers than the file", () => withConfig("layers", { n_layer: 4 }), /tensor "h.3.ln_1.weight" is missing \(config.json asks for 4 layers\)/],
    ["a config whose width disagrees with the tensors", () => withConfig("width", { vocab_size: 321 }), /tensor "wte.weight" has shape \[320,48\] but config.json implies \[321,48\]/],
    ["a config asking for a billion layers (refused at once)", () => withConfig("billion", { n_layer: 1_000_000_000 }), /tensor "h.3.ln_1.weight" is missing \(config.json asks for 1000000000 layers\)/],
    ["a negative layer_norm_epsilon", () => withConfig("eps", { layer_norm_epsilon: -1 }), /"layer_norm_epsilon" must be a number in \(0, 1\], got -1/],
    ["a layer_norm_epsilon that is not a number", () => withConfig("epsstr", { layer_norm_epsilon: "1e-5" }), /"layer_norm_epsilon" must be a number in \(0, 1\], got "1e-5"/],
    ["heads that do not divide the width", () => withConfig("heads", { n_head: 5 }), /n_embd 48 is not divisible by n_head 5/],
  ])("rejects %s with one clear message", async (_, make, message) => {
    await expect(loadModel(make())).rejects.toThrow(message);
  });

  /** The fixture with every element of tensor `tensor` (F32) set to `value`. */
  const withTensor = (name: string, tensor: string, value: number) => modelDir(name, (d) => setTensor(join(d, "model.safetensors"), tensor, value));

  it("stops a pass that overflows with finite weights, naming the first op and layer, and leaves the cache as it was", async () => {
    // 3e38 is a finite float32; 48 products of it overflow in layer 1's MLP.
    const model = await loadModel(withTensor("overflow", "h.1.mlp.c_fc.weight", 3e38));
    const cache = model.newCache();
    expect(() => model.step([1, 2, 3], cache)).toThrow(/^the forward pass produced (NaN|-?Infinity) first in matmul \(mlp up\) of layer 1: the weights or config.json hold values GPT-2 cannot compute with$/);
    expect(cache.length).toBe(0);
    // The same on the TypeScript kernels, and in bf16 (the SIMD kernels' tuning skips what overflows).
    for (const settings of [{ kernel: "packed" }, { dtype: "bf16" as const }]) {
      const other = await loadModel(join(dir, "overflow"), new Engine(nodePlatform, settings));
      expect(() => other.forward([1, 2, 3])).toThrow(/first in matmul \(mlp up\) of layer 1:/);
      await other.dispose();
    }
    // q8's float16 block scales end at 65504 × 127: such weights are refused as they load.
    const engine = new Engine(nodePlatform, { dtype: "q8" });
    await expect(loadModel(join(dir, "overflow"), engine)).rejects.toThrow(/^q8 cannot hold a weight block whose largest magnitude is 3\.0+\d*e\+38 \(its float16 scales reach 8\.3 million\): use --dtype bf16 or f32$/);
    await engine.dispose();
  });

  it("carries a NaN through q8's quantizing of activations to the op that made it", async () => {
    // ln_1's gain of 1e30 (a float32 tensor q8 leaves as it is) makes queries and keys near 1e29:
    // their scores overflow, and the NaN/∞ reaches the logits only if the q8 quantizer of the
    // products after them carries it on rather than rounding it to a block of zeros.
    const model = await loadModel(withTensor("overflow-q8", "h.1.ln_1.weight", 1e30), new Engine(nodePlatform, { dtype: "q8" }));
    expect(() => model.forward([1, 2, 3])).toThrow(/first in matmul \(attn scores\) of layer 1:/);
    await model.dispose();
  });

  it("reads a zero-size tensor at [0, 0] beside others (the format allows it)", async () => {
    const path = rawFile("zero.st", JSON.stringify({ empty: entry("F32", [0], 0, 0), a: entry("F32", [1], 0, 4) }), 4);
    const file = await open(path);
    expect([...file.tensors.keys()].sort()).toEqual(["a", "empty"]);
    await file.close();
  });

  it("refuses a header length one byte short (it still parses: every tensor would be read one byte off)", async () => {
    const bytes = readFileSync(join(FIXTURES, "tiny-hot", "model.safetensors"));
    const short = Buffer.from(bytes);
    short.writeBigUInt64LE(bytes.readBigUInt64LE(0) - 1n);
    const path = join(dir, "short.st");
    writeFileSync(path, short);
    await expect(open(path)).rejects.toThrow(/1 bytes after the last tensor belong to none/);
  });

  it("rejects ids outside the vocabulary, empty input and sequences longer than the context", async () => {
    const model = await loadModel(join(FIXTURES, "tiny-hot"));
    expect(() => model.forward([1, 320])).toThrow("token id 320 is outside the vocabulary (0..319)");
    expect(() => model.forward([-1])).toThrow("token id -1 is outside the vocabulary");
    expect(() => model.forward([])).toThrow("no tokens to run: the input is empty");
    expect(() => model.forward(new Array(49).fill(1))).toThrow("a sequence of 49 tokens is longer than the model's context of 48 positions");
    const cache = model.newCache();
    model.step(new Array(48).fill(1), cache);
    expect(() => model.step([1], cache)).toThrow("a sequence of 49 tokens is longer than the model's context of 48 positions");
  });
});
