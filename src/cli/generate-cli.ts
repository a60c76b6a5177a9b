import { commandLine } from "./command-line.ts";
import { existsSync } from "node:fs";
import { join, relative } from "node:path";
import { randomInt } from "node:crypto";
import { availableParallelism, totalmem } from "node:os";
import { Engine, type EngineSettings, KERNELS } from "../kernels/engine.ts";
import { type WeightDtype, bytesPerWeight } from "../kernels/packed-matrix.ts";
import { GPT2_SMALL, type GPT2Config } from "../model/config.ts";
import { GPT2_FAMILY, familyMember, parameterCounts } from "../model/family.ts";
import { countingModel, randomModel } from "../model/load.ts";
import { loadConfig, loadModel } from "../io/model-dir.ts";
import { nodePlatform } from "../platform/node.ts";
import type { GPT2Model } from "../model/model.ts";
import { PendingFile } from "../io/atomic-write.ts";
import { weightsDir } from "./weights-dir.ts";
import { COMMANDS_HELP } from "./commands.ts";
import { htmlReport } from "../report/html.ts";
import { predictionReport } from "../report/prediction.ts";
import { terminalReport } from "../report/terminal.ts";
import { chromeTrace } from "../report/trace.ts";
import { type MachineSelection, generate, warmUpPositions } from "../run/generate-run.ts";
import { probeJoins } from "../run/join-probe.ts";
import { predictOnly } from "../run/predict-only.ts";
import { renderUtf8 } from "../run/utf8-stream.ts";
import { calibrate } from "../profile/calibrate.ts";
import { costsFor } from "../profile/ladder.ts";
import { type MachineProfile, ProfileError, machineIdentity, profileKey } from "../profile/machine-profile.ts";
import { obtainProfile, readProfileFile } from "../profile/store.ts";
import { hasTokenizer, loadTokenizer } from "../io/tokenizer-dir.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { type FlagSpec, type ParsedFlags, UsageError, flagHelp, parseFlags } from "./args.ts";
import { DEFAULT_NEW_TOKENS, newTokenCount, parseIds, samplingFrom } from "./generate-options.ts";
import { relaxedIntegerDot } from "../wasm/runtime.ts";

/** The article's section 5 prompt. */
export const ARTICLE_PROMPT = "我是AI，我可以帮您解决问题。请告诉我您的疑问：";

export const DEFAULT_MODEL_DIR = join(weightsDir(), "gpt2");

const FLAGS: Record<string, FlagSpec> = {
  prompt: { kind: "string", value: "TEXT", help: `text to continue (default: the article's "${ARTICLE_PROMPT}")` },
  "max-length": { kind: "int", value: "N", help: "total length, prompt plus new tokens (Hugging Face's max_length)" },
  "max-new-tokens": { kind: "int", value: "N", help: `tokens to generate (default ${DEFAULT_NEW_TOKENS})` },
  "num-return-sequences": { kind: "int", value: "N", help: "independent sequences to generate (needs --do-sample)" },
  greedy: { kind: "boolean", help: "pick the most likely token each step (the default, as in GPT-2's generation config)" },
  "do-sample": { kind: "boolean", help: "sample from the distribution instead" },
  temperature: { kind: "number", value: "T", help: "divide logits by T before sampling (default 1)" },
  "top-k": { kind: "int", value: "K", help: "sample among the K most likely tokens (default 0: all)" },
  "top-p": { kind: "number", value: "P", help: "sample within the smallest set of probability ≥ P (default 1)" },
  seed: { kind: "int", value: "N", help: "seed for sampling (default: random, printed in the report)" },
  "ignore-eos": { kind: "boolean", help: "keep generating after <|endoftext|>" },
  model: { kind: "string", value: "DIR", help: "model directory (Hugging Face layout), or a size's name for weights/NAME (default gpt2)" },
  "random-weights": { kind: "optional", value: "NAME", help: `seeded random weights of a size: ${GPT2_FAMILY.map((m) => m.name).join(", ")} (default gpt2)` },
  "input-ids": { kind: "string", value: "1,2,3", help: "prompt as token ids, skipping the tokenizer" },
  kernel: { kind: "string", value: "NAME", help: `matmul kernel: auto (default: fastest per shape), ${KERNELS.map((k) => k.name).join(", ")}` },
  dtype: { kind: "string", value: "f32|bf16|q8", help: "how weights are held: f32 (default), bf16 (half the memory) or q8 (8-bit, blocks of 32; SIMD kernels)" },
  threads: { kind: "int", value: "N", help: `threads a forward pass runs on (default: available cores, ${availableParallelism()} here)` },
  trace: { kind: "string", value: "FILE", help: "write a Chrome trace (Perfetto, chrome://tracing) of every op call" },
  report: { kind: "string", value: "FILE", help: "write a self-contained HTML report with charts" },
  json: { kind: "boolean", help: "print one JSON document on stdout (the report as data) instead of text" },
  verbose: { kind: "boolean", help: "add a per-layer breakdown to the report" },
  machine: { kind: "string", value: "FILE", help: `predict the time with another machine's profile (${commandLine("profile", "--out FILE")})` },
  "predict-only": { kind: "boolean", help: "print the prediction only: no weights loaded, nothing generated (any size, any machine's profile)" },
  help: { kind: "boolean", help: "show this help" },
};

