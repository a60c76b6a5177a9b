// The prediction's arithmetic (never a timing): the roofline on synthetic profiles, --machine with
// a fixed profile file, the profile's cache (key, reuse, an unwritable directory), bad profile
// files, and Ctrl-C.
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { OpEntry } from "../src/clock/clock.ts";
import { type MachineProfile, type OpCost, PROFILE_VERSION, parseProfile, profileFileName } from "../src/profile/machine-profile.ts";
import { costsFor, interpolateLog, streamedWeightBytes } from "../src/profile/ladder.ts";
import { fitContextReads, fitProducts } from "../src/profile/measure.ts";
import { boundOf, isJoinedCall, passOverheadNs, predictCallNs, predictEntryNs, predictStepsNs } from "../src/profile/roofline.ts";
import { markJoined } from "../src/run/join-probe.ts";
import { FIXTURES } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..");
const HOT = join(FIXTURES, "tiny-hot");
const TINY = { nLayer: 3, nHead: 4, nEmbd: 48, nPositions: 48, vocabSize: 320 };
const KINDS = ["matmul(qkv)", "matmul(attn proj)", "matmul(mlp up)", "matmul(mlp down)", "matmul(lm head)", "matmul(attn scores)", "matmul(attn values)",
  "add", "layerNorm", "gelu", "softmax", "scale", "embed", "split", "kvAppend"];

const PRODUCTS = KINDS.filter((k) => k.startsWith("matmul(") && !k.includes("attn scores") && !k.includes("attn values"));

/**
 * A profile with round numbers: every op 1 µs per call at `cyclesPerSec`, memory at `bytesPerSec`
 * for every working set, the same on two rungs that span TINY's width.
 */
function synthetic(cyclesPerSec: number, bytesPerSec: number): MachineProfile {
  const cost = { callNs: 1000, cyclesPerSec };
  const products = Object.fromEntries(PRODUCTS.map((k) => [k, cost]));
  return {
    version: PROFILE_VERSION,
    key: { cpu: "Synthetic CPU", cores: 8, runtime: "node 99", kernel: "auto", threads: 2, dtype: "f32" },
    measuredAt: "2026-01-01T00:00:00.000Z",
    measureSeconds: 1,
    rungs: [16, 96].map((width) => ({ width, heads: 4, layers: 1, memoryBytesPerSec: bytesPerSec, weightBytes: 1e6, products })),
    ladder: { vocabSize: 320, nPositions: 64 },
    streams: [{ bytes: 1e5, bytesPerSec }, { bytes: 1e8, bytesPerSec }],
    ops: Object.fromEntries(KINDS.filter((k) => !PRODUCTS.includes(k)).map((k) => [k, cost])),
    passNs: { fixed: 5000, perLayer: 0, perToken: 100, recordedPerLayer: 0 },
    samplingNs: { greedy: 2000, sample: 9000 },
    kernels: {},
  };
}

/** The synthetic profile as read for TINY. */
const costsOf = (p: MachineProfile) => costsFor(p, { ...TINY, layerNormEpsilon: 1e-5 }, "f32");

function run(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", ...args], { cwd: ROOT, encoding: "utf8", env, timeout: 120_000 });
  return { code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr };
}

function profileFile(p: unknown): string {
  const path = join(mkdtempSync(join(tmpdir(), "profile-")), "machine.json");
  writeFileSync(path, typeof p === "string" ? p : JSON.stringify(p));
  return path;
}

interface Op { calls: number; cycles: number; bytes: number; bound: string; predictedMs: number }
interface Doc { stages: { name: string; predictedMs: number; cycles: number }[]; opsByStage: Record<string, Op[]>; steps: { predictedMs: number }[]; promptIds: number[]; totals: { cycles: number }; machine: { source: string; path: string; cpu: string } }

