import { Clock, type OpEntry } from "../clock/clock.ts";
import type { Engine } from "../kernels/engine.ts";
import type { GPT2Model } from "../model/model.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { runtimeInfo } from "../util/js-runtime.ts";
import { Random } from "../util/random.ts";
import { relaxedAvailable } from "../wasm/runtime.ts";
import type { MachineProfile } from "../profile/machine-profile.ts";
import { passShape } from "../profile/measure.ts";
import { passOverheadNs, predictCallNs } from "../profile/roofline.ts";
import { ATTENTION_ROLES, layerTable, opKind, opTable } from "./aggregate.ts";
import type { MachineRecord, RunRecord, StageName, StageRecord, StepRecord } from "./record.ts";
import { type SamplingOptions, TokenPicker, topLogits } from "./sampling.ts";
import { Utf8Stream, renderUtf8 } from "./utf8-stream.ts";

export interface GenerateOptions {
  model: GPT2Model;
  /** null: no tokenizer for this model; the prompt must come as ids and text is shown as ids. */
  tokenizer: Tokenizer | null;
  /** Text to tokenize, or null when `inputIds` are given. */
  prompt: string | null;
  inputIds: number[] | null;
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed: number;
  /** Stop when the model emits <|endoftext|>, as Hugging Face's generate does. */
  stopAtEndOfText: boolean;
  loadMs: number;
  /**
   * The machine profile that predicts the run's time (this machine's, or another's from a file),
   * asked for once the run is over: a page that has none yet measures it then, so the first
   * token does not wait for it.
   */
  machine: () => Promise<MachineSelection>;
  /** Receives the generated text as it becomes printable. */
  onText?: (text: string) => void;
  /** Called after each forward pass and its token pick, with the clock so far: a page's live view. */
  onStep?: (clock: Clock, steps: readonly StepRecord[]) => void;
  /**
   * "profile" (the default): warm up with a pass of the machine profile's shape, so the run is
   * timed in the steady state the profile was measured in. "short": an 8-token prefill and two
   * decode steps, enough to compile every code path and tune every product, for a page whose
   * first token should come in seconds (its first prefill runs slightly colder).
   */
  warmUp?: "profile" | "short";
  /** Awaited after each token: where a signal handler (or a page's events) gets to run. */
  betweenTokens?: () => Promise<void>;
  /** Checked before each decode step: true stops the run after the token just made (Ctrl-C). */
  shouldStop?: () => boolean;
}


export interface MachineSelection {
  profile: MachineProfile;
  source: MachineRecord["source"];
  path: string;
}

/** The report's kernel line: the setting; the ops table names the kernel each matmul ran on. */
function engineLabel(e: Engine): string {
  return `${e.kernel}${e.kernel === "auto" ? (e.usesSimd ? " (WebAssembly SIMD)" : " (TypeScript)") : ""}, ${e.dtype} weights`;
}

/**
 * One of the profile's passes (or a short one) on a throwaway cache, untimed, so the JIT has
 * compiled the hot code and the timed run measures steady-state speed, as the profile did
 * (which chose the kernels).
 */
function warmUp(model: GPT2Model, sampling: SamplingOptions, picker: TokenPicker, kind: "profile" | "short"): void {
  const { prefill, decode } = kind === "short" ? { prefill: Math.min(8, model.config.nPositions - 2), decode: 2 } : passShape(model.config.nPositions);
  const ids = Array.from({ length: prefill }, (_, i) => (i * 7919) % model.config.vocabSize);
  const cache = model.newCache(prefill + decode);
  const rng = new Random(0);
  // Each pass picks a token as the run will, so that code is compiled too.
  const pass = (tokens: number[]) => {
    const logits = model.step(tokens, cache).data;
    picker.pick(logits, sampling, rng);
    topLogits(logits, 5);
  };
  pass(ids);
  for (let i = 0; i < decode; i++) pass([ids[i]]);
}

/** The record's view of the profile a prediction used. */
function machineRecord(m: MachineSelection): MachineRecord {
  const { key: { model: _model, ...machine }, kernels: _kernels, version: _version, ...figures } = m.profile;
  return { source: m.source, path: m.path, ...machine, ...figures };
}

