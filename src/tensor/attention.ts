import { opEnd, opStart } from "../clock/clock.ts";
import { compute, contextFloats, outputFloats } from "./alloc.ts";
import { activeEngine } from "../kernels/engine.ts";
import { simdScores, simdValues } from "../kernels/simd-attention.ts";
import { F32_BYTES, Tensor, shapeError } from "./tensor.ts";

/*
 * Causal multi-head attention as two matmul-type ops that do only the visible work.
 * Query i sits at position past + i and sees keys 0..past+i, so over T new queries each
 * head does Σ(past+i+1) dot products of length d/H: d·(T·past + T(T+1)/2) cycles per op,
 * about half of what a dense masked product would spend.
 * Bytes, with P = T·past + T(T+1)/2 visible pairs per head: scores read the queries (4·T·d) and the
 * cached keys (4·(past+T)·d) and write H·P scores; values read those H·P weights and the cached
 * values (4·(past+T)·d) and write 4·T·d.
 */

function visiblePairs(tq: number, past: number): number {
  return tq * past + (tq * (tq + 1)) / 2;
}

function checkHeads(op: string, d: number, heads: number, ...shapes: readonly number[][]): number {
  if (!Number.isInteger(heads) || heads < 1 || d % heads !== 0) {
    throw shapeError(op, `width ${d} does not split into ${heads} heads`, ...shapes);
  }
  return d / heads;
}

/** scores[h,i,j] = q_h[i] · k_h[j] for j ≤ past+i; q [T,d], keys [past+T, d] → [H, T, past+T]. */
export function attentionScores(q: Tensor, keys: Tensor, heads: number, past: number): Tensor {
  if (q.shape.length !== 2 || keys.shape.length !== 2 || q.shape[1] !== keys.shape[1] || keys.shape[0] !== past + q.shape[0]) {
    throw shapeError("attentionScores", `queries and keys disagree (past = ${past})`, q.shape, keys.shape);
  }
  const [tq, d] = q.shape;
  const tk = keys.shape[0];
  const hd = checkHeads("attentionScores", d, heads, [...q.shape], [...keys.shape]);
  const t0 = opStart();
  const out = contextFloats(heads * tq, tk);
  const qd = q.data;
  const kd = keys.data;
  const simd = simdScores(activeEngine(), qd, kd, out, d, heads, tq, past);
  if (!simd) compute(() => scoresLoops(qd, kd, out, d, heads, hd, tq, past, tk));
  opEnd("matmul", "attn scores", [q.shape, keys.shape], [heads, tq, tk], d * visiblePairs(tq, past), F32_BYTES * (tq * d + tk * d + heads * visiblePairs(tq, past)), t0, simd);
  return new Tensor(out, [heads, tq, tk]);
}

/** out_h[i] = Σ_{j ≤ past+i} p[h,i,j] · v_h[j]; probs [H, T, past+T], values [past+T, d] → [T, d]. */
export function attentionValues(probs: Tensor, values: Tensor, past: number): Tensor {
  if (probs.shape.length !== 3 || values.shape.length !== 2 || probs.shape[2] !== values.shape[0] || values.shape[0] !== past + probs.shape[1]) {
    throw shapeError("attentionValues", `weights and values disagree (past = ${past})`, probs.shape, values.shape);
  }
  const [heads, tq, tk] = probs.shape;
  const d = values.shape[1];
  const hd = checkHeads("attentionValues", d, heads, [...probs.shape], [...values.shape]);
  const t0 = opStart();
  const out = outputFloats(tq * d);
  const p = probs.data;
  const v = values.data;
  const simd = simdValues(activeEngine(), p, v, out, d, heads, tq, past);
  if (!simd) compute(() => valuesLoops(p, v, out, d, heads, hd, tq, past, tk));
  opEnd("matmul", "attn values", [probs.shape, values.shape], [tq, d], d * visiblePairs(tq, past), F32_BYTES * (heads * visiblePairs(tq, past) + tk * d + tq * d), t0, simd);
  return new Tensor(out, [tq, d]);
}

/** The scores in TypeScript, for caches outside the WebAssembly memory. */
function scoresLoops(qd: Float32Array, kd: Float32Array, out: Float32Array, d: number, heads: number, hd: number, tq: number, past: number, tk: number): void {
  // Key row by key row, all heads at once: each row of the cache is read once, front to back.
  const hd4 = hd - (hd % 4);
  for (let i = 0; i < tq; i++) {
    const last = past + i;
    for (let j = 0; j <= last; j++) {
      for (let h = 0; h < heads; h++) {
        const qRow = i * d + h * hd;
        const kRow = j * d + h * hd;
        let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        let c = 0;
        for (; c < hd4; c += 4) {
          s0 += qd[qRow + c] * kd[kRow + c];
          s1 += qd[qRow + c + 1] * kd[kRow + c + 1];
          s2 += qd[qRow + c + 2] * kd[kRow + c + 2];
          s3 += qd[qRow + c + 3] * kd[kRow + c + 3];
        }
        for (; c < hd; c++) s0 += qd[qRow + c] * kd[kRow + c];
        out[(h * tq + i) * tk + j] = s0 + s1 + s2 + s3;
      }
    }
  }
}

/** The weighted sum of values in TypeScript, for caches outside the WebAssembly memory. */
function valuesLoops(p: Float32Array, v: Float32Array, out: Float32Array, d: number, heads: number, hd: number, tq: number, past: number, tk: number): void {
  // Four output columns at a time in locals, so each value is read once per block and no
  // partial sum goes back to memory until its block is done.
  for (let h = 0; h < heads; h++) {
    const col = h * hd;
    for (let i = 0; i < tq; i++) {
      const outRow = i * d + col;
      const pRow = (h * tq + i) * tk;
      const last = past + i;
      let c = 0;
      for (; c + 4 <= hd; c += 4) {
        let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
        for (let j = 0, vRow = col + c; j <= last; j++, vRow += d) {
          const w = p[pRow + j];
          a0 += w * v[vRow];
          a1 += w * v[vRow + 1];
          a2 += w * v[vRow + 2];
          a3 += w * v[vRow + 3];
        }
        out[outRow + c] = a0; out[outRow + c + 1] = a1; out[outRow + c + 2] = a2; out[outRow + c + 3] = a3;
      }
      for (; c < hd; c++) {
        let a = 0;
        for (let j = 0; j <= last; j++) a += p[pRow + j] * v[j * d + col + c];
        out[outRow + c] = a;
      }
    }
  }
}
