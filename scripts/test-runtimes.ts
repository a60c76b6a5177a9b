// Runs the project on every maintained JavaScript runtime and prints one table.
//
//   npm run test:runtimes [-- --only node26,bun] [--cache DIR] [--no-suite]
//
// Node 22, 24 and 26, Bun and Deno come from the npm registry (fetched once into the per-user
// cache). Each Node line runs the whole test suite; every runtime, the default Node included,
// runs the end-to-end checks: the same ids and cycles as the default Node on a fixture and on
// random GPT-2 small, one stderr line and exit 2 for a bad flag, valid --trace/--report files,
// and the packed package's CLI (npm pack, installed offline; plain JavaScript) giving the same.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "../src/cli/args.ts";
import { userCacheDir } from "../src/io/cache-dir.ts";
import { table } from "../src/report/format.ts";
import { packAndInstall } from "./packed.ts";
import { FetchError, RUNTIME_PACKAGES, type RuntimePackage, ensureRuntime } from "./runtime-packages.ts";

const ROOT = join(import.meta.dirname, "..");
const FIXTURE = ["--model", "test/fixtures/tiny-hot", "--input-ids", "5,17,250,3", "--max-new-tokens", "12"];
/** Decode speed: the same settings on every runtime (random GPT-2 small, 16-token prompt, 2 threads). */
const SPEED = ["--random-weights", "--input-ids", Array.from({ length: 16 }, (_, i) => 464 + 7 * i).join(","), "--max-new-tokens", "32", "--threads", "2"];

const FLAGS: Record<string, FlagSpec> = {
  only: { kind: "string", value: "LIST", help: `runtimes to run, comma-separated (default all: ${RUNTIME_PACKAGES.map((p) => p.label).join(",")})` },
  cache: { kind: "string", value: "DIR", help: `where runtimes are kept (default ${userCacheDir("runtimes")})` },
  "no-suite": { kind: "boolean", help: "skip the Node lines' full test suites (end-to-end checks only)" },
  help: { kind: "boolean", help: "show this help" },
};

interface Runtime {
  label: string;
  version: string;
  /** argv that runs a TypeScript file of this project. */
  tsCommand: string[];
  /** argv that runs a JavaScript file (the packed package's). */
  jsCommand: string[];
  /** Directory to put first on PATH, so `node` in child processes is this one (Node lines). */
  nodeBinDir: string | null;
}

interface Result {
  command: string[];
  code: number;
  stdout: string;
  stderr: string;
}

/** Machine profiles for the checks' runs: measured afresh by each runtime's first run, kept out of the user's cache. */
const PROFILES = mkdtempSync(join(tmpdir(), "runtimes-profiles-"));
/** Where the package is packed and installed, once for every runtime. */
const PACKED = mkdtempSync(join(tmpdir(), "runtimes-package-"));

function run(command: string[], env: NodeJS.ProcessEnv = { ...process.env, GPT2_CYCLES_CACHE: PROFILES }, timeoutMs = 300_000): Result {
  const r = spawnSync(command[0], command.slice(1), { cwd: ROOT, env, encoding: "utf8", timeout: timeoutMs, maxBuffer: 64 * 2 ** 20 });
  return { command, code: r.status ?? -1, stdout: r.stdout ?? "", stderr: r.stderr ?? r.error?.message ?? "" };
}

/** stderr less the one notice each runtime's first run prints: measuring its machine profile. */
/** stderr less the notices a first run gives (measuring the profile; the tiny fixture is far below the profile's ladder). */
function noise(stderr: string): string {
  return stderr.split("\n").filter((l) => l !== "" && !l.startsWith("measuring this machine once") && !l.startsWith("prediction extrapolates:")).join("\n");
}

function jsCommand(kind: RuntimePackage["kind"], bin: string): string[] {
  return kind === "deno" ? [bin, "run", "-A"] : [bin];
}

function tsCommand(kind: RuntimePackage["kind"], bin: string): string[] {
  if (kind === "bun") return [bin];
  if (kind === "deno") return [bin, "run", "-A"];
  return [bin, "--import", "tsx"];
}

interface Checks {
  passed: number;
  failures: string[];
  tokensPerSec: number;
  relaxedSimd: boolean;
}

interface Reference {
  fixture: { ids: number[]; cycles: number };
  speed: { ids: number[]; cycles: number };
}

