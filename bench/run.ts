// Matmul kernel benchmarks and GPT-2 small end to end.
//
//   npm run bench                 full run (about ten minutes on two cores)
//   npm run bench -- --quick      fewer shapes, shorter budgets (under a minute)
//   npm run bench -- --json       the results as one JSON document on stdout
//   npm run bench -- --predict    only the prediction check: predicted vs measured per stage
//                                 (add --cached-profiles to reuse one profile per setting)
//   npm run bench -- --playground only the playground against the terminal (headless Chromium)
//   npm run bench -- --sampling   only the token picker's time per pick
//   npm run bench -- --threads    only the threads: 1 and 2 threads, and 2 with a core busy
//   npm run bench -- --node 24    the same on Node.js 24 (fetched from the npm registry once)
//
// Every kernel is checked against the naive kernel on the same inputs before it is timed.
// GFLOPS counts 2 floating-point operations per multiply-accumulate (one cycle in our cost
// model); ns/cycle is the article's cycle_time for that kernel on this machine.
import { execFileSync, spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { availableParallelism, cpus } from "node:os";
import { Bench } from "tinybench";
import { type FlagSpec, flagHelp, parseFlags } from "../src/cli/args.ts";
import { floatToBfloat16, bfloat16ToFloat } from "../src/io/half.ts";
import { KERNELS } from "../src/kernels/engine.ts";
import { PackedMatrix, type WeightDtype, bytesPerWeight } from "../src/kernels/packed-matrix.ts";
import { Q8_BLOCK, paddedK, quantizeActivations } from "../src/kernels/q8.ts";
import { Plan } from "../src/kernels/plan.ts";
import { ThreadTeam } from "../src/kernels/threads.ts";
import { arena, configsFor, heap } from "./kernel-configs.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { playgroundBenchmark, playgroundTable } from "./playground.ts";
import { predictBenchmark, predictTable } from "./predict.ts";
import { memoryTable, threadsBenchmark, threadsTable } from "./threads.ts";
import { table } from "../src/report/format.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { Random } from "../src/util/random.ts";
import { GREEDY, type SamplingOptions, TokenPicker } from "../src/run/sampling.ts";
import { userCacheDir } from "../src/io/cache-dir.ts";
import { RUNTIME_PACKAGES, ensureRuntime } from "../scripts/runtime-packages.ts";

const FLAGS: Record<string, FlagSpec> = {
  quick: { kind: "boolean", help: "fewer shapes and shorter timing budgets (under a minute)" },
  json: { kind: "boolean", help: "print the results as one JSON document on stdout (tables go to stderr)" },
  predict: { kind: "boolean", help: "only check the roofline prediction against runs of generate.ts (eight settings, three runs each)" },
  "cached-profiles": { kind: "boolean", help: "with --predict: measure each setting's profile once, then reuse it (as a cache would)" },
  family: { kind: "boolean", help: "with --predict: six settings across the GPT-2 sizes, on profiles measured with a core busy" },
  playground: { kind: "boolean", help: "only the playground against the terminal: decode tokens/s and first token, headless Chromium" },
  sampling: { kind: "boolean", help: "only the token picker: ms per pick on GPT-2 small's vocabulary" },
  threads: { kind: "boolean", help: "only the threads: decode and prefill on 1 and 2 threads, and on 2 with another program keeping a core busy" },
  "no-numpy": { kind: "boolean", help: "skip the numpy peer even when python3 has numpy" },
  node: { kind: "string", value: "22|24|26", help: "run the whole bench on that Node.js line (fetched from the npm registry once, as test:runtimes does)" },
  help: { kind: "boolean", help: "show this help" },
};

interface KernelResult {
  kernel: string;
  m: number;
  k: number;
  n: number;
  threads: number;
  dtype: WeightDtype;
  gflops: number;
  nsPerCycle: number;
  /** Weight bytes read per second. */
  gbPerSec: number;
  /** Relative margin of error of the mean time (95%), in %. */
  rmePercent: number;
  speedupOverNaive: number | null;
  /** The same, cycling through more weight copies than the caches hold (decode shapes only). */
  streamed: { gflops: number; gbPerSec: number } | null;
}

const FULL_SHAPES: [string, number, number, number][] = [
  ["article 2×2", 2, 2, 2],
  ["decode qkv", 1, 768, 2304], ["decode mlp up", 1, 768, 3072], ["decode mlp down", 1, 3072, 768], ["decode lm head", 1, 768, 50257],
  ["batch of 8 mlp up", 8, 768, 3072],
  ["prefill qkv", 128, 768, 2304], ["prefill mlp up", 128, 768, 3072], ["prefill mlp down", 128, 3072, 768],
  ["square", 1024, 1024, 1024],
];
const QUICK_SHAPES = FULL_SHAPES.filter(([name]) => ["article 2×2", "decode mlp up", "decode lm head", "prefill mlp up"].includes(name));
/** Weight bytes to cycle through when timing a streamed decode product: well past any L3 here. */
const STREAM_BYTES = 96 * 2 ** 20;

function random(n: number, seed: number): Float32Array {
  const rng = new Random(seed);
  const out = new Float32Array(new SharedArrayBuffer(4 * n));
  for (let i = 0; i < n; i++) out[i] = rng.next() - 0.5;
  return out;
}

/** Rows of a as the q8 kernels see them: quantized per block of 32, then scaled back. */
function quantizedActivations(a: Float32Array, m: number, k: number): Float32Array {
  const kp = paddedK(k);
  const bytes = new Int8Array(m * kp);
  const scales = new Float32Array((m * kp) / Q8_BLOCK);
  quantizeActivations(a, m, k, bytes, scales, new Int32Array(scales.length));
  return Float32Array.from({ length: m * k }, (_, e) => {
    const [i, p] = [Math.floor(e / k), e % k];
    return bytes[i * kp + p] * scales[(i * kp) / Q8_BLOCK + Math.floor(p / Q8_BLOCK)];
  });
}

function maxDiff(a: Float32Array, b: Float32Array): number {
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
}

async function timeIt(name: string, fn: () => void, onceMs: number, budgetMs: number): Promise<{ meanMs: number; rme: number }> {
  const iterations = Math.max(2, Math.min(64, Math.floor(budgetMs / Math.max(onceMs, 1e-3))));
  const bench = new Bench({ time: budgetMs, iterations, warmupIterations: 2, warmupTime: Math.min(budgetMs / 4, 200) });
  bench.add(name, fn);
  await bench.run();
  const r = bench.tasks[0].result;
  if (r === undefined || !("latency" in r)) throw new Error(`${name}: the benchmark did not complete`);
  return { meanMs: r.latency.mean, rme: r.latency.rme };
}

async function kernelBenchmarks(quick: boolean, log: (s: string) => void): Promise<KernelResult[]> {
  const results: KernelResult[] = [];
  const team = new ThreadTeam(nodePlatform, 2, heap.memory);
  await team.started;
  const teamPlan = { team, plan: new Plan() };
  const budget = quick ? 60 : 400;
  for (const [label, m, k, n] of quick ? QUICK_SHAPES : FULL_SHAPES) {
    const a = random(m * k, 1);
    const b = new Tensor(random(k * n, 2), [k, n]);
    const bf16 = new Tensor(Float32Array.from(b.data, (v) => bfloat16ToFloat(floatToBfloat16(v))), [k, n]);
    const t0 = performance.now();
    const f32Ref = new Float32Array(m * n);
    KERNELS[0].fn!(a, b.data, f32Ref, m, k, n, 0, n);
    const naiveOnce = performance.now() - t0;
    const reference = (left: Float32Array, right: Float32Array) => {
      const ref = new Float32Array(m * n);
      KERNELS[0].fn!(left, right, ref, m, k, n, 0, n);
      return ref;
    };
    // q8: what the integers stand for — the weights dequantized, the activations quantized and back
    const refs: Record<WeightDtype, Float32Array> = { f32: f32Ref, bf16: reference(a, bf16.data), q8: reference(quantizedActivations(a, m, k), PackedMatrix.pack(b, 8, "q8").unpack().data) };
    const copies = m <= 8 ? Math.min(quick ? 8 : 16, Math.max(2, Math.ceil(STREAM_BYTES / (4 * k * n)))) : 1;
    arena.reset(copies * 8 * (Math.ceil(n / 8) * 8) * paddedK(k) + 4 * (m * k + m * (n + 8)) + 2 * m * paddedK(k) + 8192);
    const rows: KernelResult[] = [];
    const prepared = new Map<string, unknown>();
    for (const config of configsFor(teamPlan)) {
      const run = config.setup(b, copies, prepared);
      const out = new Float32Array(m * n).fill(NaN);
      const s0 = performance.now();
      run(a, out, 0);
      const once = config.kernel === "naive" ? naiveOnce : performance.now() - s0;
      const err = maxDiff(out, refs[config.dtype]);
      const name = `${config.kernel} ${config.dtype} × ${config.threads}`;
      if (!(err <= 2e-7 * k + 1e-6)) throw new Error(`${name} on ${m}×${k}×${n} differs from naive by ${err}: not timing a wrong kernel`);
      const macs = m * k * n;
      const weightBytes = k * n * bytesPerWeight(config.dtype);
      const { meanMs, rme } = await timeIt(name, () => run(a, out, 0), once, budget);
      let streamed: KernelResult["streamed"] = null;
      if (copies > 1 && config.kernel !== "naive") {
        let c = 0;
        const s = await timeIt(`${name} streamed`, () => run(a, out, (c = (c + 1) % copies)), once, budget);
        streamed = { gflops: (2 * macs) / (s.meanMs * 1e6), gbPerSec: weightBytes / (s.meanMs * 1e6) };
      }
      rows.push({ kernel: config.kernel, m, k, n, threads: config.threads, dtype: config.dtype, gflops: (2 * macs) / (meanMs * 1e6), nsPerCycle: (meanMs * 1e6) / macs, gbPerSec: weightBytes / (meanMs * 1e6), rmePercent: rme, speedupOverNaive: null, streamed });
    }
    const naive = rows.find((r) => r.kernel === "naive")!;
    for (const r of rows) r.speedupOverNaive = r.gflops / naive.gflops;
    log(`\n${label}: ${m}×${k}×${n} (${(m * k * n / 1e6).toFixed(m * k * n < 1e4 ? 6 : 1)} M cycles per call)${copies > 1 ? `; streamed = cycling through ${copies} copies of B` : ""}`);
    log(table(
      ["  kernel", "dtype", "thr", "GFLOPS", "GB/s", "ns/cycle", "vs naive", "±", ...(copies > 1 ? ["streamed GFLOPS", "GB/s"] : [])],
      rows.map((r) => [`  ${r.kernel}`, r.dtype, String(r.threads), r.gflops.toFixed(2), r.gbPerSec.toFixed(1), r.nsPerCycle.toFixed(3), `${r.speedupOverNaive!.toFixed(1)}×`, `${r.rmePercent.toFixed(1)}%`,
        ...(copies > 1 ? [r.streamed ? r.streamed.gflops.toFixed(2) : "—", r.streamed ? r.streamed.gbPerSec.toFixed(1) : "—"] : [])]),
      2,
    ));
    results.push(...rows);
  }
  await team.close();
  return results;
}

interface EndToEnd {
  kernel: string;
  dtype: WeightDtype;
  threads: number;
  prefillTokens: number;
  prefillMs: number;
  prefillTokensPerSec: number;
  decodePrompt?: number;
  decodeSteps: number;
  decodeTokensPerSec: number;
  peakRssBytes?: number;
}

/** GPT-2 small with random weights, in a fresh process per configuration (its own peak RSS). */
function endToEnd(kernel: string, dtype: WeightDtype, threads: number, quick: boolean): EndToEnd {
  const script = new URL("./end-to-end.ts", import.meta.url).pathname;
  const out = execFileSync(process.execPath, [...process.execArgv, script, String(threads), quick ? "quick" : "full", dtype, kernel], { encoding: "utf8" });
  return JSON.parse(out);
}

/** numpy + OpenBLAS, for the same shapes (kernels) and the same GPT-2 work (end to end), when python3 has numpy. */
function numpyEnv(threads: number): NodeJS.ProcessEnv {
  // OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, set on some of these machines for old OpenBLAS builds,
  // slow a current one down: unset for these commands alone.
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads), OMP_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  return env;
}

