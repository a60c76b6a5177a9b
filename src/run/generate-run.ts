import { Clock, type OpEntry } from "../clock/clock.ts";
import type { Engine } from "../kernels/engine.ts";
import type { KVCache } from "../model/kv-cache.ts";
import { familyOf, parameterCounts } from "../model/family.ts";
import type { GPT2Config } from "../model/config.ts";
import type { GPT2Model } from "../model/model.ts";
import type { Tokenizer } from "../tokenizer/tokenizer.ts";
import { runtimeInfo } from "../util/js-runtime.ts";
import { Random } from "../util/random.ts";
import { relaxedAvailable } from "../wasm/runtime.ts";
import { type Drift, measureDrift, rescaled } from "../profile/drift.ts";
import { costsFor } from "../profile/ladder.ts";
import type { MachineProfile, ModelCosts } from "../profile/machine-profile.ts";
import { WARM_UPS, passShape } from "../profile/measure.ts";
import { predictStepsNs } from "../profile/roofline.ts";
import { ATTENTION_ROLES, layerTable, opTable } from "./aggregate.ts";
import type { MachineRecord, RunRecord, StageName, StageRecord, StepRecord } from "./record.ts";
import { GREEDY, type SamplingOptions, TokenPicker } from "./sampling.ts";
import { Utf8Stream, renderUtf8 } from "./utf8-stream.ts";

