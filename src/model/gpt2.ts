import { markLayer } from "../clock/clock.ts";
import { add } from "../tensor/add.ts";
import { nextBlock } from "../tensor/alloc.ts";
import { attentionScores, attentionValues } from "../tensor/attention.ts";
import { embed } from "../tensor/embedding.ts";
import { gelu } from "../tensor/gelu.ts";
import { layerNorm } from "../tensor/layer-norm.ts";
import { matmul } from "../tensor/matmul.ts";
import { scale } from "../tensor/scale.ts";
import { causalSoftmax } from "../tensor/softmax.ts";
import { splitColumns } from "../tensor/split.ts";
import { stackRows } from "../tensor/stack.ts";
import type { Tensor } from "../tensor/tensor.ts";
import type { GPT2Config } from "./config.ts";
import type { KVCache } from "./kv-cache.ts";
import type { Block, GPT2Params, Linear, Norm } from "./params.ts";

/*
 * GPT-2's forward pass, built only from counted primitives. Shapes: T new tokens, `past`
 * cached positions, d = n_embd, H = n_head, V = vocab. Per block it is
 *   x = x + attn(ln_1(x)),  x = x + mlp(ln_2(x)),
 * then ln_f and the LM head tied to the token embedding (p.wte is held as the head's B = wteᵀ).
 */

const linear = (x: Tensor, p: Linear, role: string): Tensor => add(matmul(x, p.weight, role), p.bias);
const norm = (x: Tensor, p: Norm, eps: number): Tensor => layerNorm(x, p.weight, p.bias, eps);

/**
 * Causal self-attention of each sequence on its own cache, step by step for all of them at once
 * (a decode batch's sequences do each step side by side, so their steps share the threads).
 */
function selfAttention(q: Tensor[], k: Tensor[], v: Tensor[], caches: readonly KVCache[], layer: number, heads: number): Tensor[] {
  const past = caches.map((cache) => cache.length);
  const kv = caches.map((cache, s) => cache.append(layer, k[s], v[s]));       // [past+T, d] each
  const headWidth = q[0].shape[1] / heads;
  const scaled = q.map((qs) => scale(qs, 1 / Math.sqrt(headWidth)));
  const scores = scaled.map((qs, s) => attentionScores(qs, kv[s].keys, heads, past[s])); // [H, T, past+T], j ≤ past+i only
  const weights = scores.map((sc, s) => causalSoftmax(sc, past[s]));
  return weights.map((w, s) => attentionValues(w, kv[s].values, past[s]));  // [T, d]
}

function attention(x: Tensor, p: Block["attn"], caches: readonly KVCache[], layer: number, heads: number): Tensor {
  const qkv = linear(x, p.c_attn, "qkv");                                    // [T, 3d]
  // One sequence's T tokens on its cache, or a batch's one token per sequence, each on its own.
  const rows = caches.length === 1 ? [qkv] : caches.map((_, s) => qkv.sliceRows(s, s + 1));
  const parts = rows.map((row) => splitColumns(row, 3));                     // q, k, v [T, d] of each (one row's: views)
  const [q, k, v] = [0, 1, 2].map((i) => parts.map((qkvOfRow) => qkvOfRow[i]));
  const mixed = stackRows(selfAttention(q, k, v, caches, layer, heads));
  return linear(mixed, p.c_proj, "attn proj");                              // [T, d]
}

function mlp(x: Tensor, p: Block["mlp"]): Tensor {
  return linear(gelu(linear(x, p.c_fc, "mlp up")), p.c_proj, "mlp down");  // [T, 4d] → [T, d]
}

/** The tokens' embeddings at their positions: one sequence's next T on its cache, or a batch's one each. */
export function embedTokens(p: GPT2Params, ids: readonly number[], caches: readonly KVCache[]): Tensor {
  const positions = caches.length === 1 ? ids.map((_, i) => caches[0].length + i) : caches.map((cache) => cache.length);
  return embed(p.wte, p.wpe, ids, positions);
}

/**
 * Runs `ids` through the model and returns the logits [rows, V] of the last `logitRows` rows —
 * usually 1: only the logits that are used are computed. With one cache, `ids` are the next T
 * tokens of its sequence; with several (a decode batch), the next token of each.
 */
export function gpt2(p: GPT2Params, c: GPT2Config, ids: readonly number[], caches: readonly KVCache[], logitRows = 1): Tensor {
  let x = embedTokens(p, ids, caches);                                      // [T, d]
  for (let i = 0; i < c.nLayer; i++) {
    markLayer(i);
    nextBlock();                                                            // outputs of block i−2 are dead
    const block = p.h[i];
    x = add(x, attention(norm(x, block.ln_1, c.layerNormEpsilon), block.attn, caches, i, c.nHead)); // [T, d]
    x = add(x, mlp(norm(x, block.ln_2, c.layerNormEpsilon), block.mlp));    // [T, d]
  }
  markLayer(-1);
  nextBlock();
  for (const cache of caches) cache.length += ids.length / caches.length;
  const last = x.sliceRows(ids.length - logitRows, ids.length);             // [rows, d]
  return matmul(norm(last, p.ln_f, c.layerNormEpsilon), p.wte, "lm head");   // [rows, V]
}
