/*
 * 8-bit quantization in blocks of 32 along K, each block with its own float32 scale: the
 * layout llama.cpp calls Q8_0, with round-half-to-even (as torch.round) so that a PyTorch
 * reference can apply exactly the same rounding.
 *
 * Weights use ±127. Activations, quantized on the fly row by row before each q8 product, use
 * ±63 and are stored plus 64 (1..127): the relaxed integer dot product reads one operand as
 * unsigned on x86 and as signed on Arm, and only bytes below 128 mean the same to both. The
 * kernels take the offset back out exactly, in integers (see src/wasm/q8-kernels.ts).
 */

export const Q8_BLOCK = 32;
export const WEIGHT_LEVELS = 127;
export const ACTIVATION_LEVELS = 63;
export const ACTIVATION_OFFSET = 64;

/**
 * A q8 weight block as stored, for 8 columns (one panel): 256 bytes of weights, then 8 float32
 * scales at Q8_SCALES, then 8 i32 sums (Σq × 64) at Q8_SUMS — 1.25 bytes per weight, one stream.
 */
export const Q8_RECORD = 320;
export const Q8_SCALES = 256;
export const Q8_SUMS = 288;

/** K rounded up to whole blocks (the padding holds zeros). */
export const paddedK = (k: number): number => Math.ceil(k / Q8_BLOCK) * Q8_BLOCK;

export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}

/** The float32 scale of a block whose largest magnitude is `amax`. */
export const blockScale = (amax: number, levels: number): number => Math.fround(amax / levels);

/** x in units of `scale`, rounded (float32 division, as the reference does it). */
export const quantize = (x: number, scale: number): number => (scale === 0 ? 0 : roundHalfEven(Math.fround(x / scale)));

/**
 * Rows of a[M,K] as the q8 kernels read them: `bytes` [M, kp] of q + 64, then `scales`
 * [M, kp/32], one per row and block. Padding past K quantizes to 0 (stored as 64).
 */
export function quantizeActivations(a: Float32Array, m: number, k: number, bytes: Uint8Array, scales: Float32Array): void {
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
      for (let p = from; p < end; p++, to++) bytes[to] = quantize(a[p], scale) + ACTIVATION_OFFSET;
      for (let p = end - from; p < Q8_BLOCK; p++, to++) bytes[to] = ACTIVATION_OFFSET;
    }
  }
}