describe("the roofline", () => {
  const p = costsOf(synthetic(1e9, 1e10)); // ridge at 0.1 cycles per byte

  it("takes the longer of compute and memory, plus the call", () => {
    expect(predictCallNs(p, "add", 1000, 1000)).toBe(1000 + 1000); // 1000 cycles at 1 G/s = 1 µs > 1000 B at 10 GB/s
    expect(predictCallNs(p, "add", 10, 1e6)).toBe(1000 + 1e5); // memory-bound: 1 MB at 10 GB/s = 100 µs
    expect(boundOf(p, "add", 10, 1e6, 1)).toBe("memory");
    expect(boundOf(p, "add", 1e7, 1e6, 1)).toBe("compute");
    expect(boundOf(p, "add", 10, 10, 5)).toBe("call");
  });

  it("uses an op's own byte ceiling, and the matmul roof for kinds the profile lacks", () => {
    const q = { ...p, ops: { ...p.ops, kvAppend: { callNs: 0, cyclesPerSec: 1e9, bytesPerSec: 1e8 } } };
    expect(predictCallNs(q, "kvAppend", 0, 1e6)).toBe(1e7); // 1 MB at 100 MB/s
    expect(predictCallNs(q, "transpose", 5e9, 0)).toBe(5e9); // unknown kind: no call cost, compute roof
  });

  it("gives a call that joined the product before it no time of its own, and every other call its roofline time", () => {
    const entry = (kernel: string, step: number): OpEntry => ({ op: "add", role: "", inputs: [[1, 768], [768]], output: [1, 768], cycles: 1000, bytes: 1000, startNs: 0, endNs: 0, stage: "decode", layer: 0, step, kernel });
    expect(predictEntryNs(p, entry("simd joined", 1))).toBe(0);
    expect(predictEntryNs(p, entry("simd", 1))).toBe(1000 + 1000);
    expect(predictEntryNs(p, entry("", 1))).toBe(1000 + 1000);
    const steps = [{ tokens: 1, picks: 1, prompt: true }, { tokens: 1, picks: 1, prompt: false }];
    expect(predictStepsNs(p, [entry("simd", 0), entry("simd joined", 1), entry("simd", 1)], steps, "greedy")).toEqual([5000 + 100 + 2000 + 2000, 5000 + 100 + 2000 + 2000]);
  });

  it("marks a counted pass's calls joined as a probe's pass of the same kind joined them, layer by layer", () => {
    const call = (op: string, layer: number, step: number): OpEntry => ({ op, role: "", inputs: [], output: [], cycles: 1, bytes: 1, startNs: 0, endNs: 0, stage: step === 0 ? "prefill" : "decode", layer, step, kernel: "" });
    const pattern = { prompt: { layer: [false, false], outside: [false, false] }, decode: { layer: [false, true], outside: [false, true] } };
    const pass = (step: number) => [call("embed", -1, step), call("matmul", 0, step), call("add", 0, step), call("matmul", 1, step), call("add", 1, step), call("matmul", -1, step)];
    const marked = markJoined([...pass(0), ...pass(1), ...pass(2), call("copy", -1, -1)], pattern);
    expect(marked.map((e) => (isJoinedCall(e) ? 1 : 0))).toEqual([0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 1, 0, 0, 1, 0, 1, 1, 0]);
  });

  it("adds the time between ops and the token pick to each pass, and recording's to the prompt's", () => {
    expect(passOverheadNs(p, { tokens: 49, picks: 1, prompt: false }, "greedy")).toBe(5000 + 4900 + 2000);
    expect(passOverheadNs(p, { tokens: 1, picks: 1, prompt: false }, "sample")).toBe(5000 + 100 + 9000);
    expect(passOverheadNs(p, { tokens: 1, picks: 8, prompt: false }, "sample")).toBe(5000 + 100 + 8 * 9000);
    const recording = { ...p, passNs: { ...p.passNs, recorded: 3000 } };
    expect(passOverheadNs(recording, { tokens: 49, picks: 1, prompt: true }, "greedy")).toBe(5000 + 4900 + 3000 + 2000);
    expect(passOverheadNs(recording, { tokens: 1, picks: 1, prompt: false }, "greedy")).toBe(5000 + 100 + 2000);
  });
});

