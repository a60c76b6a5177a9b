import { type GPT2Config, GPT2_SMALL } from "./config.ts";

/**
 * The published GPT-2 sizes, by their Hugging Face names: OpenAI's four (openai-community/) and
 * DistilGPT2 (distilbert/). All share GPT-2's vocabulary, context and layer norm epsilon.
 */
export interface FamilyMember {
  name: string;
  /** The hub repository `npm run fetch-weights -- --model NAME` downloads. */
  repository: string;
  config: GPT2Config;
}

const member = (name: string, repository: string, nLayer: number, nHead: number, nEmbd: number): FamilyMember => ({
  name, repository, config: { ...GPT2_SMALL, nLayer, nHead, nEmbd },
});

export const GPT2_FAMILY: readonly FamilyMember[] = [
  member("gpt2", "openai-community/gpt2", 12, 12, 768),
  member("gpt2-medium", "openai-community/gpt2-medium", 24, 16, 1024),
  member("gpt2-large", "openai-community/gpt2-large", 36, 20, 1280),
  member("gpt2-xl", "openai-community/gpt2-xl", 48, 25, 1600),
  member("distilgpt2", "distilbert/distilgpt2", 6, 12, 768),
];

/** The member called `name`, or undefined. */
export function familyMember(name: string): FamilyMember | undefined {
  return GPT2_FAMILY.find((m) => m.name === name);
}

/** The member whose shape a config has, or undefined (a model of its own shape). */
export function familyOf(c: GPT2Config): FamilyMember | undefined {
  return GPT2_FAMILY.find(({ config: f }) => f.nLayer === c.nLayer && f.nHead === c.nHead && f.nEmbd === c.nEmbd && f.nPositions === c.nPositions && f.vocabSize === c.vocabSize);
}

/** Parameters of a config: the matmul weights (which the dtype sets the width of) and the rest (f32). */
export function parameterCounts(c: GPT2Config): { matmul: number; others: number } {
  return {
    matmul: c.nLayer * 12 * c.nEmbd * c.nEmbd + c.vocabSize * c.nEmbd,
    others: c.nPositions * c.nEmbd + c.nLayer * 13 * c.nEmbd + 2 * c.nEmbd,
  };
}
