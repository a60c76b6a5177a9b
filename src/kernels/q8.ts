/*
 * 8-bit quantization in blocks of 32 along K, each block with its own scale: the layout
 * llama.cpp calls Q8_0, with round-half-to-even (as torch.round) so that a PyTorch reference
 * can apply exactly the same rounding.
 *
 * Weights use ±127 and a float16 scale: 34 bytes per 32 weights, as Q8_0 (decode streams every
 * weight once per token, so every byte of a block record is a byte of its memory traffic). A
 * weight is stored as q + 128 (1..255, the top bit flipped): the relaxed integer dot product
 * multiplies signed bytes by bytes that x86 reads as unsigned and Arm as signed, so the weights
 * take the second place and the activations, signed, the first. Either reading of the stored
 * byte is q ± 128, and the kernels take 128·Σ q_a back out per block — one number per block of
 * a row of activations, which the quantizer writes beside the scales — whatever the weights.
 * Activations, quantized on the fly row by row before each q8 product, use ±63: a pair of their
 * products with bytes up to 255 stays within the 16 bits x86 sums pairs in.
 */

import { floatToHalf, roundHalfEven } from "../io/half.ts";

export { roundHalfEven };

export const Q8_BLOCK = 32;
export const WEIGHT_LEVELS = 127;
export const ACTIVATION_LEVELS = 63;
/** A stored weight byte is q + 128: q XOR the top bit, in either direction. */
export const flipWeight = (q: number): number => q ^ -128;

/**
 * A q8 weight block as stored, for 8 columns (one panel): 256 bytes of weights, then 8 float16
 * scales at Q8_SCALES — 1.0625 bytes per weight, the one stream every product reads.
 */
export const Q8_RECORD = 272;
export const Q8_SCALES = 256;

/** float16's infinity: a scale whose bits reach it does not fit. */
export const HALF_INFINITY = 0x7c00;

/** K rounded up to whole blocks (the padding holds zeros). */
export const paddedK = (k: number): number => Math.ceil(k / Q8_BLOCK) * Q8_BLOCK;

/**
 * A weight block's scale: amax / 127 rounded to float16 (to nearest even, as torch's .half()),
 * as its bits. Scales past float16's range (weights beyond 8 million) have no q8 form.
 */
export function weightScaleBits(amax: number): number {
  const bits = floatToHalf(blockScale(amax, WEIGHT_LEVELS));
  if (bits >= HALF_INFINITY) throw new Error(`q8 cannot hold a weight block whose largest magnitude is ${amax} (its float16 scales reach 8.3 million): use --dtype bf16 or f32`);
  return bits;
}

/** The float32 scale of a block whose largest magnitude is `amax`. */
export const blockScale = (amax: number, levels: number): number => Math.fround(amax / levels);

/**
 * x in units of `scale`, rounded (float32 division, as the reference does it) and held to
 * ±`levels` (a weight scale rounded down to float16 can put amax a hair past 127 units).
 */
export function quantize(x: number, scale: number, levels: number): number {
  if (scale === 0) return 0;
  const q = roundHalfEven(Math.fround(x / scale));
  return q > levels ? levels : q < -levels ? -levels : q;
}

/** Bytes of m rows of K activations as the q8 kernels read them (see quantizeActivations). */
export function activationBytes(m: number, k: number): number {
  const kp = paddedK(k);
  return m * kp + 8 * m * (kp / Q8_BLOCK);
}

/**
 * Rows of a[M,K] as the q8 kernels read them: `bytes` [M, kp] of q, then `scales` [M, kp/32],
 * then `sums` [M, kp/32], the Σ q of each block. Padding past K quantizes to 0.
 */
export function quantizeActivations(a: Float32Array, m: number, k: number, bytes: Int8Array, scales: Float32Array, sums: Int32Array): void {
  const kp = paddedK(k);
  const blocks = kp / Q8_BLOCK;
  for (let i = 0; i < m; i++) {
    for (let b = 0; b < blocks; b++) {
      const from = i * k + b * Q8_BLOCK;
      const end = i * k + Math.min(k, (b + 1) * Q8_BLOCK);
      // Math.max keeps a NaN (a comparison would skip it, and the block would quantize to
      // zeros: a pass gone non-finite would give finite logits, as the SIMD quantizer does not).
      let amax = 0;
      for (let p = from; p < end; p++) amax = Math.max(amax, Math.abs(a[p]));
      const scale = blockScale(amax, ACTIVATION_LEVELS);
      scales[i * blocks + b] = scale;
      let to = i * kp + b * Q8_BLOCK;
      let sum = 0;
      for (let p = from; p < end; p++, to++) {
        bytes[to] = quantize(a[p], scale, ACTIVATION_LEVELS);
        sum += bytes[to];
      }
      for (let p = end - from; p < Q8_BLOCK; p++, to++) bytes[to] = 0;
      sums[i * blocks + b] = sum;
    }
  }
}