describe("reading the profile for a model", () => {
  // Rungs at widths 768 and 1600: qkv's ceiling 20 and 40 G cycles/s, call 30 and 50 µs; the LM
  // heads streamed at 40 and 30 GB/s; the streams' curve falls from 50 GB/s at 100 MB to 25 at
  // 10 GB (a cache, then memory).
  const base = synthetic(1e9, 1e10);
  const rung = (width: number, cyclesPerSec: number, callNs: number, memoryBytesPerSec: number, weightBytes: number) => ({
    width, heads: width / 64, layers: 1, memoryBytesPerSec, weightBytes, products: { "matmul(qkv)": { callNs, cyclesPerSec, vectorCyclesPerSec: cyclesPerSec / 2 } },
  });
  const p: MachineProfile = {
    ...base,
    rungs: [rung(768, 20e9, 30_000, 40e9, 1e8), rung(1600, 40e9, 50_000, 30e9, 1e10)],
    streams: [{ bytes: 1e8, bytesPerSec: 50e9 }, { bytes: 1e10, bytesPerSec: 25e9 }],
    passNs: { fixed: 5000, perLayer: 1000, perToken: 100, recordedPerLayer: 250 },
  };
  const config = (nEmbd: number, nLayer: number) => ({ nLayer, nHead: 16, nEmbd, nPositions: 1024, vocabSize: 50257, layerNormEpsilon: 1e-5 });

  it("interpolates linearly in the logarithm, and holds the ends beyond the points", () => {
    const points = [{ x: 100, y: 1 }, { x: 10_000, y: 3 }];
    expect(interpolateLog(points, 1000)).toBeCloseTo(2, 12); // halfway in log
    expect([interpolateLog(points, 10), interpolateLog(points, 1e6)]).toEqual([1, 3]);
  });

  it("reads the products at the model's width between the rungs", () => {
    const c = costsFor(p, config(1024, 24), "f32"); // gpt2-medium's width: log(1024/768) / log(1600/768) = 0.392 of the way
    const t = Math.log(1024 / 768) / Math.log(1600 / 768);
    expect(c.ops["matmul(qkv)"].cyclesPerSec).toBeCloseTo(20e9 + t * 20e9, 0);
    expect(c.ops["matmul(qkv)"].vectorCyclesPerSec).toBeCloseTo((20e9 + t * 20e9) / 2, 0);
    expect(c.ops["matmul(qkv)"].callNs).toBeCloseTo(30_000 + t * 20_000, 6);
    expect(c.computeCyclesPerSec).toBe(c.ops["matmul(qkv)"].cyclesPerSec);
    expect(c.ops.add).toEqual(base.ops.add); // the other ops as measured
    expect(c.extrapolated).toBeNull();
  });

  it("moves each rung's memory rate along the streams to the model's working set", () => {
    // gpt2-medium in f32 streams 4 × 353.6 M bytes = 1.41 GB: on the streams' curve 50 − 25·log(14.1)/log(100) GB/s.
    const c = config(1024, 24);
    const bytes = streamedWeightBytes(c, "f32");
    expect(bytes).toBe(4 * (24 * 12 * 1024 * 1024 + 50257 * 1024));
    const stream = (x: number) => 50e9 - (25e9 * Math.log(x / 1e8)) / Math.log(100);
    const t = Math.log(1024 / 768) / Math.log(1600 / 768);
    const small = (40e9 * stream(bytes)) / 50e9; // the 768 rung ran in cache (1e8 bytes)
    const large = (30e9 * stream(bytes)) / 25e9; // the 1600 rung from memory (1e10 bytes)
    expect(costsFor(p, c, "f32").memoryBytesPerSec).toBeCloseTo(small + t * (large - small), 0);
  });

  it("adds the time between ops per layer, and flags a width outside the ladder", () => {
    expect(costsFor(p, config(768, 12), "f32").passNs).toEqual({ fixed: 5000 + 12 * 1000, perToken: 100, recorded: 12 * 250 });
    const wide = costsFor(p, config(2048, 2), "f32");
    expect(wide.ops["matmul(qkv)"].cyclesPerSec).toBe(40e9); // the nearest rung's
    expect(wide.extrapolated).toBe("width 2048 outside the profile's ladder (768–1600)");
  });
});

