import type { PackedMatrix } from "../kernels/packed-matrix.ts";
import { Tensor } from "../tensor/tensor.ts";

/*
 * GPT-2's parameters under the checkpoint's own names (h.{i}.attn.c_attn.weight → h[i].attn.c_attn.weight).
 * Conv1D weights are [in, out], so a linear layer is x·W + b.
 */

export interface Linear {
  /** [in, out], row-major as stored, or packed for the fast kernels at load time. */
  weight: Tensor | PackedMatrix;
  bias: Tensor;
}

export interface Norm {
  weight: Tensor;
  bias: Tensor;
}

export interface Block {
  ln_1: Norm;
  attn: { c_attn: Linear; c_proj: Linear };
  ln_2: Norm;
  mlp: { c_fc: Linear; c_proj: Linear };
}

export interface GPT2Params {
  /** The token embedding, held as the tied LM head's B = wteᵀ [d,V] (see PackedMatrix). */
  wte: PackedMatrix;
  wpe: Tensor;
  h: Block[];
  ln_f: Norm;
}

/** Every parameter's checkpoint name and shape for a config, in checkpoint order. */
export function parameterShapes(c: { nLayer: number; nEmbd: number; nPositions: number; vocabSize: number }): [string, number[]][] {
  const d = c.nEmbd;
  const list: [string, number[]][] = [["wte.weight", [c.vocabSize, d]], ["wpe.weight", [c.nPositions, d]]];
  for (let i = 0; i < c.nLayer; i++) {
    const p = `h.${i}.`;
    list.push(
      [`${p}ln_1.weight`, [d]], [`${p}ln_1.bias`, [d]],
      [`${p}attn.c_attn.weight`, [d, 3 * d]], [`${p}attn.c_attn.bias`, [3 * d]],
      [`${p}attn.c_proj.weight`, [d, d]], [`${p}attn.c_proj.bias`, [d]],
      [`${p}ln_2.weight`, [d]], [`${p}ln_2.bias`, [d]],
      [`${p}mlp.c_fc.weight`, [d, 4 * d]], [`${p}mlp.c_fc.bias`, [4 * d]],
      [`${p}mlp.c_proj.weight`, [4 * d, d]], [`${p}mlp.c_proj.bias`, [d]],
    );
  }
  list.push(["ln_f.weight", [d]], ["ln_f.bias", [d]]);
  return list;
}

/** Whether a checkpoint name is a Conv1D weight (the matmuls' B, which kernels may pack). */
export function isLinearWeight(name: string): boolean {
  return /\.(c_attn|c_proj|c_fc)\.weight$/.test(name);
}

/** Assembles the parameter records from a lookup by checkpoint name. */
export function assembleParams(nLayer: number, get: (name: string) => Tensor | PackedMatrix): GPT2Params {
  const norm = (p: string): Norm => ({ weight: get(`${p}.weight`) as Tensor, bias: get(`${p}.bias`) as Tensor });
  const lin = (p: string): Linear => ({ weight: get(`${p}.weight`), bias: get(`${p}.bias`) as Tensor });
  const h: Block[] = [];
  for (let i = 0; i < nLayer; i++) {
    h.push({
      ln_1: norm(`h.${i}.ln_1`),
      attn: { c_attn: lin(`h.${i}.attn.c_attn`), c_proj: lin(`h.${i}.attn.c_proj`) },
      ln_2: norm(`h.${i}.ln_2`),
      mlp: { c_fc: lin(`h.${i}.mlp.c_fc`), c_proj: lin(`h.${i}.mlp.c_proj`) },
    });
  }
  return { wte: get("wte.weight") as PackedMatrix, wpe: get("wpe.weight") as Tensor, h, ln_f: norm("ln_f") };
}

/** The parameters back under their checkpoint names and in the checkpoint's layout, in its order (the inverse of assembleParams). */
export function namedParameters(p: GPT2Params): [string, Tensor][] {
  const plain = (w: Tensor | PackedMatrix): Tensor => (w instanceof Tensor ? w : w.unpack());
  const list: [string, Tensor][] = [["wte.weight", p.wte.unpackTransposed()], ["wpe.weight", p.wpe]];
  p.h.forEach((b, i) => {
    const add = (name: string, l: Linear | Norm) => list.push([`h.${i}.${name}.weight`, plain(l.weight)], [`h.${i}.${name}.bias`, l.bias]);
    add("ln_1", b.ln_1);
    add("attn.c_attn", b.attn.c_attn);
    add("attn.c_proj", b.attn.c_proj);
    add("ln_2", b.ln_2);
    add("mlp.c_fc", b.mlp.c_fc);
    add("mlp.c_proj", b.mlp.c_proj);
  });
  list.push(["ln_f.weight", p.ln_f.weight], ["ln_f.bias", p.ln_f.bias]);
  return list;
}
