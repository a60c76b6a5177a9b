import type { EngineSettings } from "../kernels/engine.ts";
import type { RunRecord } from "../run/record.ts";
import type { SamplingOptions } from "../run/sampling.ts";

/*
 * What the page and the engine's worker say to each other. The engine runs in a dedicated
 * worker because a pass's barriers block in Atomics.wait, which a page's main thread may not.
 */

/** Where the weights come from: seeded random numbers, the server's --model, or files picked from disk. */
/** `size`: a GPT-2 size's name (src/model/family.ts). */
export type WeightsChoice = { kind: "random"; size: string } | { kind: "server" } | { kind: "files"; config: File; weights: File };

export interface RunRequest {
  /** Text to tokenize, or null when `inputIds` are given. */
  prompt: string | null;
  inputIds: number[] | null;
  maxNewTokens: number;
  sampling: SamplingOptions;
  seed: number;
  /** Measure a missing machine profile on small shapes instead of the family's (for tests: fast; kept apart). */
  tinyProfileLadder: boolean;
}

export type ToEngine =
  | { type: "load"; weights: WeightsChoice; settings: EngineSettings }
  | { type: "threads"; threads: number }
  | { type: "run"; request: RunRequest }
  | { type: "stop" };

/** One op kind so far in a running generation. */
export interface LiveOp {
  op: string;
  calls: number;
  cycles: number;
  ms: number;
}

export interface LiveStage {
  name: string;
  startUnixMs: number;
  durationMs: number;
  cycles: number;
  open: boolean;
}

export interface LiveStep {
  context: number;
  cycles: number;
  ms: number;
}

export interface LoadedModel {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  /** Where the weights came from, as the record names it. */
  name: string;
  hasTokenizer: boolean;
  loadMs: number;
  settings: EngineSettings;
  simd: boolean;
}

export type FromEngine =
  | { type: "status"; text: string }
  | { type: "loaded"; model: LoadedModel }
  | { type: "text"; text: string }
  | { type: "live"; stages: LiveStage[]; ops: LiveOp[]; steps: LiveStep[] }
  | { type: "done"; record: RunRecord }
  | { type: "error"; message: string };