describe("the products' fit", () => {
  // Hand-made timings: the LM head streams 100 MB in 2.5 ms (a 40 GB/s roof); 64-row calls run
  // at 20 G cycles/s after their fixed cost and their bytes at that roof, decode batches of 8
  // rows at 16 (f32) and 16.7 (q8).
  // f32 weights (4 bytes per cycle) make one-row calls memory-bound, q8's (1.25) compute-bound.
  const head = { cycles: 25e6, bytes: 1e8, rows: 1, vector: true, ns: 2.5e6 };
  const f32 = [
    { cycles: 1e6, bytes: 4e6, rows: 1, vector: true, ns: 130_000 }, // 30 µs + 4 MB at 40 GB/s
    { cycles: 8e6, bytes: 4.03e6, rows: 8, vector: true, ns: 530_000 }, // 30 µs + 8 M cycles at 16 G/s
    { cycles: 64e6, bytes: 4.2e6, rows: 64, vector: false, ns: 3_335_000 }, // 30 µs + 64 M at 20 G/s + 4.2 MB at 40 GB/s
  ];
  const q8 = [
    { cycles: 1e6, bytes: 1.25e6, rows: 1, vector: true, ns: 80_000 }, // 20 µs + 1 M cycles at 16.7 G/s
    { cycles: 8e6, bytes: 1.3e6, rows: 8, vector: true, ns: 500_000 }, // 20 µs + 8 M cycles at 16.7 G/s
    { cycles: 64e6, bytes: 1.45e6, rows: 64, vector: false, ns: 3_256_250 }, // 20 µs + 64 M at 20 G/s + 1.45 MB at 40 GB/s
  ];
  const fit = fitProducts(new Map([["matmul(lm head)", [head]], ["matmul(mlp up)", f32], ["matmul(mlp down)", q8]]));
  const roofline = { ...fit, computeCyclesPerSec: 20e9 };

  it("puts the memory roof at the largest one-row stream, the fixed cost beyond it, the ceilings beyond that", () => {
    expect(fit.memoryBytesPerSec).toBeCloseTo(40e9, 0);
    const f = fit.ops["matmul(mlp up)"];
    expect(f.callNs).toBeCloseTo(30_000, 6);
    expect(f.cyclesPerSec).toBeCloseTo(20e9, 0);
    expect(f.vectorCyclesPerSec).toBeCloseTo(16e9, 0);
  });

  it("gives compute-bound one-row calls (q8) the time they took: the ceiling is the slope from one row to eight", () => {
    const q = fit.ops["matmul(mlp down)"];
    expect(q.vectorCyclesPerSec).toBeCloseTo(7e6 / 420e-6, 0); // 7 M cycles more in 420 µs more
    expect(q.callNs).toBeCloseTo(20_000, 6);
  });

  it("predicts every call it was fitted on as it was timed", () => {
    for (const [kind, gs] of [["matmul(mlp up)", f32], ["matmul(mlp down)", q8]] as const) {
      for (const g of gs.filter((x) => x.vector)) expect(predictCallNs(roofline, kind, g.cycles, g.bytes, true)).toBeCloseTo(g.ns, 3);
    }
    expect(predictCallNs(roofline, "matmul(mlp up)", 64e6, 4.2e6)).toBeCloseTo(3_335_000, 3);
    expect(predictCallNs(roofline, "matmul(mlp down)", 64e6, 1.45e6)).toBeCloseTo(3_256_250, 3);
    expect(fit.ops["matmul(mlp down)"].cyclesPerSec).toBeCloseTo(20e9, 0);
  });
});