interface NumpyResult {
  m: number;
  k: number;
  n: number;
  threads: number;
  gflops: number;
}

function numpyKernels(shapes: [string, number, number, number][], quick: boolean): NumpyResult[] {
  const script = `
import json, sys, time, numpy as np
shapes = json.loads(sys.argv[1]); budget = float(sys.argv[2]); out = []
for m, k, n in shapes:
    rng = np.random.default_rng(0)
    a = rng.random((m, k), dtype=np.float32) - 0.5; b = rng.random((k, n), dtype=np.float32) - 0.5
    a @ b; reps = 0; t0 = time.perf_counter()
    while time.perf_counter() - t0 < budget: a @ b; reps += 1
    out.append({"m": m, "k": k, "n": n, "gflops": 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9})
print(json.dumps(out))`;
  const results: NumpyResult[] = [];
  for (const threads of [1, 2]) {
    const r = spawnSync("python3", ["-c", script, JSON.stringify(shapes.map(([, m, k, n]) => [m, k, n])), quick ? "0.1" : "0.4"], { env: numpyEnv(threads), encoding: "utf8" });
    if (r.status !== 0) throw new Error(`numpy peer failed: ${r.stderr.trim().split("\n").at(-1)}`);
    for (const x of JSON.parse(r.stdout) as Omit<NumpyResult, "threads">[]) results.push({ ...x, threads });
  }
  return results;
}

