import type { ModelCosts, ProfileKey } from "../profile/machine-profile.ts";
import type { Bound } from "../profile/roofline.ts";

/*
 * The one plain-data record of a generation run. The terminal report and --json (and later
 * views) render it; none of them recomputes a figure.
 */

/** The article's four stages, in order, with the names it gives them. */
export const STAGES = [
  { name: "preprocess", article: "input preprocessing", what: "tokenize the prompt" },
  { name: "prefill", article: '"encoder"', what: "run the prompt through the model at once" },
  { name: "decode", article: '"decoder"', what: "generate token by token" },
  { name: "postprocess", article: "postprocessing", what: "detokenize" },
] as const;

/** How each stop reason reads in a report. */
export const STOP_REASONS: Record<RunRecord["stopReason"], string> = {
  "max-new-tokens": "max new tokens",
  "end-of-text": "stopped at <|endoftext|>",
  interrupted: "interrupted (Ctrl-C, or Stop in the playground)",
};

export type StageName = (typeof STAGES)[number]["name"];

export interface StageRecord {
  name: StageName;
  /** Unix time in ms when the stage began (the article's timestamps). */
  startUnixMs: number;
  durationMs: number;
  cycles: number;
  bytes: number;
  /**
   * The article's processing delay, predicted from the machine profile: Σ over op calls of
   * call cost + max(cycles ÷ compute roof, bytes ÷ memory roof) (the sum, for a weight product on
   * many rows), plus each pass's time between ops.
   */
  predictedMs: number;
}

export interface OpRecord {
  /** Op kind: the op name, with the matmul's role, e.g. "matmul(qkv)". */
  op: string;
  /** The kernels that ran this kind's calls (matmuls only), e.g. "simd matvec relaxed". */
  kernel: string;
  calls: number;
  cycles: number;
  bytes: number;
  ms: number;
  /** The roofline's time for these calls, and which of its terms dominates. */
  predictedMs: number;
  bound: Bound;
}

export interface StepRecord {
  id: number;
  /** The five highest logits of the distribution the token was chosen from. */
  top: { id: number; logit: number }[];
  /** Positions the model attended over for this forward pass (prompt and earlier tokens included). */
  context: number;
  /** Sequences the pass ran for (a decode batch); `id` and `top` are the first one's. */
  rows: number;
  cycles: number;
  bytes: number;
  /** Of those, the two attention products: the only work that grows with the context. */
  attentionCycles: number;
  ms: number;
  predictedMs: number;
  /** The pass's kernel calls, the barriers where its threads waited for each other, and how many threads ran it. */
  calls: number;
  barriers: number;
  threads: number;
  /** Whether its plan was restored from the steps before it rather than recorded (src/kernels/replay.ts). */
  restored: boolean;
}

export interface SequenceRecord {
  /** Its sampling seed stream: the run's seed plus its index. */
  seed: number;
  generatedIds: number[];
  text: string;
  stopReason: RunRecord["stopReason"];
  /** Its own decoded tokens ÷ the decode stage's time. */
  decodeTokensPerSec: number;
}

export interface LayerRecord {
  layer: number;
  cycles: number;
  bytes: number;
  ms: number;
}

/** The profile's figures, with its key's machine and settings (not the model shape) flattened in. */
/** The profile a prediction used, as read for the run's model (src/profile/ladder.ts). */
export interface MachineRecord extends ModelCosts, ProfileKey {
  measuredAt: string;
  measureSeconds: number;
  /** "cache" or "measured": this machine's profile; "file": another machine's (--machine). */
  source: "cache" | "measured" | "file";
  path: string;
  /**
   * This machine's profile is rescaled to the roofs and call costs its warm-up measured
   * (src/profile/drift.ts): the factors, and the roofs as profiled (the record's own roofs are the rescaled ones). Null
   * for another machine's profile, used as it is.
   */
  drift: { memory: number; compute: number; calls: number; profiled: { memoryBytesPerSec: number; computeCyclesPerSec: number } } | null;
}

export interface RunRecord {
  /** `name`: the GPT-2 size whose shape it has (src/model/family.ts), or null. */
  model: { path: string; name: string | null; nLayer: number; nHead: number; nEmbd: number; nPositions: number; vocabSize: number; parameters: number };
  weights: "file" | "random";
  kernel: string;
  threads: number;
  /**
   * How the passes were shared among the threads: barriers (synchronisations) in the prompt's pass
   * and per generated token, and the passes that ran on the calling thread alone because, with
   * the machine as busy as it was, that was faster than all the threads.
   */
  parallel: { prefillBarriers: number; barriersPerToken: number; passes: number; alonePasses: number; restoredPasses: number };
  /** Where it ran: the JavaScript runtime, and whether WebAssembly's relaxed SIMD (fused multiply-add) was available. */
  runtime: { name: string; version: string; relaxedSimd: boolean };
  prompt: string | null;
  promptIds: number[];
  generatedIds: number[];
  /** The generated part only. */
  text: string;
  /** "interrupted": Ctrl-C stopped the run after a token; the record holds what ran. */
  stopReason: "max-new-tokens" | "end-of-text" | "interrupted";
  sampling: { doSample: boolean; temperature: number; topK: number; topP: number; seed: number };
  /**
   * With several sequences (one prefill, decoded together): each one's tokens, text and rate.
   * The fields above hold the first one's; `totals` count them all.
   */
  sequences?: SequenceRecord[];
  steps: StepRecord[];
  stages: StageRecord[];
  ops: OpRecord[];
  /** The same table for each stage that ran ops (prefill, decode). */
  opsByStage: Partial<Record<StageName, OpRecord[]>>;
  layers: LayerRecord[];
  /** The machine profile the prediction used: its roofs, call costs, and where it came from. */
  machine: MachineRecord;
  totals: {
    cycles: number;
    bytes: number;
    /** Cycles of the matmul-type ops alone: the figure the analytic MAC formula predicts. */
    macs: number;
    loadMs: number;
    samplingMs: number;
    prefillMs: number;
    prefillMsPerToken: number;
    prefillTokensPerSec: number;
    decodeMs: number;
    /** Tokens the decode passes made, over all sequences. */
    decodeTokens: number;
    decodeMsPerToken: number;
    decodeTokensPerSec: number;
    peakRssBytes: number;
  };
}