describe("attention's reads at long contexts", () => {
  // A decode step after 1023 positions of width 768: the scores read 1023 × 768 × 4 = 3.14 MB of
  // keys and took 2 µs + 262 µs (at 12 G bytes/s); the values' time is the scores' (one group), so
  // theirs is their fixed cost alone. The line in cycles, fitted on calls that hit the caches,
  // would put the scores' 1.57 M cycles at 157 µs.
  const bytes = 1023 * 768 * 4;
  const entry = (role: string, ns: number): OpEntry => ({
    op: "matmul", role, inputs: [[1, 768], [1023, 768]], output: [12, 1023], cycles: 1023 * 768 * 2, bytes,
    startNs: 0, endNs: ns, stage: "decode", layer: 0, step: 0, kernel: "simd",
  });
  const fitted = () => ({
    "matmul(attn scores)": { callNs: 2000, cyclesPerSec: 10e9 },
    "matmul(attn values)": { callNs: 500, cyclesPerSec: 10e9 },
  });

  it("gives the scores the rate they read at, below the memory roof, and keeps the values' cost", () => {
    const ops: Record<string, OpCost> = fitted();
    fitContextReads(ops, [entry("attn scores", 2000 + (1e9 * bytes) / 12e9), entry("attn scores", 2000 + (1e9 * bytes) / 12e9), entry("attn values", 500)], 40e9);
    expect(ops["matmul(attn scores)"].bytesPerSec).toBeCloseTo(12e9, -3);
    expect(ops["matmul(attn values)"].bytesPerSec).toBeUndefined();
    const roofline = { memoryBytesPerSec: 40e9, computeCyclesPerSec: 20e9, ops };
    // 2 µs + max(157 µs of cycles, 262 µs of bytes)
    expect(predictCallNs(roofline, "matmul(attn scores)", 1023 * 768 * 2, bytes, true)).toBeCloseTo(2000 + (1e9 * bytes) / 12e9, 3);
    // 64 positions: 197 kB at that rate (16.4 µs) outweigh 98 k cycles (9.8 µs)
    expect(predictCallNs(roofline, "matmul(attn scores)", 64 * 768 * 2, 64 * 768 * 4, true)).toBeCloseTo(2000 + (1e9 * 64 * 768 * 4) / 12e9, 3);
  });

  it("leaves a kind whose reads ran at the memory roof or faster as it was", () => {
    const ops: Record<string, OpCost> = fitted();
    fitContextReads(ops, [entry("attn scores", 2000 + (1e9 * bytes) / 50e9)], 40e9);
    expect(ops["matmul(attn scores)"].bytesPerSec).toBeUndefined();
  });
});

describe("npm run profile", () => {
  it("measures the machine on a ladder of widths, prints each product's ceilings per rung, and writes a file generate.ts takes", () => {
    const dir = mkdtempSync(join(tmpdir(), "profile-run-"));
    const out = join(dir, "m.json");
    const r = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "profile", "--threads", "1", "--out", out], {
      cwd: ROOT, encoding: "utf8", env: { ...process.env, GPT2_CYCLES_CACHE: dir }, timeout: 120_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/^profile: rung 2 of 2: width 64, 1 layer, random weights…$/m); // vitest's env: the tiny ladder
    expect(r.stdout).toMatch(/^product +width +call +compute ceiling +in decode$/m);
    const profile = parseProfile(readFileSync(out, "utf8"), out);
    expect(profile.rungs.map((x) => [x.width, x.layers])).toEqual([[32, 2], [64, 1]]);
    // Every weight product has the one-row kernel's ceiling too, from the rung's decode batch.
    for (const rung of profile.rungs) {
      for (const kind of ["matmul(qkv)", "matmul(attn proj)", "matmul(mlp up)", "matmul(mlp down)", "matmul(lm head)"]) {
        expect(rung.products[kind].vectorCyclesPerSec, kind).toBeGreaterThan(0);
      }
    }
    expect(profile.streams.map((x) => x.bytes)).toEqual([...profile.streams.map((x) => x.bytes)].sort((a, b) => a - b));
    expect(profile.ops.stack, "the batch's rows are stacked").toBeDefined();
  });
});