const HELP = `Generate text with GPT-2 and report what it cost, stage by stage and op by op.

usage: gpt2-cycles [flags]        (in a clone: npx tsx src/generate.ts [flags], or npm start -- [flags])

Text streams to stdout as it is generated; the report goes to stderr (with --json, stdout
carries only the JSON document). GPT-2 is decoder-only: the article's "encoder" stage is our
prefill of the prompt, its "decoder" stage our token-by-token generation.

flags:
${flagHelp(FLAGS)}

${COMMANDS_HELP}`;

interface Plan {
  model: GPT2Model;
  tokenizer: Tokenizer | null;
  promptIds: number[] | null;
  prompt: string | null;
  loadMs: number;
  notices: string[];
}

/**
 * Refuses at once, before a byte of weights is read, a config whose weights cannot be held: more
 * than this machine's memory, or (bf16, q8: the TypeScript kernels take f32 only) more than the
 * 4 GiB the WebAssembly kernels address. (f32 past 4 GiB falls back to the TypeScript kernels.)
 */
function checkModelSize(configPath: string, c: GPT2Config, engine: Engine): void {
  const { matmul: matmulParameters, others } = parameterCounts(c);
  const bytes = (dtype: WeightDtype) => matmulParameters * bytesPerWeight(dtype) + 4 * others;
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  const what = `${configPath}: ${((matmulParameters + others) / 1e6).toFixed(0)} M parameters need ${gib(bytes(engine.dtype))} as ${engine.dtype} weights`;
  if (bytes(engine.dtype) > totalmem()) {
    const smaller = engine.dtype !== "q8" && bytes("q8") <= totalmem() ? `: --dtype q8 needs ${gib(bytes("q8"))}` : "";
    throw new Error(`${what}, more than this machine's ${gib(totalmem())} of memory${smaller}`);
  }
  if (engine.dtype !== "f32" && !engine.weightsFit(matmulParameters)) throw new Error(`${what}, more than the 4 GiB the WebAssembly kernels address`);
}

/**
 * The engine for a model of config `c` (`shown` names it): refused if it cannot be held, and f32
 * weights past the SIMD kernels' 4 GiB move to the TypeScript kernels, with a notice.
 */
async function engineFor(shown: string, c: GPT2Config, engine: Engine, notices: string[]): Promise<Engine> {
  checkModelSize(shown, c, engine);
  const { matmul } = parameterCounts(c);
  if (engine.kernel !== "auto" || engine.weightsFit(matmul)) return engine;
  // bf16 halves the bytes and fits every GPT-2 size, so only fp32 weights get here.
  notices.push(`${shown}: ${((matmul * 4) / 2 ** 30).toFixed(1)} GiB of f32 weights exceed the SIMD kernels' 4 GiB: using the TypeScript kernels (--dtype bf16 would fit).`);
  await engine.dispose();
  return new Engine(nodePlatform, { ...engine.settings, kernel: "packed" });
}

/** --model's directory: a GPT-2 size's name (that is not a path here) means weights/NAME, where fetch-weights puts it. */
function modelDirOf(value: string): string {
  if (familyMember(value) === undefined || existsSync(value)) return value;
  const dir = join(weightsDir(), value);
  if (!existsSync(dir)) throw new UsageError(`--model ${value}: no weights in ${relative(process.cwd(), dir)}: run ${commandLine("fetch-weights", `--model ${value}`)} (or try --random-weights ${value})`);
  return dir;
}

/**
 * Where a run's model comes from: a size's shapes with random weights (`missing`: the notice that
 * the default weights are not fetched, when that is why), or a model directory.
 */
type ModelSource =
  | { kind: "random"; config: GPT2Config; shown: string; missing: string | null }
  | { kind: "dir"; config: GPT2Config; shown: string; dir: string };

