import { Clock } from "../clock/clock.ts";
import type { EngineSettings } from "../kernels/engine.ts";
import type { GPT2Model } from "../model/model.ts";
import { type Drift, rescaled } from "../profile/drift.ts";
import { costsFor } from "../profile/ladder.ts";
import type { ProfileKey } from "../profile/machine-profile.ts";
import { type Bound, predictStepsNs } from "../profile/roofline.ts";
import { opTable, stageBound } from "./aggregate.ts";
import { type JoinPattern, markJoined } from "./join-probe.ts";
import { type MachineSelection, modelRecord } from "./generate-run.ts";
import type { RunRecord } from "./record.ts";

/*
 * The article's formula before anything runs: a generation's passes counted — every op's cycles
 * and bytes from its shapes, on a model whose engine only counts (no weights, no kernels; see
 * Engine.countsOnly) — and priced on a machine profile read for the model. The same forward pass
 * and the same roofline as a run's prediction, so the two agree call for call.
 */

export interface PredictedStage {
  name: "prefill" | "decode";
  /** Tokens the stage's passes take in: the prompt, or one per generated token after the first. */
  tokens: number;
  cycles: number;
  bytes: number;
  predictedMs: number;
  /** Where most of its predicted time goes (see stageBound). */
  bound: string;
}

export interface PredictedOp {
  op: string;
  calls: number;
  cycles: number;
  bytes: number;
  predictedMs: number;
  bound: Bound;
}

/** What generate.ts --predict-only reports: a run's prediction, with nothing measured. */
export interface PredictionRecord {
  model: RunRecord["model"];
  /** The setting predicted. */
  settings: EngineSettings;
  /** The profile read for the model, rescaled by `drift` (this machine's, measured by a calibration) or as it is (another's). */
  machine: ProfileKey & { source: MachineSelection["source"]; path: string; measuredAt: string; memoryBytesPerSec: number; computeCyclesPerSec: number; extrapolated: string | null; drift: Drift | null };
  promptIds: number[];
  maxNewTokens: number;
  stages: PredictedStage[];
  ops: PredictedOp[];
  decodeMsPerToken: number;
  decodeTokensPerSec: number;
}

/**
 * Counts the passes of generating `maxNewTokens` tokens after `promptIds` (the prompt's pass picks
 * the first) on `model`, whose engine must only count, and predicts them on `machine`'s profile
 * rescaled by `drift` (see src/profile/calibrate.ts; null: as it is). `joins`: which calls would
 * join the product before them on the setting's engine (see join-probe.ts).
 */
export function predictOnly(model: GPT2Model, settings: EngineSettings, machine: MachineSelection, promptIds: readonly number[], maxNewTokens: number, sampling: "greedy" | "sample", drift: Drift | null, joins: JoinPattern): PredictionRecord {
  if (!model.engine.countsOnly) throw new Error("predictOnly: the model's engine must only count (countsOnly)");
  const clock = new Clock();
  const cache = model.newCache(promptIds.length + maxNewTokens);
  const into = new Float32Array(model.config.vocabSize);
  clock.setStep(0);
  clock.stage("prefill", () => model.step([...promptIds], cache, 1, into));
  clock.stage("decode", () => {
    for (let step = 1; step < maxNewTokens; step++) {
      clock.setStep(step);
      model.step([0], cache, 1, into);
    }
  });
  clock.setStep(-1);
  const calls = markJoined(clock.entries, joins);

  const read = costsFor(machine.profile, model.config, settings.dtype);
  const costs = drift === null ? read : rescaled(read, drift);
  const stepNs = predictStepsNs(costs, calls, Array.from({ length: maxNewTokens }, (_, i) => ({ tokens: i === 0 ? promptIds.length : 1, picks: 1, prompt: i === 0 })), sampling);
  const stages = (["prefill", "decode"] as const).map((name): PredictedStage => {
    const entries = calls.filter((e) => e.stage === name);
    const ns = name === "prefill" ? stepNs[0] : stepNs.slice(1).reduce((s, x) => s + x, 0);
    return {
      name,
      tokens: name === "prefill" ? promptIds.length : maxNewTokens - 1,
      cycles: entries.reduce((s, e) => s + e.cycles, 0),
      bytes: entries.reduce((s, e) => s + e.bytes, 0),
      predictedMs: ns / 1e6,
      bound: stageBound(opTable(entries, costs)),
    };
  });
  const decode = stages[1];
  return {
    model: modelRecord(model.config, "(no weights: predicted)"),
    settings,
    machine: { ...machine.profile.key, source: machine.source, path: machine.path, measuredAt: machine.profile.measuredAt, memoryBytesPerSec: costs.memoryBytesPerSec, computeCyclesPerSec: costs.computeCyclesPerSec, extrapolated: costs.extrapolated, drift },
    promptIds: [...promptIds],
    maxNewTokens,
    stages,
    ops: opTable(calls, costs).map(({ op, calls, cycles, bytes, predictedMs, bound }) => ({ op, calls, cycles, bytes, predictedMs, bound })),
    decodeMsPerToken: decode.tokens > 0 ? decode.predictedMs / decode.tokens : 0,
    decodeTokensPerSec: decode.tokens > 0 ? (1000 * decode.tokens) / decode.predictedMs : 0,
  };
}