describe("profiles", () => {
  it("names cache files by the whole key", () => {
    const a = synthetic(1e9, 1e10).key;
    const names = new Set([a, { ...a, threads: 1 }, { ...a, dtype: "bf16" }, { ...a, runtime: "bun 1.4.5" }, { ...a, cpu: "Other CPU" }].map(profileFileName));
    expect(names.size).toBe(5);
    expect(profileFileName(a)).toMatch(/^node-99_auto_f32_t2_[0-9a-f]{8}\.json$/);
  });

  it("rejects a file that is not JSON or lacks a field, naming the file", () => {
    expect(() => parseProfile("{", "m.json")).toThrow(/^m\.json is not valid JSON/);
    const { streams: _, ...noStreams } = synthetic(1e9, 1e10);
    expect(() => parseProfile(JSON.stringify(noStreams), "m.json")).toThrow("m.json lacks a valid streams");
    const p = synthetic(1e9, 1e10);
    expect(() => parseProfile(JSON.stringify({ ...p, rungs: [{ ...p.rungs[0], weightBytes: -1 }] }), "m.json")).toThrow("m.json lacks a valid rungs[0]");
    expect(() => parseProfile(JSON.stringify({ ...synthetic(1e9, 1e10), version: 1 }), "m.json")).toThrow(/lacks a valid version/);
  });
});