/** The model the flags name, its config read (weights are not): --random-weights NAME, --model, or weights/gpt2 if fetched. */
function modelSource(f: ParsedFlags): ModelSource {
  const dir = typeof f.model === "string" ? modelDirOf(f.model) : DEFAULT_MODEL_DIR;
  const shown = relative(process.cwd(), dir) || ".";
  const random = f["random-weights"];
  if (random !== undefined) {
    if (typeof f.model === "string") throw new UsageError("--random-weights and --model exclude each other: --random-weights NAME takes a GPT-2 size's shapes");
    const member = familyMember(random === true ? "gpt2" : String(random));
    if (member === undefined) throw new UsageError(`--random-weights ${String(random)}: not a GPT-2 size; choose one of ${GPT2_FAMILY.map((m) => m.name).join(", ")}`);
    return { kind: "random", config: member.config, shown: `--random-weights ${member.name}`, missing: null };
  }
  if (typeof f.model !== "string" && !(existsSync(join(dir, "config.json")) && existsSync(join(dir, "model.safetensors")))) {
    return { kind: "random", config: GPT2_SMALL, shown, missing: `no weights in ${shown}: run \`${commandLine("fetch-weights")}\` to download GPT-2 small (548 MB).` };
  }
  return { kind: "dir", config: loadConfig(dir), shown: join(shown, "config.json"), dir };
}

/** The tokenizer that goes with the model: its directory's, or GPT-2's for GPT-2's vocabulary. */
async function tokenizerFor(source: ModelSource): Promise<Tokenizer | null> {
  if (source.kind === "dir" && hasTokenizer(source.dir)) return loadTokenizer(source.dir);
  return source.config.vocabSize === GPT2_SMALL.vocabSize ? loadTokenizer() : null;
}

/** The prompt the flags give: as token ids (--input-ids), or as text (--prompt, or the article's). */
function promptFrom(f: ParsedFlags, source: ModelSource, tokenizer: Tokenizer | null): { promptIds: number[] | null; prompt: string | null } {
  if (typeof f["input-ids"] === "string") {
    if (typeof f.prompt === "string") throw new UsageError("give --prompt or --input-ids, not both");
    return { promptIds: parseIds(f["input-ids"], source.config.vocabSize), prompt: null };
  }
  if (tokenizer === null) {
    const where = source.kind === "dir" ? source.dir : source.shown;
    throw new UsageError(`${relative(process.cwd(), where) || "."} has no tokenizer files and a ${source.config.vocabSize}-token vocabulary (not GPT-2's): pass the prompt as --input-ids`);
  }
  return { promptIds: null, prompt: typeof f.prompt === "string" ? f.prompt : ARTICLE_PROMPT };
}

/** The prompt's token ids: an empty prompt starts from <|endoftext|>, as GPT-2 does. */
function encodePrompt(plan: { promptIds: number[] | null; prompt: string | null }, tokenizer: Tokenizer | null, notices: string[]): number[] {
  if (plan.promptIds !== null) return plan.promptIds;
  const ids = tokenizer!.encode(plan.prompt!);
  if (ids.length > 0) return ids;
  notices.push("empty prompt: starting from <|endoftext|>, as GPT-2 does.");
  return [tokenizer!.endOfText];
}

/** Loads the model onto `engine` (or falls back to random weights) and the tokenizer that goes with it. */
async function loadPlan(f: ParsedFlags, engine: Engine): Promise<Plan> {
  const source = modelSource(f);
  const notices: string[] = [];
  if (source.kind === "random" && source.missing !== null) {
    notices.push(source.missing, "Running GPT-2 small's shapes with seeded random weights: real cycles and timings, noise for text.");
  }
  const t0 = performance.now();
  engine = await engineFor(source.shown, source.config, engine, notices);
  const model = source.kind === "random" ? await randomModel(engine, source.config) : await loadModel(source.dir, engine);
  const loadMs = performance.now() - t0;
  const tokenizer = await tokenizerFor(source);
  return { model, tokenizer, ...promptFrom(f, source, tokenizer), loadMs, notices };
}

/** The output files a run writes, reserved before it starts (see PendingFile). */
interface Outputs {
  trace: PendingFile | null;
  report: PendingFile | null;
}

/** Reserves the file a flag names, or says in one line why it cannot be written. */
export function reserveOutput(flag: string, path: unknown): PendingFile | null {
  if (typeof path !== "string") return null;
  try {
    return new PendingFile(path);
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new UsageError(`--${flag} ${path}: cannot write there (${why}): choose a file in a writable directory`);
  }
}

