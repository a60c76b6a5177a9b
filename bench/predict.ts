// The prediction checked against the run it predicts: generate.ts on GPT-2 small with random
// weights under eight settings, three runs each (fresh processes), predicted vs measured per stage.
// Run by bench/run.ts for `npm run bench -- --predict`. Every run measures its machine profile in
// its own process just before it generates (generate.ts's first-use path, in an empty cache of its
// own): this shared machine's speed drifts by up to 2× over minutes, and the benchmark checks the
// formula, not how long a cached profile stays true (`--cached-profiles` checks that instead).
import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { signedPercent, table } from "../src/report/format.ts";
import { stageBound } from "../src/run/aggregate.ts";
import { withBusyCore } from "./threads.ts";
import type { OpRecord } from "../src/run/record.ts";

const ROOT = join(import.meta.dirname, "..");
const RUNS = 3;
const ids = (n: number) => Array.from({ length: n }, (_, i) => (464 + i * 7919) % 50257).join(",");

/** The settings of the issue that asked for the prediction: the default, then one change each. */
export const PREDICT_SETTINGS: { label: string; args: string[] }[] = [
  { label: "default (49-token prompt, 50 new, 2 threads)", args: [] },
  { label: "--threads 1", args: ["--threads", "1"] },
  { label: "--dtype bf16", args: ["--dtype", "bf16"] },
  { label: "400-token prompt, 24 new", args: ["--input-ids", ids(400), "--max-new-tokens", "24"] },
  { label: "1-token prompt, 120 new", args: ["--input-ids", "464", "--max-new-tokens", "120"] },
  { label: "--kernel packed, 12 new", args: ["--kernel", "packed", "--max-new-tokens", "12"] },
  // Later settings: integer weights, and eight sequences decoded as one batch.
  { label: "--dtype q8", args: ["--dtype", "q8"] },
  { label: "--num-return-sequences 8 --do-sample", args: ["--num-return-sequences", "8", "--do-sample"] },
];
/**
 * The family: six settings across the GPT-2 sizes (the issue that made the profile the machine's),
 * their profiles measured first while another program keeps a core busy, then the runs on a quiet
 * machine, each setting's three runs reading the same cached profile. `--random-weights NAME`
 * runs the size's shapes; `args` without a prompt get the article's.
 */
export const FAMILY_SETTINGS: { label: string; args: string[] }[] = [
  { label: "gpt2 f32, article's prompt", args: ["--random-weights", "gpt2"] },
  { label: "gpt2 f32 1 thread, 1000-token prompt", args: ["--random-weights", "gpt2", "--threads", "1", "--input-ids", ids(1000), "--max-new-tokens", "24"] },
  { label: "gpt2-medium bf16, 128-token prompt", args: ["--random-weights", "gpt2-medium", "--dtype", "bf16", "--input-ids", ids(128)] },
  { label: "gpt2-large q8, 16-token prompt", args: ["--random-weights", "gpt2-large", "--dtype", "q8", "--input-ids", ids(16)] },
  { label: "gpt2-xl q8, 16-token prompt", args: ["--random-weights", "gpt2-xl", "--dtype", "q8", "--input-ids", ids(16)] },
  { label: "distilgpt2 f32, 1-token prompt, 64 new", args: ["--random-weights", "distilgpt2", "--input-ids", "464", "--max-new-tokens", "64"] },
];

/** The prediction issue's targets were set on its first twelve stages (six settings). */
const TARGET_ROWS = 12;