/** One generation run: the article's four stages, every op on the clock, one record out. */
export async function generate(o: GenerateOptions): Promise<{ record: RunRecord; clock: Clock }> {
  const { model, tokenizer } = o;
  await model.engine.ready();
  // The warm-up's cache and the run's: neither may grow the kernels' memory once the clock runs.
  model.reserveCaches(2);
  const picker = new TokenPicker(model.config.vocabSize);
  warmUp(model, o.sampling, picker, o.warmUp ?? "profile");
  const clock = new Clock();
  const rng = new Random(o.seed);
  const steps: StepRecord[] = [];
  const stream = new Utf8Stream();
  const show = (ids: number[]): string => (tokenizer === null ? ids.map((id) => `[${id}]`).join("") : stream.push(tokenizer.decodeBytes(ids)));
  let samplingNs = 0;
  let stopReason: RunRecord["stopReason"] = "max-new-tokens";

  /** Runs one forward pass and picks a token from its logits, recording the step. */
  const forwardAndPick = (ids: number[], cache: ReturnType<GPT2Model["newCache"]>, step: number): number => {
    clock.setStep(step);
    const t0 = clock.now();
    const cycles0 = clock.cycles;
    const bytes0 = clock.bytes;
    const firstEntry = clock.entries.length;
    const logits = model.step(ids, cache).data;
    const t1 = clock.now();
    let attentionCycles = 0;
    for (let i = firstEntry; i < clock.entries.length; i++) if (ATTENTION_ROLES.has(clock.entries[i].role)) attentionCycles += clock.entries[i].cycles;
    const id = picker.pick(logits, o.sampling, rng);
    const top = topLogits(logits, 5);
    samplingNs += clock.now() - t1;
    steps.push({ id, top, context: cache.length, cycles: clock.cycles - cycles0, bytes: clock.bytes - bytes0, attentionCycles, ms: (t1 - t0) / 1e6, predictedMs: 0 });
    if (id === tokenizer?.endOfText && o.stopAtEndOfText) stopReason = "end-of-text";
    else o.onText?.(show([id]));
    o.onStep?.(clock, steps);
    return id;
  };

  const promptIds = clock.run(() => clock.stage("preprocess", () => o.inputIds ?? tokenizer!.encode(o.prompt!)));
  const generated: number[] = [];
  let text = "";
  const cache = model.newCache(promptIds.length + o.maxNewTokens);
  clock.stage("prefill", () => generated.push(forwardAndPick(promptIds, cache, 0)));
  await o.betweenTokens?.();
  await clock.stageAsync("decode", async () => {
    while (generated.length < o.maxNewTokens && stopReason !== "end-of-text") {
      if (o.shouldStop?.() === true) {
        stopReason = "interrupted";
        break;
      }
      generated.push(clock.run(() => forwardAndPick([generated[generated.length - 1]], cache, generated.length)));
      await o.betweenTokens?.();
    }
  });
  clock.setStep(-1);
  clock.stage("postprocess", () => {
    const kept = stopReason === "end-of-text" ? generated.slice(0, -1) : generated;
    o.onText?.(tokenizer === null ? "" : stream.flush());
    text = tokenizer === null ? kept.join(" ") : renderUtf8(tokenizer.decodeBytes(kept));
  });

  const machine = await o.machine();
  const profile = machine.profile;
  // The prediction: every op call on the roofline, plus each forward pass's time between ops.
  const sampler = o.sampling.doSample ? "sample" : "greedy";
  const stepNs = steps.map((_, i) => passOverheadNs(profile, i === 0 ? promptIds.length : 1, sampler));
  for (const e of clock.entries) if (e.step >= 0) stepNs[e.step] += predictCallNs(profile, opKind(e), e.cycles, e.bytes);
  steps.forEach((s, i) => (s.predictedMs = stepNs[i] / 1e6));
  // Step 0 is the prefill's pass; every later step is a decode step.
  const predictedStageMs = (name: string) => (name === "prefill" ? steps[0].predictedMs : steps.slice(1).reduce((sum, s) => sum + s.predictedMs, 0));

  const entriesOf = (stage: StageName): OpEntry[] => clock.entries.filter((e) => e.stage === stage);
  const stages: StageRecord[] = clock.stages.map((s) => ({
    name: s.name as StageName,
    startUnixMs: clock.unixMs(s.startNs),
    durationMs: (s.endNs - s.startNs) / 1e6,
    cycles: s.cycles,
    bytes: s.bytes,
    predictedMs: s.name === "prefill" || s.name === "decode" ? predictedStageMs(s.name) : 0,
  }));
  const stage = (name: StageName) => stages.find((s) => s.name === name)!;
  const decodeSteps = steps.length - 1;
  const ops = opTable(clock.entries, profile);
  const c = model.config;
  const where = runtimeInfo();
  const record: RunRecord = {
    model: {
      path: model.weights.kind === "file" ? model.weights.path : "(random weights)",
      nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, nPositions: c.nPositions, vocabSize: c.vocabSize,
      parameters: c.vocabSize * c.nEmbd + c.nPositions * c.nEmbd + c.nLayer * (12 * c.nEmbd * c.nEmbd + 13 * c.nEmbd) + 2 * c.nEmbd,
    },
    weights: model.weights.kind,
    kernel: engineLabel(model.engine),
    threads: model.engine.threads,
    runtime: { name: where.name, version: where.version, relaxedSimd: relaxedAvailable() },
    prompt: o.inputIds === null ? o.prompt : null,
    promptIds,
    generatedIds: generated,
    text,
    stopReason,
    sampling: { ...o.sampling, seed: o.seed },
    steps,
    stages,
    ops,
    opsByStage: { prefill: opTable(entriesOf("prefill"), profile), decode: opTable(entriesOf("decode"), profile) },
    layers: layerTable(clock.entries, c.nLayer),
    machine: machineRecord(machine),
    totals: {
      cycles: clock.cycles,
      bytes: clock.bytes,
      macs: ops.filter((r) => r.op.startsWith("matmul")).reduce((s, r) => s + r.cycles, 0),
      loadMs: o.loadMs,
      samplingMs: samplingNs / 1e6,
      prefillMs: stage("prefill").durationMs,
      prefillMsPerToken: stage("prefill").durationMs / promptIds.length,
      prefillTokensPerSec: (promptIds.length * 1000) / stage("prefill").durationMs,
      decodeMs: stage("decode").durationMs,
      decodeMsPerToken: decodeSteps > 0 ? stage("decode").durationMs / decodeSteps : 0,
      decodeTokensPerSec: decodeSteps > 0 ? (decodeSteps * 1000) / stage("decode").durationMs : 0,
      peakRssBytes: model.engine.platform.peakMemoryBytes(),
    },
  };
  return { record, clock };
}