export async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(HELP);
    return 0;
  }
  // Before any work: an output path that cannot be written fails now, not after the run.
  const outputs: Outputs = { trace: reserveOutput("trace", f.trace), report: reserveOutput("report", f.report) };
  try {
    return await generateAndReport(f, outputs);
  } finally {
    outputs.trace?.discard();
    outputs.report?.discard();
  }
}

async function generateAndReport(f: ParsedFlags, outputs: Outputs): Promise<number> {
  const sequences = (f["num-return-sequences"] as number | undefined) ?? 1;
  if (sequences < 1) throw new UsageError(`--num-return-sequences must be at least 1, got ${sequences}`);
  const notices: string[] = [];
  const sampling = samplingFrom(f, notices);
  if (sequences > 1 && !sampling.doSample) throw new UsageError("--num-return-sequences > 1 needs --do-sample: greedy decoding gives the same sequence every time");

  let engine: Engine;
  try {
    engine = new Engine(nodePlatform, { kernel: f.kernel as string | undefined, threads: f.threads as number | undefined, dtype: f.dtype as WeightDtype | undefined });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const other = typeof f.machine === "string" ? otherMachine(f.machine) : null;
  if (f["predict-only"] === true) return predictOnlyAndReport(f, engine, other, outputs, sequences, sampling.doSample ? "sample" : "greedy", notices);
  const plan = await loadPlan(f, engine);
  await plan.model.engine.ready();
  notices.unshift(...plan.notices);
  const threads = plan.model.engine.threads;
  if (threads > availableParallelism()) {
    notices.push(`--threads ${threads} is more than the ${availableParallelism()} cores here: threads will share cores (oversubscribed); the passes that are faster on one thread run on one.`);
  }
  if (plan.model.engine.dtype === "q8" && relaxedIntegerDot() === null) {
    // Measured: bench/end-to-end.ts on Node 24 with the relaxed forms withheld (docs/kernels.md).
    notices.push(`q8 on this runtime: no relaxed integer dot product (the kernels widen bytes to 16 bits); prefill runs at about 0.6× the speed of a runtime that has one (Node 20+, Bun, Deno).`);
  }
  if (threads > 1 && !plan.model.engine.usesSimd) notices.push(`--threads ${threads}: the TypeScript kernels run on one thread; the WebAssembly SIMD kernels (--kernel auto) use them all.`);
  const promptIds = encodePrompt(plan, plan.tokenizer, notices);
  const maxNewTokens = newTokenCount(f, promptIds.length, plan.model.config.nPositions, notices);
  const fit = plan.model.sequencesThatFit(promptIds.length + maxNewTokens, warmUpPositions(plan.model.config.nPositions));
  if (sequences > fit) {
    throw new UsageError(`--num-return-sequences ${sequences}: at most ${fit} sequences of ${promptIds.length + maxNewTokens} positions fit in memory (their KV caches and a decode step's activations); ask for fewer sequences or tokens`);
  }
  // Measuring this machine's profile (once per setting, for every size) comes after every check
  // of the input; another machine's (--machine) is used as it is.
  const machine = await machineFor(f, other, plan.model.engine, plan.model.engine.settings);
  const extrapolated = costsFor(machine.profile, plan.model.config, plan.model.engine.dtype).extrapolated;
  if (extrapolated !== null) notices.push(`prediction extrapolates: ${extrapolated}`);
  const json = f.json === true;
  for (const n of notices) process.stderr.write(`${n}\n`);

  const seed = (f.seed as number | undefined) ?? randomInt(2 ** 31);
  // Ctrl-C stops after the current token and still reports what ran, as llama.cpp prints its
  // timings; a second Ctrl-C ends the process at once.
  let interrupted = false;
  process.once("SIGINT", () => (interrupted = true));
  const shownPrompt = plan.prompt ?? (plan.tokenizer ? renderUtf8(plan.tokenizer.decodeBytes(promptIds)) : "");
  // One sequence streams its text as it comes; several decode together and print when done.
  if (!json && sequences === 1) process.stdout.write(shownPrompt);
  const run = await generate({
    model: plan.model,
    tokenizer: plan.tokenizer,
    // An empty text prompt was replaced by <|endoftext|>: pass ids so the record shows them.
    prompt: plan.prompt,
    inputIds: plan.promptIds ?? (plan.prompt === "" ? promptIds : null),
    maxNewTokens,
    sampling,
    seed,
    sequences,
    stopAtEndOfText: f["ignore-eos"] !== true,
    loadMs: plan.loadMs,
    machine: async () => machine,
    onText: json ? undefined : (text) => process.stdout.write(text),
    betweenTokens: () => new Promise<void>((resolve) => setImmediate(resolve)),
    shouldStop: () => interrupted,
  });
  if (!json) {
    for (const [s, q] of (run.record.sequences ?? []).entries()) process.stdout.write(`${s > 0 ? "\n" : ""}--- sequence ${s + 1} of ${sequences} (seed ${q.seed})\n${shownPrompt}${q.text}\n`);
    if (sequences === 1) process.stdout.write("\n");
    process.stderr.write(`\n${terminalReport(run.record, f.verbose === true, (p) => relative(process.cwd(), p))}\n`);
  }
  // The record first: a file that fails to write cannot lose it.
  if (json) process.stdout.write(`${JSON.stringify(run.record, null, 2)}\n`);
  if (outputs.trace !== null) {
    outputs.trace.commit(JSON.stringify(chromeTrace([run])));
    if (!json) process.stderr.write(`trace written to ${outputs.trace.path}: open it at ui.perfetto.dev or chrome://tracing\n`);
  }
  if (outputs.report !== null) {
    outputs.report.commit(htmlReport([run.record]));
    if (!json) process.stderr.write(`report written to ${outputs.report.path}: open it in a browser\n`);
  }
  return interrupted ? 130 : 0;
}

/**
 * --predict-only: the model's passes counted on an engine that only counts (no weights, no
 * kernels) and priced on this machine's profile (measured first if there is none) or another's.
 */
async function predictOnlyAndReport(f: ParsedFlags, engine: Engine, other: MachineProfile | null, outputs: Outputs, sequences: number, sampling: "greedy" | "sample", notices: string[]): Promise<number> {
  // `engine` has the settings asked for and holds no weights: it only says whether they would fit.
  await engine.dispose();
  if (outputs.trace !== null || outputs.report !== null) throw new UsageError("--predict-only runs nothing, so there is no trace or report of a run: drop --trace and --report");
  if (sequences > 1) throw new UsageError("--predict-only predicts one sequence: drop --num-return-sequences");
  const source = modelSource(f);
  if (source.kind === "random" && source.missing !== null) notices.unshift(source.missing);
  const tokenizer = await tokenizerFor(source);
  const promptIds = encodePrompt(promptFrom(f, source, tokenizer), tokenizer, notices);
  const maxNewTokens = newTokenCount(f, promptIds.length, source.config.nPositions, notices);
  // As a run would: f32 weights past the SIMD kernels' 4 GiB run on the TypeScript kernels.
  const asked = engine.settings;
  const settings: EngineSettings = asked.kernel === "auto" && asked.dtype === "f32" && !engine.weightsFit(parameterCounts(source.config).matmul) ? { ...asked, kernel: "packed" } : asked;
  const counting = new Engine(nodePlatform, { ...settings, countsOnly: true });
  if (settings !== asked) notices.push(`${source.shown}: f32 weights past the SIMD kernels' 4 GiB run on the TypeScript kernels: predicting kernel packed.`);
  const model = countingModel(counting, source.config, settings.dtype);
  const machine = await machineFor(f, other, counting, settings);
  for (const n of notices) process.stderr.write(`${n}\n`);
  // This machine's profile is rescaled to how fast the machine is now (a few seconds on layers
  // of the profile's nearest rung's width); another machine's is used as it is.
  const drift = machine.source === "file" ? null : await calibrate(machine.profile, source.config, () => new Engine(nodePlatform, settings));
  const joins = await probeJoins(() => new Engine(nodePlatform, settings), source.config, promptIds.length);
  const record = predictOnly(model, settings, machine, promptIds, maxNewTokens, sampling, drift, joins);
  if (f.json === true) process.stdout.write(`${JSON.stringify(record, null, 2)}\n`);
  else process.stderr.write(`${predictionReport(record)}\n`);
  return 0;
}

/**
 * The profile a prediction uses: another machine's (--machine, read as `other`), or this
 * machine's for `settings` from the cache, measured now if there is none (its kernel choices
 * adopted by `engine`).
 */
async function machineFor(f: ParsedFlags, other: MachineProfile | null, engine: Engine, settings: EngineSettings): Promise<MachineSelection> {
  if (other !== null) return { profile: other, source: "file", path: f.machine as string };
  return obtainProfile(engine, () => new Engine(nodePlatform, settings), profileKey(settings, machineIdentity(nodePlatform)), (line) => process.stderr.write(`${line}\n`));
}

/** Another machine's saved profile (--machine): unusable files are the user's to fix. */
function otherMachine(path: string): MachineProfile {
  try {
    return readProfileFile(path);
  } catch (err) {
    if (err instanceof ProfileError) throw new UsageError(err.message);
    throw err;
  }
}