describe("generate.ts --machine FILE", () => {
  const args = ["--model", HOT, "--kernel", "packed", "--input-ids", "5,17,250,3", "--max-new-tokens", "6", "--json"];
  // Σ over the stage's op kinds of calls × call + work, plus each pass's overhead: the prediction
  // recomputed from the record's own counts, valid when every call is on one side of the ridge.
  // (On the TypeScript kernels: no call joins the product before it, see isJoinedCall.)
  const expectedStageMs = (doc: Doc, stage: string, perCall: (o: Op) => number) => {
    const ops = doc.opsByStage[stage].reduce((s, o) => s + o.calls * 1000 + perCall(o), 0);
    const passes = stage === "prefill" ? 5000 + 100 * doc.promptIds.length + 2000 : (doc.steps.length - 1) * (5000 + 100 + 2000);
    return (ops + passes) / 1e6;
  };

  it("predicts a compute-bound machine from cycles alone, and labels the prediction", () => {
    const path = profileFile(synthetic(1e9, 1e30));
    const r = run([...args, "--machine", path]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    expect(doc.machine).toMatchObject({ source: "file", path, cpu: "Synthetic CPU" });
    for (const stage of ["prefill", "decode"]) {
      const got = doc.stages.find((s) => s.name === stage)!.predictedMs;
      expect(got).toBeCloseTo(expectedStageMs(doc, stage, (o) => o.cycles), 9);
    }
    expect(doc.opsByStage.decode.filter((o) => o.cycles > 0).every((o) => o.bound !== "memory")).toBe(true);
    expect(doc.steps.reduce((s, x) => s + x.predictedMs, 0)).toBeCloseTo(doc.stages[1].predictedMs + doc.stages[2].predictedMs, 9);
  });

  it("predicts a memory-bound machine from bytes alone; the cycles never change", () => {
    const r = run([...args, "--machine", profileFile(synthetic(1e30, 1e9))]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as Doc;
    for (const stage of ["prefill", "decode"]) {
      expect(doc.stages.find((s) => s.name === stage)!.predictedMs).toBeCloseTo(expectedStageMs(doc, stage, (o) => o.bytes), 9);
    }
    const own = JSON.parse(run(args).stdout) as Doc;
    expect(own.totals.cycles).toBe(doc.totals.cycles);
    expect(own.machine.source).not.toBe("file");
  });

  it("the text report says the prediction is for another machine", () => {
    const r = run(["--model", HOT, "--input-ids", "5,17", "--max-new-tokens", "3", "--machine", profileFile(synthetic(1e9, 1e10))]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/PREDICTED FOR ANOTHER MACHINE \(.*machine\.json\): Synthetic CPU, 8 cores, node 99, 2 threads/);
    expect(r.stderr).toMatch(/measured here/);
  });

  it.each([
    ["not JSON", "{ nope", /is not valid JSON/],
    ["a missing field", { ...synthetic(1e9, 1e10), passNs: undefined }, /lacks a valid passNs/],
  ])("a profile that is %s: one line naming the file, exit 2", (_, content, message) => {
    const path = profileFile(content);
    const r = run([...args, "--machine", path]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(path);
    expect(r.stderr).toMatch(message);
  });
});

describe("generate.ts --predict-only", () => {
  const common = ["--model", HOT, "--input-ids", "5,17,250,3", "--max-new-tokens", "6", "--ignore-eos", "--json"];

  it("predicts what a run predicts, stage for stage and op for op, from the same counts", () => {
    const path = profileFile(synthetic(1e9, 1e10));
    const ran = JSON.parse(run([...common, "--machine", path]).stdout) as Doc & { ops: Op[] };
    const only = run([...common, "--machine", path, "--predict-only"]);
    expect(only.code, only.stderr).toBe(0);
    const predicted = JSON.parse(only.stdout) as { stages: { name: string; tokens: number; cycles: number; predictedMs: number }[]; ops: (Op & { op: string })[] };
    for (const stage of ["prefill", "decode"]) {
      const [p, r] = [predicted.stages.find((s) => s.name === stage)!, ran.stages.find((s) => s.name === stage)!];
      expect(p.cycles).toBe(r.cycles);
      expect(p.predictedMs).toBeCloseTo(r.predictedMs, 9);
    }
    expect(predicted.stages.map((s) => s.tokens)).toEqual([4, 5]);
    const counts = (ops: readonly (Op & { op?: string })[]) => ops.map((o) => `${(o as { op: string }).op} ${o.calls} ${o.cycles} ${o.bytes}`).sort();
    expect(counts(predicted.ops)).toEqual(counts(ran.ops));
  });

  it("predicts gpt2-xl without its weights: its cycles from its shapes, the size named, the extrapolation said", () => {
    const r = run(["--random-weights", "gpt2-xl", "--dtype", "q8", "--input-ids", "1,2", "--max-new-tokens", "2", "--predict-only", "--json", "--machine", profileFile(synthetic(1e9, 1e10))]);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { model: { name: string; parameters: number }; stages: { name: string; cycles: number }[]; machine: { extrapolated: string } };
    expect(doc.model).toMatchObject({ name: "gpt2-xl", parameters: 1_557_611_200 });
    // The prompt's pass: 2 rows through 48 blocks of 12·1600² weight MACs, attention over 1 + 2
    // visible pairs × 1600 per block (scores and values), the LM head's one row, the 2 rows' adds,
    // norms, GELU and the rest: at least the products, and less than 1% more.
    const products = 2 * 48 * 12 * 1600 * 1600 + 1600 * 50257;
    const prefill = doc.stages.find((s) => s.name === "prefill")!.cycles;
    expect(prefill).toBeGreaterThan(products);
    expect(prefill).toBeLessThan(products * 1.01);
    // q8 streams 1.0625 bytes per weight: 1,554,971,200 × 1.0625 B = 1.54 GiB, past the synthetic profile's 100 MB
    expect(doc.machine.extrapolated).toBe("width 1600 outside the profile's ladder (16–96); 1.54 GiB past its streams");
  });

  it("on this machine's profile, rescales it by a calibration at the nearest rung's width (all three factors), and says so", () => {
    const env = { ...process.env, GPT2_CYCLES_CACHE: mkdtempSync(join(tmpdir(), "cache-")) };
    const r = run([...common, "--predict-only"], env);
    expect(r.code, r.stderr).toBe(0);
    const doc = JSON.parse(r.stdout) as { machine: { source: string; drift: { memory: number; compute: number; calls: number } } };
    expect(doc.machine.source).toBe("measured");
    // Measured, so no factor is left at the 1 an unmeasured roof keeps; calls held to 1/20…20.
    for (const factor of [doc.machine.drift.memory, doc.machine.drift.compute]) expect(factor).not.toBe(1);
    expect(doc.machine.drift.calls).toBeGreaterThanOrEqual(0.05);
    expect(doc.machine.drift.calls).toBeLessThanOrEqual(20);
    const text = run(common.filter((a) => a !== "--json").concat("--predict-only"), env);
    expect(text.stderr).toMatch(/^PREDICTED ONLY: no weights loaded, nothing generated · f32 weights/m);
    expect(text.stderr).toMatch(/rescaled by a calibration at its nearest rung's width$/m);
    for (const line of text.stderr.split("\n")) expect(line.length, line).toBeLessThanOrEqual(100);
  });

  it.each([
    ["--trace", ["--trace", "t.json"], /--predict-only runs nothing, so there is no trace or report of a run/],
    ["--report", ["--report", "r.html"], /--predict-only runs nothing, so there is no trace or report of a run/],
    ["several sequences", ["--num-return-sequences", "2", "--do-sample"], /--predict-only predicts one sequence/],
    ["a prompt past the context", ["--max-new-tokens", "60"], /exceed|context/],
  ])("with %s: one line, exit 2", (_, extra, message) => {
    const dir = mkdtempSync(join(tmpdir(), "predict-only-"));
    const r = spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", ...common, "--predict-only", ...extra.map((x) => (x.includes(".") ? join(dir, x) : x))], { cwd: ROOT, encoding: "utf8", timeout: 120_000 });
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe("the profile cache", () => {
  const args = ["--model", HOT, "--input-ids", "5,17,250,3", "--max-new-tokens", "4", "--json"];

  it("measures once per key with one notice, then reuses it; another setting is another profile", () => {
    const env = { ...process.env, GPT2_CYCLES_CACHE: mkdtempSync(join(tmpdir(), "cache-")) };
    const first = run(args, env);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr.trim().split("\n")).toEqual([expect.stringMatching(/^measuring this machine once for auto, \d+ thread\(s\), f32 \(every GPT-2 size; ~20 s, then cached\)$/)]);
    expect(JSON.parse(first.stdout).machine.source).toBe("measured");
    const second = run(args, env);
    expect(second.stderr).toBe("");
    const doc = JSON.parse(second.stdout);
    expect(doc.machine).toMatchObject({ source: "cache", path: expect.stringContaining(env.GPT2_CYCLES_CACHE) });
    expect(JSON.parse(run([...args, "--threads", "1"], env).stdout).machine.source).toBe("measured");
  });

  it("an unwritable cache costs a notice, not the run", () => {
    const file = profileFile("not a directory");
    const r = run(args, { ...process.env, GPT2_CYCLES_CACHE: file });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/cannot write .*: the profile serves this run only/);
    expect(JSON.parse(r.stdout).machine.source).toBe("measured");
  });

  it("a damaged cached profile is measured again", () => {
    const env = { ...process.env, GPT2_CYCLES_CACHE: mkdtempSync(join(tmpdir(), "cache-")) };
    const doc = JSON.parse(run(args, env).stdout);
    writeFileSync(doc.machine.path, "{ damaged");
    const again = run(args, env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/cached machine profile is out of date or damaged/);
    expect(JSON.parse(again.stdout).machine.source).toBe("measured");
  });
});

describe("Ctrl-C", () => {
  it("stops after the current token, prints the report of what ran, exits 130", async () => {
    // GPT-2 small's shapes (random weights): tokens take milliseconds, so the signal lands mid-run.
    const child = spawn(process.execPath, ["--import", "tsx", "src/generate.ts", "--random-weights", "--input-ids", "464", "--max-new-tokens", "600", "--ignore-eos"], { cwd: ROOT });
    let events = 0;
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => {
      child.stdout.on("data", () => {
        // The prompt, then two pieces of text: interrupt mid-run.
        if (++events === 3) child.kill("SIGINT");
      });
      child.on("close", resolve);
    });
    expect(code).toBe(130);
    expect(stderr).toMatch(/generated \d+ \(interrupted \(Ctrl-C, or Stop in the playground\)\)/);
    const generated = Number(/generated (\d+)/.exec(stderr)![1]);
    expect(generated).toBeGreaterThanOrEqual(2);
    expect(generated).toBeLessThan(600);
    expect(stderr).toMatch(/^decode /m);
  });
});