/** The end-to-end checks on one runtime, against the default Node's results. */
function endToEnd(rt: Runtime, ref: Reference | null, packedBin: string): Checks & { ref: Reference } {
  const failures: string[] = [];
  let passed = 0;
  const check = (name: string, ok: boolean, detail: string) => (ok ? passed++ : failures.push(`${name}: ${detail}`));
  const generate = (...args: string[]) => run([...rt.tsCommand, "src/generate.ts", ...args]);
  const json = (r: Result) => {
    try {
      return JSON.parse(r.stdout);
    } catch {
      return null;
    }
  };

  const fixture = generate(...FIXTURE, "--json");
  const doc = json(fixture);
  const got = { ids: doc?.generatedIds ?? [], cycles: doc?.totals?.cycles ?? -1 };
  const expected = ref?.fixture ?? got;
  check("fixture --json", fixture.code === 0 && noise(fixture.stderr) === "" && JSON.stringify(got) === JSON.stringify(expected),
    `exit ${fixture.code}, stderr ${JSON.stringify(fixture.stderr.slice(0, 200))}, ids ${JSON.stringify(got.ids)} cycles ${got.cycles} (expected ${JSON.stringify(expected.ids)} ${expected.cycles})`);

  const packed = json(run([...rt.jsCommand, packedBin, ...FIXTURE, "--json"]));
  const packedGot = { ids: packed?.generatedIds ?? [], cycles: packed?.totals?.cycles ?? -1 };
  check("packed CLI", JSON.stringify(packedGot) === JSON.stringify(expected), `ids ${JSON.stringify(packedGot.ids)} cycles ${packedGot.cycles} (expected ${JSON.stringify(expected.ids)} ${expected.cycles})`);

  const bogus = generate("--bogus");
  const lines = bogus.stderr.split("\n").filter((l) => l !== "");
  check("--bogus", bogus.code === 2 && lines.length === 1, `exit ${bogus.code}, stderr ${JSON.stringify(bogus.stderr)}`);

  const dir = mkdtempSync(join(tmpdir(), "runtimes-"));
  try {
    const files = generate(...FIXTURE, "--trace", join(dir, "trace.json"), "--report", join(dir, "report.html"));
    const noise = files.stderr.split("\n").filter((l) => /^(error|warning)\b|^\(node:\d+\)|deprecat/i.test(l.trim()));
    check("report to stderr", files.code === 0 && noise.length === 0, `exit ${files.code}, ${JSON.stringify(noise)}`);
    let spans = 0;
    try {
      spans = (JSON.parse(readFileSync(join(dir, "trace.json"), "utf8")).traceEvents as { ph: string; name: string }[]).filter((e) => e.ph === "X" && e.name.startsWith("matmul")).length;
    } catch {
      // no file or not JSON: spans stays 0
    }
    check("--trace", spans > 0, "no matmul spans in a JSON trace");
    let html = "";
    try {
      html = readFileSync(join(dir, "report.html"), "utf8");
    } catch {
      // no file: html stays empty
    }
    check("--report", /^<!doctype html>/i.test(html) && html.includes("<svg") && html.trimEnd().endsWith("</html>"), "not a complete HTML document with charts");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  const speed = generate(...SPEED, "--json");
  const s = json(speed);
  const speedGot = { ids: s?.generatedIds ?? [], cycles: s?.totals?.cycles ?? -1 };
  const speedExpected = ref?.speed ?? speedGot;
  check("GPT-2 small --json", speed.code === 0 && noise(speed.stderr) === "" && JSON.stringify(speedGot) === JSON.stringify(speedExpected),
    `exit ${speed.code}, stderr ${JSON.stringify(speed.stderr.slice(0, 200))}, cycles ${speedGot.cycles} (expected ${speedExpected.cycles})`);
  return {
    passed, failures,
    tokensPerSec: s?.totals?.decodeTokensPerSec ?? 0,
    relaxedSimd: s?.runtime?.relaxedSimd === true,
    ref: { fixture: got, speed: speedGot },
  };
}

/** The whole vitest suite under this Node: { passed, failed } from its summary line. */
function suite(rt: Runtime): { passed: number; failed: number; output: string } {
  const env = { ...process.env, PATH: `${rt.nodeBinDir}:${process.env.PATH}`, NO_COLOR: "1", FORCE_COLOR: "0" };
  const r = run([join(rt.nodeBinDir!, "node"), "node_modules/vitest/vitest.mjs", "run"], env, 900_000);
  const line = /^\s*Tests\s+(.*)$/m.exec(r.stdout)?.[1] ?? "";
  const count = (word: string) => Number(new RegExp(`(\\d+) ${word}`).exec(line)?.[1] ?? 0);
  const failed = count("failed") + (r.code !== 0 && count("failed") === 0 ? 1 : 0);
  return { passed: count("passed"), failed, output: r.stdout + r.stderr };
}

/**
 * vitest's account of what failed: its "Failed Tests" section (each test's name, assertion and
 * source line), up to 80 lines; a test name's "×" (1×768×50257) must not pass for a failure.
 */
function failureReport(output: string): string {
  const lines = output.split("\n");
  const start = lines.findIndex((l) => /Failed Tests \d+/.test(l) || /Unhandled Errors?/.test(l));
  if (start < 0) return lines.filter((l) => /^\s*(FAIL|×)\s/.test(l)).slice(0, 40).join("\n");
  const end = lines.findIndex((l, i) => i > start && /^\s*Test Files\s/.test(l));
  return lines.slice(start, end < 0 ? undefined : end).slice(0, 80).join("\n");
}

function main(argv: string[]): number {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Run the project on Node 22, 24, 26, Bun and Deno and print one table.\n\nusage: npm run test:runtimes -- [flags]\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const only = typeof f.only === "string" ? f.only.split(",") : RUNTIME_PACKAGES.map((p) => p.label);
  for (const name of only) if (!RUNTIME_PACKAGES.some((p) => p.label === name)) throw new UsageError(`--only: no runtime "${name}" (choose from ${RUNTIME_PACKAGES.map((p) => p.label).join(", ")})`);
  const cacheDir = typeof f.cache === "string" ? f.cache : userCacheDir("runtimes");
  const log = (line: string) => process.stderr.write(`${line}\n`);

  const runtimes: Runtime[] = [{ label: "node (default)", version: process.versions.node, tsCommand: [process.execPath, "--import", "tsx"], jsCommand: [process.execPath], nodeBinDir: null }];
  for (const p of RUNTIME_PACKAGES.filter((x) => only.includes(x.label))) {
    const { bin, version } = ensureRuntime(p, cacheDir, log);
    runtimes.push({ label: p.label, version, tsCommand: tsCommand(p.kind, bin), jsCommand: jsCommand(p.kind, bin), nodeBinDir: p.kind === "node" ? join(bin, "..") : null });
  }
  log("the package: built, packed, installed offline…");
  const { bin: packedBin } = packAndInstall(PACKED);

  const rows: string[][] = [];
  let ref: Reference | null = null;
  let failed = false;
  for (const rt of runtimes) {
    const started = Date.now();
    // The default Node's suite is `npm test`'s; Bun and Deno run the end-to-end checks only.
    let suiteCell = rt === runtimes[0] ? "npm test" : "—";
    if (rt.nodeBinDir !== null && f["no-suite"] !== true) {
      log(`${rt.label} ${rt.version}: the test suite…`);
      const s = suite(rt);
      suiteCell = `${s.passed} passed${s.failed > 0 ? `, ${s.failed} failed` : ""}`;
      if (s.failed > 0) {
        failed = true;
        log(failureReport(s.output));
      }
    }
    log(`${rt.label} ${rt.version}: end-to-end checks…`);
    const e = endToEnd(rt, ref, packedBin);
    ref ??= e.ref;
    for (const why of e.failures) log(`  ${rt.label}: ${why}`);
    if (e.failures.length > 0) failed = true;
    const total = e.passed + e.failures.length;
    rows.push([rt.label, rt.version, suiteCell, `${e.passed}/${total}`, e.tokensPerSec.toFixed(1), e.relaxedSimd ? "yes" : "no", `${((Date.now() - started) / 1000).toFixed(0)} s`]);
  }
  process.stdout.write(`${table(["runtime", "version", "test suite", "end-to-end", "decode tok/s", "relaxed SIMD", "took"], rows, 3)}\n`);
  process.stdout.write(`decode tok/s: GPT-2 small, random weights, 16-token prompt, 32 new tokens, 2 threads, greedy\n`);
  return failed ? 1 : 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`test-runtimes: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
  if (!(err instanceof UsageError || err instanceof FetchError) && err instanceof Error) process.stderr.write(`${err.stack}\n`);
} finally {
  rmSync(PROFILES, { recursive: true, force: true });
  rmSync(PACKED, { recursive: true, force: true });
}
