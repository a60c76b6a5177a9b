/** GPT-2's hyper-parameters, read from a Hugging Face config.json. */
export interface GPT2Config {
  nLayer: number;
  nHead: number;
  nEmbd: number;
  nPositions: number;
  vocabSize: number;
  layerNormEpsilon: number;
}

/** GPT-2 small (openai-community/gpt2): 124M parameters. */
export const GPT2_SMALL: GPT2Config = { nLayer: 12, nHead: 12, nEmbd: 768, nPositions: 1024, vocabSize: 50257, layerNormEpsilon: 1e-5 };

/** Validates a parsed config.json; `source` names the file in errors. */
export function parseConfig(json: unknown, source: string): GPT2Config {
  const fail = (what: string): never => {
    throw new Error(`${source}: ${what}`);
  };
  if (json === null || typeof json !== "object") fail("is not a JSON object");
  const c = json as Record<string, unknown>;
  const int = (key: string, fallbackKey?: string): number => {
    const v = c[key] ?? (fallbackKey === undefined ? undefined : c[fallbackKey]);
    if (typeof v !== "number" || !Number.isInteger(v) || v < 1) fail(`"${key}" must be a positive integer, got ${JSON.stringify(v)}`);
    return v as number;
  };
  const config: GPT2Config = {
    nLayer: int("n_layer"),
    nHead: int("n_head"),
    nEmbd: int("n_embd"),
    nPositions: int("n_positions", "n_ctx"),
    vocabSize: int("vocab_size"),
    layerNormEpsilon: epsilon(c.layer_norm_epsilon),
  };
  function epsilon(v: unknown): number {
    if (v === undefined) return 1e-5;
    // Not above 1: it is added to a variance to keep 1/√ finite, a small number by design.
    if (typeof v !== "number" || !(v > 0 && v <= 1)) fail(`"layer_norm_epsilon" must be a number in (0, 1], got ${JSON.stringify(v)}`);
    return v as number;
  }
  if (config.nEmbd % config.nHead !== 0) fail(`n_embd ${config.nEmbd} is not divisible by n_head ${config.nHead}`);
  const act = c.activation_function;
  if (act !== undefined && act !== "gelu_new") fail(`activation_function "${String(act)}" is not GPT-2's "gelu_new"`);
  return config;
}