export interface GenerateOptions {
  model: GPT2Model;
  /** null (the default): no tokenizer for this model; the prompt must come as ids and text is shown as ids. */
  tokenizer?: Tokenizer | null;
  /** Text to tokenize, or null when `inputIds` are given. */
  prompt?: string | null;
  inputIds?: number[] | null;
  maxNewTokens: number;
  /** How each token is picked (default GREEDY). */
  sampling?: SamplingOptions;
  /** Sequence s samples with the seed stream `seed + s` (default 0). */
  seed?: number;
  /**
   * Sequences to generate from the prompt (default 1): its prefill runs once, and they decode
   * together, one row each in every product, until each stops.
   */
  sequences?: number;
  /** Stop when the model emits <|endoftext|>, as Hugging Face's generate does (default true). */
  stopAtEndOfText?: boolean;
  /** How long loading the model took, for the record (default 0). */
  loadMs?: number;
  /**
   * The machine profile that predicts the run's time (this machine's, or another's from a file),
   * asked for once the run is over: a page that has none yet measures it then, so the first
   * token does not wait for it.
   */
  machine: () => Promise<MachineSelection>;
  /** Receives the generated text as it becomes printable (of a single sequence only). */
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
 * The profile's warm-up rounds of passes (or one short round) on a throwaway cache, so the JIT
 * has compiled the hot code and the timed run measures steady-state speed, as the profile did
 * (which chose the kernels). The last round's op calls are returned: they say how fast the
 * machine is today (see src/profile/drift.ts).
 */
export function warmUp(model: GPT2Model, sampling: SamplingOptions, picker: TokenPicker, kind: "profile" | "short"): readonly OpEntry[] {
  const { prefill, decode } = warmUpShape(model.config.nPositions, kind);
  const ids = Array.from({ length: prefill }, (_, i) => (i * 7919) % model.config.vocabSize);
  const cache = model.newCache(prefill + decode);
  const rng = new Random(0);
  const into = new Float32Array(model.config.vocabSize);
  const rounds = kind === "short" ? 1 : WARM_UPS;
  const clock = new Clock();
  // Each pass picks a token as the run will, so that code is compiled too.
  const pass = (tokens: number[], timed: boolean) => {
    const logits = (timed ? clock.run(() => model.step(tokens, cache, 1, into)) : model.step(tokens, cache, 1, into)).data;
    picker.pick(logits, sampling, rng);
    picker.top(logits, 5);
  };
  for (let round = 0; round < rounds; round++) {
    cache.length = 0; // rewound: the next round writes over the same positions
    pass(ids, round === rounds - 1);
    for (let i = 0; i < decode; i++) pass([ids[i]], round === rounds - 1);
  }
  return clock.entries;
}

/** The warm-up's prompt and decode steps. */
function warmUpShape(nPositions: number, kind: "profile" | "short"): { prefill: number; decode: number } {
  return kind === "short" ? { prefill: Math.min(8, nPositions - 2), decode: 2 } : passShape(nPositions);
}

/** Positions of the warm-up's cache (a run holds it besides its sequences' caches). */
export function warmUpPositions(nPositions: number, kind: "profile" | "short" = "profile"): number {
  const { prefill, decode } = warmUpShape(nPositions, kind);
  return prefill + decode;
}

/** The record's view of the profile a prediction used: read for the model (`read`), then rescaled by `drift` (null: as read). */
function machineRecord(m: MachineSelection, read: ModelCosts, costs: ModelCosts, drift: Drift | null): MachineRecord {
  const profiled = { memoryBytesPerSec: read.memoryBytesPerSec, computeCyclesPerSec: read.computeCyclesPerSec };
  return { source: m.source, path: m.path, ...m.profile.key, measuredAt: m.profile.measuredAt, measureSeconds: m.profile.measureSeconds, ...costs, drift: drift === null ? null : { ...drift, profiled } };
}

/** The record's model: its shape, its size's name (if it has one's shape) and its parameters. */
export function modelRecord(c: GPT2Config, path: string): RunRecord["model"] {
  const parameters = parameterCounts(c);
  return {
    path, name: familyOf(c)?.name ?? null,
    nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, nPositions: c.nPositions, vocabSize: c.vocabSize,
    parameters: parameters.matmul + parameters.others,
  };
}

/** One sequence's progress through a run. */
interface Sequence {
  seed: number;
  rng: Random;
  cache: KVCache;
  generated: number[];
  stopReason: RunRecord["stopReason"];
}

/** One generation run: the article's four stages, every op on the clock, one record out. */
export async function generate(options: GenerateOptions): Promise<{ record: RunRecord; clock: Clock }> {
  const o: Required<Pick<GenerateOptions, "tokenizer" | "prompt" | "inputIds" | "sampling" | "seed" | "stopAtEndOfText" | "loadMs">> & GenerateOptions =
    { tokenizer: null, prompt: null, inputIds: null, sampling: GREEDY, seed: 0, stopAtEndOfText: true, loadMs: 0, ...options };
  const { model, tokenizer } = o;
  const count = o.sequences ?? 1;
  await model.engine.ready();
  // The warm-up's cache and the run's: none may grow the kernels' memory once the clock runs.
  // (The prompt is encoded here untimed for its length, and again in its stage, timed.)
  const promptLength = o.inputIds?.length ?? tokenizer!.encode(o.prompt!).length;
  model.reserveCaches(1, warmUpPositions(model.config.nPositions, o.warmUp));
  model.reserveCaches(count, promptLength + o.maxNewTokens);
  const picker = new TokenPicker(model.config.vocabSize);
  // Every pass's logits land here (see GPT2Model.step).
  const logitsInto = new Float32Array(count * model.config.vocabSize);
  const warmUpCalls = warmUp(model, o.sampling, picker, o.warmUp ?? "profile");
  const alonePassesBefore = model.engine.alonePasses;
  const clock = new Clock();
  const steps: StepRecord[] = [];
  const stream = new Utf8Stream();
  const show = (ids: number[]): string => (tokenizer === null ? ids.map((id) => `[${id}]`).join("") : stream.push(tokenizer.decodeBytes(ids)));
  let samplingNs = 0;

  /**
   * Runs one forward pass — the prompt, or one token of every sequence still going — and picks
   * each sequence's next token from its row of logits, recording the step.
   */
  const forwardAndPick = (pass: () => Float32Array, going: Sequence[], step: number): void => {
    clock.setStep(step);
    const t0 = clock.now();
    const cycles0 = clock.cycles;
    const bytes0 = clock.bytes;
    const firstEntry = clock.entries.length;
    const logits = pass();
    const t1 = clock.now();
    let attentionCycles = 0;
    for (let i = firstEntry; i < clock.entries.length; i++) if (ATTENTION_ROLES.has(clock.entries[i].role)) attentionCycles += clock.entries[i].cycles;
    const vocab = model.config.vocabSize;
    // Each sequence picks from its own row (after the prompt's pass, all from the one row).
    const row = (s: number) => logits.subarray(s * vocab, (s + 1) * vocab);
    const ids = going.map((q, s) => picker.pick(row(step === 0 ? 0 : s), o.sampling, q.rng));
    const top = picker.top(row(0), 5);
    samplingNs += clock.now() - t1;
    const { calls, barriers, threads, restored } = model.engine.lastPass;
    steps.push({ id: ids[0], top, context: going[0].cache.length, rows: going.length, cycles: clock.cycles - cycles0, bytes: clock.bytes - bytes0, attentionCycles, ms: (t1 - t0) / 1e6, predictedMs: 0, calls, barriers, threads, restored });
    going.forEach((q, s) => {
      q.generated.push(ids[s]);
      if (ids[s] === tokenizer?.endOfText && o.stopAtEndOfText) q.stopReason = "end-of-text";
      else if (count === 1) o.onText?.(show([ids[s]]));
    });
    o.onStep?.(clock, steps);
  };

  const promptIds = clock.run(() => clock.stage("preprocess", () => o.inputIds ?? tokenizer!.encode(o.prompt!)));
  const capacity = promptIds.length + o.maxNewTokens;
  const sequences: Sequence[] = Array.from({ length: count }, (_, s) => ({
    seed: o.seed + s, rng: new Random(o.seed + s), cache: model.newCache(capacity), generated: [], stopReason: "max-new-tokens",
  }));
  // Untimed, as the caches' memory is: the prompt's pass makes its scratch memory now (Engine.rehearse).
  model.rehearse(promptIds, sequences[0].cache);
  clock.stage("prefill", () => {
    forwardAndPick(() => model.step(promptIds, sequences[0].cache, 1, logitsInto).data, sequences, 0);
    // The prompt's keys and values, computed once, continue in every sequence.
    for (const q of sequences.slice(1)) q.cache.copyFrom(sequences[0].cache);
  });
  await o.betweenTokens?.();
  const going = () => sequences.filter((q) => q.stopReason === "max-new-tokens" && q.generated.length < o.maxNewTokens);
  await clock.stageAsync("decode", async () => {
    for (let batch = going(); batch.length > 0; batch = going()) {
      if (o.shouldStop?.() === true) {
        for (const q of batch) q.stopReason = "interrupted";
        break;
      }
      const last = batch.map((q) => q.generated[q.generated.length - 1]);
      clock.run(() => forwardAndPick(() => model.stepBatch(last, batch.map((q) => q.cache), logitsInto).data, batch, steps.length));
      await o.betweenTokens?.();
    }
  });
  clock.setStep(-1);
  const kept = (q: Sequence) => (q.stopReason === "end-of-text" ? q.generated.slice(0, -1) : q.generated);
  const texts: string[] = [];
  clock.stage("postprocess", () => {
    if (count === 1) o.onText?.(tokenizer === null ? "" : stream.flush());
    for (const q of sequences) texts.push(tokenizer === null ? kept(q).join(" ") : renderUtf8(tokenizer.decodeBytes(kept(q))));
  });

  const machine = await o.machine();
  // This machine's profile, rescaled to how fast the warm-up found the machine today; another
  // machine's (--machine) as it is.
  const read = costsFor(machine.profile, model.config, model.engine.dtype);
  const drift = machine.source === "file" ? null : measureDrift(read, warmUpCalls);
  const profile = drift === null ? read : rescaled(read, drift);
  // The prediction: every op call on the roofline, plus each forward pass's time between ops.
  const sampler = o.sampling.doSample ? "sample" : "greedy";
  const stepNs = predictStepsNs(profile, clock.entries, steps.map((step, i) => ({ tokens: i === 0 ? promptIds.length : step.rows, picks: step.rows, prompt: i === 0 })), sampler);
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
  // Tokens made by decode passes: all but each sequence's first, which the prompt's pass gave.
  const decodeTokens = sequences.reduce((sum, q) => sum + q.generated.length - 1, 0);
  const perSecond = (tokens: number) => (tokens > 0 ? (tokens * 1000) / stage("decode").durationMs : 0);
  const ops = opTable(clock.entries, profile);
  const c = model.config;
  const where = runtimeInfo();
  const record: RunRecord = {
    model: modelRecord(c, model.weights.kind === "file" ? model.weights.path : "(random weights)"),
    weights: model.weights.kind,
    kernel: engineLabel(model.engine),
    threads: model.engine.threads,
    parallel: {
      prefillBarriers: steps[0].barriers,
      barriersPerToken: steps.length > 1 ? steps.slice(1).reduce((sum, s) => sum + s.barriers / s.rows, 0) / (steps.length - 1) : 0,
      passes: steps.length,
      alonePasses: model.engine.alonePasses - alonePassesBefore,
      restoredPasses: steps.filter((s) => s.restored).length,
    },
    runtime: { name: where.name, version: where.version, relaxedSimd: relaxedAvailable() },
    prompt: o.inputIds === null ? o.prompt : null,
    promptIds,
    generatedIds: sequences[0].generated,
    text: texts[0],
    stopReason: sequences[0].stopReason,
    sampling: { ...o.sampling, seed: o.seed },
    steps,
    stages,
    ops,
    opsByStage: { prefill: opTable(entriesOf("prefill"), profile), decode: opTable(entriesOf("decode"), profile) },
    layers: layerTable(clock.entries, c.nLayer),
    machine: machineRecord(machine, read, profile, drift),
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
      decodeTokens,
      decodeMsPerToken: decodeTokens > 0 ? stage("decode").durationMs / decodeTokens : 0,
      decodeTokensPerSec: perSecond(decodeTokens),
      peakRssBytes: model.engine.platform.peakMemoryBytes(),
    },
  };
  if (count > 1) {
    record.sequences = sequences.map((q, s) => ({
      seed: q.seed, generatedIds: q.generated, text: texts[s], stopReason: q.stopReason, decodeTokensPerSec: perSecond(q.generated.length - 1),
    }));
  }
  return { record, clock };
}