export interface PredictRow {
  setting: string;
  stage: string;
  predictedMs: number;
  measuredMs: number;
  /** Each run's error, in run order: the spread shows how much of the error is the machine's noise. */
  runErrorsPercent: number[];
  bound: string;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

interface StageDoc { name: string; durationMs: number; predictedMs: number }


/** The profiles of the family's settings, measured into `cache` while another program keeps a core busy. */
function measureBusy(cache: string, settings: readonly { args: string[] }[], log: (line: string) => void): void {
  const flag = (args: string[], name: string, fallback: string) => (args.includes(name) ? args[args.indexOf(name) + 1] : fallback);
  const keys = new Set(settings.map((s) => `${flag(s.args, "--dtype", "f32")} ${flag(s.args, "--threads", "2")}`));
  withBusyCore(() => {
    for (const key of keys) {
      const [dtype, threads] = key.split(" ");
      log(`predict: measuring the ${dtype}, ${threads}-thread profile while another program keeps a core busy…`);
      const p = spawnSync(process.execPath, ["--import", "tsx", "src/cli/main.ts", "profile", "--dtype", dtype, "--threads", threads], { cwd: ROOT, env: { ...process.env, GPT2_CYCLES_CACHE: cache }, encoding: "utf8" });
      if (p.status !== 0) throw new Error(`npm run profile -- --dtype ${dtype} --threads ${threads} failed: ${p.stderr.trim().split("\n").at(-1)}`);
    }
  });
}

/**
 * Runs each setting three times and compares the stages' predictions with their times. `family`:
 * the family's settings, on profiles measured beforehand with a core busy (see FAMILY_SETTINGS);
 * else the small model's, each run measuring its own profile first unless `cachedProfiles`.
 */
export function predictBenchmark(log: (line: string) => void, cachedProfiles: boolean, family = false): PredictRow[] {
  const rows: PredictRow[] = [];
  const shared = mkdtempSync(join(tmpdir(), "predict-profiles-"));
  const profiles = () => (cachedProfiles || family ? shared : mkdtempSync(join(tmpdir(), "predict-profile-")));
  const settings = family ? FAMILY_SETTINGS : PREDICT_SETTINGS;
  if (family) measureBusy(shared, settings, log);
  for (const s of settings) {
    const runs: { stages: StageDoc[]; opsByStage: Record<string, OpRecord[]> }[] = [];
    for (let r = 0; r < RUNS; r++) {
      log(`predict: ${s.label}, run ${r + 1} of ${RUNS}…`);
      const args = ["--import", "tsx", "src/generate.ts", ...(family ? [] : ["--random-weights"]), "--seed", "1", "--json", ...s.args];
      if (!s.args.includes("--max-new-tokens") && !s.args.includes("--input-ids")) args.push("--max-new-tokens", "50");
      const env = { ...process.env, GPT2_CYCLES_CACHE: profiles() };
      const p = spawnSync(process.execPath, args, { cwd: ROOT, env, encoding: "utf8", maxBuffer: 256 * 2 ** 20 });
      if (p.status !== 0) throw new Error(`generate.ts ${s.args.join(" ")} failed: ${p.stderr.trim().split("\n").at(-1)}`);
      if (family && /measuring/.test(p.stderr)) throw new Error(`generate.ts ${s.label} measured its profile again: ${p.stderr.trim()}`);
      runs.push(JSON.parse(p.stdout));
    }
    for (const stage of ["prefill", "decode"]) {
      const of = (run: (typeof runs)[number]) => run.stages.find((x) => x.name === stage)!;
      rows.push({
        setting: s.label,
        stage,
        predictedMs: median(runs.map((run) => of(run).predictedMs)),
        measuredMs: median(runs.map((run) => of(run).durationMs)),
        runErrorsPercent: runs.map((run) => (100 * (of(run).predictedMs - of(run).durationMs)) / of(run).durationMs),
        bound: stageBound(runs[0].opsByStage[stage] ?? []),
      });
    }
  }
  return rows;
}

/** The table, and the count against the targets on the first twelve stages (≥ `within` of them within ±15%, none beyond ±30%). */
export function predictTable(rows: readonly PredictRow[], within = 10): string {
  const within15 = (rs: readonly PredictRow[]) => rs.filter((r) => Math.abs(median(r.runErrorsPercent)) <= 15).length;
  const beyond30 = (rs: readonly PredictRow[]) => rs.filter((r) => Math.abs(median(r.runErrorsPercent)) > 30).length;
  const first = rows.slice(0, TARGET_ROWS);
  return [
    table(
      ["setting", "stage", "predicted", "measured", "error", "runs", "bound"],
      rows.map((r) => [r.setting, r.stage, `${r.predictedMs.toFixed(1)} ms`, `${r.measuredMs.toFixed(1)} ms`, signedPercent(median(r.runErrorsPercent)), r.runErrorsPercent.map((e) => e.toFixed(0)).join("/"), r.bound]),
      2,
    ),
    `medians of ${RUNS} runs each; ${within15(rows)} of ${rows.length} stages within ±15%, ${beyond30(rows)} beyond ±30%; ` +
      `of the first ${first.length}, ${within15(first)} within ±15% (target ≥ ${within}) and ${beyond30(first)} beyond ±30% (target 0)`,
  ].join("\n");
}