function numpyEndToEnd(threads: number, quick: boolean): EndToEnd {
  const script = new URL("./numpy_gpt2.py", import.meta.url).pathname;
  const r = spawnSync("python3", [script, quick ? "32" : "128", quick ? "16" : "64"], { env: numpyEnv(threads), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`numpy GPT-2 failed: ${r.stderr.trim().split("\n").at(-1)}`);
  return { kernel: "numpy", dtype: "f32", threads, ...JSON.parse(r.stdout) };
}

interface Batch {
  sequences: number;
  steps: number;
  msPerStep: number;
  tokensPerSec: number;
}

/** Decode steps of 1, 2, 4, 8 and 16 sequences at once, in a fresh process. */
function batchedDecode(dtype: WeightDtype, threads: number, quick: boolean): { dtype: WeightDtype; threads: number; batches: Batch[] } {
  const script = new URL("./end-to-end.ts", import.meta.url).pathname;
  const out = execFileSync(process.execPath, [...process.execArgv, script, String(threads), quick ? "quick" : "full", dtype, "auto", "batch"], { encoding: "utf8" });
  return JSON.parse(out);
}

function numpyBatches(threads: number, quick: boolean): Batch[] {
  const script = new URL("./numpy_gpt2.py", import.meta.url).pathname;
  const r = spawnSync("python3", [script, "batch", quick ? "8" : "32"], { env: numpyEnv(threads), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`numpy batched decode failed: ${r.stderr.trim().split("\n").at(-1)}`);
  return JSON.parse(r.stdout).batches;
}

/** TokenPicker on a GPT-2-sized vocabulary, flat and peaked logits, for the usual settings. */
function samplingBenchmark(quick: boolean): { setting: string; flatMs: number; peakedMs: number }[] {
  const vocab = 50257;
  const rng = new Random(1);
  const flat = Float32Array.from({ length: vocab }, () => (rng.next() - 0.5) * 2);
  const peaked = Float32Array.from({ length: vocab }, () => -3 * Math.log(-Math.log(rng.next() + 1e-12)) - 10);
  const settings: [string, SamplingOptions][] = [
    ["greedy", GREEDY],
    ["--do-sample", { doSample: true, temperature: 1, topK: 0, topP: 1 }],
    ["--do-sample --top-k 50 --temperature 0.8", { doSample: true, temperature: 0.8, topK: 50, topP: 1 }],
    ["--do-sample --top-p 0.9", { doSample: true, temperature: 1, topK: 0, topP: 0.9 }],
  ];
  const time = (run: (picker: TokenPicker, draws: Random) => void) => {
    const picker = new TokenPicker(vocab);
    const draws = new Random(5);
    for (let i = 0; i < 100; i++) run(picker, draws);
    let best = Infinity;
    for (let rep = 0; rep < (quick ? 2 : 5); rep++) {
      const t0 = performance.now();
      for (let i = 0; i < 100; i++) run(picker, draws);
      best = Math.min(best, (performance.now() - t0) / 100);
    }
    return best;
  };
  const rows = settings.map(([setting, o]) => ({
    setting, flatMs: time((p, d) => p.pick(flat, o, d)), peakedMs: time((p, d) => p.pick(peaked, o, d)),
  }));
  // What the report adds to every step: the five most likely tokens.
  return [...rows, { setting: "the report's top 5 (every step)", flatMs: time((p) => p.top(flat, 5)), peakedMs: time((p) => p.top(peaked, 5)) }];
}

function samplingTable(rows: ReturnType<typeof samplingBenchmark>): string {
  return "Picking one token from GPT-2 small's 50,257 logits (ms per pick, best of 5 runs of 100): flat logits as random\n" +
    "weights give, and peaked ones (Gumbel noise × 3) like a trained model's\n" +
    table(["setting", "flat", "peaked"], rows.map((r) => [r.setting, r.flatMs.toFixed(3), r.peakedMs.toFixed(3)]), 2);
}

/**
 * The CPU's family and model, and its byte dot-product extensions, where Linux tells them: a
 * shared machine here has run on more than one kind of host, and the q8 kernels' speed follows
 * the instructions V8 can use for WebAssembly's integer dot product.
 */
function cpuDetail(): string {
  let info: string;
  try {
    info = readFileSync("/proc/cpuinfo", "utf8");
  } catch {
    return "";
  }
  const field = (name: string) => new RegExp(`^${name}\\s*:\\s*(.*)$`, "m").exec(info)?.[1] ?? "?";
  const flags = field("flags").split(" ");
  const dots = ["avx_vnni", "avx512_vnni"].filter((f) => flags.includes(f));
  return ` (family ${field("cpu family")} model ${field("model")}; ${dots.length === 0 ? "no VNNI" : dots.join(", ")})`;
}

async function main(): Promise<void> {
  const f = parseFlags(process.argv.slice(2), FLAGS);
  if (f.help === true) {
    process.stdout.write(`Matmul kernel and end-to-end benchmarks.\n\nusage: npm run bench -- [flags]\n\n${flagHelp(FLAGS)}\n`);
    return;
  }
  if (typeof f.node === "string") {
    // The same bench, re-run by another Node.js: its V8 generates different code for the same kernels.
    const p = RUNTIME_PACKAGES.find((r) => r.label === `node${f.node}`);
    if (p === undefined) throw new Error(`--node must be one of ${RUNTIME_PACKAGES.filter((r) => r.kind === "node").map((r) => r.label.slice(4)).join(", ")}, got ${f.node}`);
    const { bin } = ensureRuntime(p, userCacheDir("runtimes"), (line) => process.stderr.write(`${line}\n`));
    const args = process.argv.slice(2).filter((a, i, all) => a !== "--node" && all[i - 1] !== "--node" && !a.startsWith("--node="));
    const r = spawnSync(bin, [...process.execArgv, new URL(import.meta.url).pathname, ...args], { stdio: "inherit" });
    process.exit(r.status ?? 1);
  }
  const quick = f.quick === true;
  const log = (s: string) => (f.json === true ? process.stderr : process.stdout).write(`${s}\n`);
  const machine = `${cpus()[0]?.model ?? "unknown CPU"}${cpuDetail()}, ${availableParallelism()} cores, Node ${process.version}`;
  log(`machine: ${machine}`);
  if (f.predict === true) {
    const family = f.family === true;
    const rows = predictBenchmark((line) => process.stderr.write(`${line}\n`), f["cached-profiles"] === true, family);
    const about = family ? "the GPT-2 family, random weights, profiles measured with a core busy, runs on a quiet machine" : "GPT-2 small, random weights; greedy unless --do-sample";
    log(`\nThe roofline prediction against the run it predicts (${about})\n${predictTable(rows, family ? 11 : 10)}`);
    if (f.json === true) process.stdout.write(`${JSON.stringify({ machine, predict: rows }, null, 1)}\n`);
    return;
  }
  const threadsHeading = "GPT-2 small, random weights: 1 and 2 threads, 2 with another program on a core (medians of interleaved runs)";
  if (f.threads === true) {
    const rows = threadsBenchmark(quick, (line) => process.stderr.write(`${line}\n`));
    log(`\n${threadsHeading}\n${threadsTable(rows)}\n\n${memoryTable(rows)}`);
    if (f.json === true) process.stdout.write(`${JSON.stringify({ machine, threads: rows }, null, 1)}\n`);
    return;
  }
  if (f.sampling === true) {
    const rows = samplingBenchmark(quick);
    log(`\n${samplingTable(rows)}`);
    if (f.json === true) process.stdout.write(`${JSON.stringify({ machine, sampling: rows }, null, 1)}\n`);
    return;
  }
  if (f.playground === true) {
    const rows = await playgroundBenchmark((line) => process.stderr.write(`${line}\n`));
    log(`\nGPT-2 small, random weights, 16-token prompt, 64 new tokens: decode in the page and in the terminal (medians of 3; each run in brackets)\n${playgroundTable(rows)}`);
    if (f.json === true) process.stdout.write(`${JSON.stringify({ machine, playground: rows }, null, 1)}\n`);
    return;
  }
  log("GFLOPS = 2 × multiply-accumulates / s; GB/s = weight bytes read / s; ns/cycle = the article's cycle_time;");
  log("± = 95% margin of the mean time. Every kernel is checked against naive before it is timed.");

  const results = await kernelBenchmarks(quick, log);
  const shapes = quick ? QUICK_SHAPES : FULL_SHAPES;
  const hasNumpy = f["no-numpy"] !== true && spawnSync("python3", ["-c", "import numpy"]).status === 0;
  const numpy = hasNumpy ? numpyKernels(shapes, quick) : [];

  const pick = (m: number, k: number, n: number, threads: number, accept: (r: KernelResult) => boolean) =>
    results.filter((r) => r.m === m && r.k === k && r.n === n && r.threads === threads && accept(r)).reduce<KernelResult | null>((x, y) => (x === null || y.gflops > x.gflops ? y : x), null);
  const isSimd = (r: KernelResult) => r.kernel.startsWith("simd");
  const ts = (r: KernelResult) => !isSimd(r);
  const gf = (r: KernelResult | null, streamed = false) => (r === null ? "—" : (streamed && r.streamed ? r.streamed.gflops : r.gflops).toFixed(1));
  log("\nSummary: the TypeScript ladder (GFLOPS of the best TypeScript kernel)");
  // (the TypeScript kernels run on one thread: the engine hands threads to the SIMD kernels only)
  log(table(["shape", "best, 1 thread", "vs naive"], shapes.map(([label, m, k, n]) => {
    const one = pick(m, k, n, 1, ts)!;
    return [`${label} ${m}×${k}×${n}`, `${one.kernel} ${one.gflops.toFixed(2)}`, `${one.speedupOverNaive!.toFixed(1)}×`];
  })));
  log("\nSummary: WebAssembly SIMD (GFLOPS of the best SIMD kernel — for q8, GOPS: 2 integer operations per");
  log("multiply-accumulate, activations quantized in each call; decode shapes (one row or a batch of 8) streamed, as a decode step reads them)");
  log(table(["shape", "f32 1t", "f32 2t", "bf16 1t", "bf16 2t", "q8 1t", "q8 2t", "np 1t", "np 2t", "f32 ÷ np", "q8 ÷ np"], shapes.map(([label, m, k, n]) => {
    const streamed = m <= 8;
    const best = (t: number, d: WeightDtype) => pick(m, k, n, t, (r) => isSimd(r) && r.dtype === d);
    const np1 = numpy.find((r) => r.m === m && r.k === k && r.n === n && r.threads === 1);
    const np2 = numpy.find((r) => r.m === m && r.k === k && r.n === n && r.threads === 2);
    const ratio = (ours: KernelResult | null, peer: NumpyResult | undefined) => (ours && peer ? ((streamed && ours.streamed ? ours.streamed.gflops : ours.gflops) / peer.gflops).toFixed(2) : "—");
    const both = (d: WeightDtype) => `${ratio(best(1, d), np1)} / ${ratio(best(2, d), np2)}`;
    return [`${label} ${m}×${k}×${n}`, ...(["f32", "bf16", "q8"] as const).flatMap((d) => [1, 2].map((t) => gf(best(t, d), streamed))),
      np1 ? np1.gflops.toFixed(1) : "—", np2 ? np2.gflops.toFixed(1) : "—", both("f32"), both("q8")];
  })));
  log(hasNumpy ? "numpy: python3 on PATH, float32 matmul (in cache: numpy's figures are not streamed), OPENBLAS_NUM_THREADS = threads" : "numpy: skipped (no python3 with numpy, or --no-numpy)");

  const configs: [string, WeightDtype, number][] = quick
    ? [["auto", "f32", 2], ["auto", "bf16", 2], ["auto", "q8", 2]]
    : [["packed", "f32", 1], ["packed", "f32", 2], ["auto", "f32", 1], ["auto", "f32", 2], ["auto", "bf16", 1], ["auto", "bf16", 2], ["auto", "q8", 1], ["auto", "q8", 2]];
  const e2e = configs.map(([kernel, dtype, threads]) => endToEnd(kernel, dtype, threads, quick));
  const peers = hasNumpy ? (quick ? [2] : [1, 2]).map((t) => numpyEndToEnd(t, quick)) : [];
  log(`\nGPT-2 small, random weights, end to end (fresh process each): prefill of ${e2e[0].prefillTokens} tokens, ${e2e[0].decodeSteps} decode steps after a 16-token prompt`);
  log(table(
    ["kernel", "dtype", "threads", "prefill", "prefill tok/s", "÷ numpy", "decode tok/s", "÷ numpy", "peak RSS"],
    [...e2e, ...peers].map((e) => {
      const peer = e.kernel === "numpy" ? undefined : peers.find((p) => p.threads === e.threads);
      const vs = (ours: number, theirs: number | undefined) => (theirs === undefined ? "—" : `${(ours / theirs).toFixed(2)}×`);
      return [e.kernel === "auto" ? "simd (auto)" : e.kernel, e.dtype, String(e.threads), `${e.prefillMs.toFixed(0)} ms`, e.prefillTokensPerSec.toFixed(1), vs(e.prefillTokensPerSec, peer?.prefillTokensPerSec),
        e.decodeTokensPerSec.toFixed(1), vs(e.decodeTokensPerSec, peer?.decodeTokensPerSec), e.peakRssBytes ? `${(e.peakRssBytes / 2 ** 20).toFixed(0)} MiB` : "—"];
    }),
    2,
  ));

  const batched = (quick ? [["f32", 2]] : [["f32", 2], ["q8", 2]] as [WeightDtype, number][]).map(([dtype, threads]) => batchedDecode(dtype as WeightDtype, threads as number, quick));
  const numpyBatched = hasNumpy ? numpyBatches(2, quick) : null;
  log(`\nBatched decode (--num-return-sequences): one step decodes every sequence; ${batched[0].batches[0].steps} steps after a shared 16-token prompt, 2 threads`);
  log(table(
    ["sequences", ...batched.flatMap((b) => [`${b.dtype} tok/s`, "ms/step", "÷ one"]), ...(numpyBatched ? ["numpy tok/s", "ms/step", "÷ one"] : [])],
    batched[0].batches.map((_, i) => {
      const cells = (rows: Batch[]) => [rows[i].tokensPerSec.toFixed(1), rows[i].msPerStep.toFixed(1), `${(rows[i].tokensPerSec / rows[0].tokensPerSec).toFixed(2)}×`];
      return [String(batched[0].batches[i].sequences), ...batched.flatMap((b) => cells(b.batches)), ...(numpyBatched ? cells(numpyBatched) : [])];
    }),
    2,
  ));

  const threads = threadsBenchmark(quick, (line) => process.stderr.write(`${line}\n`));
  log(`\n${threadsHeading}\n${threadsTable(threads)}\n\n${memoryTable(threads)}`);

  const sampling = samplingBenchmark(quick);
  log(`\n${samplingTable(sampling)}`);
  if (f.json === true) process.stdout.write(`${JSON.stringify({ machine, quick, results, numpy, endToEnd: e2e, numpyEndToEnd: peers, batched, numpyBatched, threads, sampling }, null, 1)}\n`);
}

await main();
