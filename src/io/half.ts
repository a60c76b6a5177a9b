/** IEEE 754 half (binary16) bits → float. */
export function halfToFloat(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 0x1f) return frac === 0 ? sign * Infinity : NaN;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** bfloat16 bits → float: they are the top 16 bits of a float32. */
export function bfloat16ToFloat(b: number): number {
  u32[0] = b << 16;
  return f32[0];
}

/** float → bfloat16 bits, rounding to nearest even (NaN stays NaN). */
export function floatToBfloat16(x: number): number {
  f32[0] = x;
  const bits = u32[0];
  if ((bits & 0x7fffffff) > 0x7f800000) return 0x7fc0;
  return ((bits + 0x7fff + ((bits >>> 16) & 1)) >>> 16) & 0xffff;
}

/**
 * float → IEEE 754 half bits, rounding to nearest even (as torch's .half()); magnitudes from
 * 65520 up become infinity, NaN stays NaN.
 */
export function floatToHalf(x: number): number {
  // From the float32 bits (as floatToBfloat16): a quantizer calls this once per weight block.
  f32[0] = x;
  const bits = u32[0];
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mantissa = bits & 0x7fffff;
  if (exp === 0xff) return mantissa !== 0 ? 0x7e00 : sign | 0x7c00;
  if (exp > 112) {
    // Normal: keep 10 of the 23 fraction bits; a carry out of them raises the exponent (to infinity from 65520 up).
    const half = ((exp - 112) << 10) | (mantissa >>> 13);
    const rest = mantissa & 0x1fff;
    return sign | (rest > 0x1000 || (rest === 0x1000 && (half & 1) !== 0) ? half + 1 : half);
  }
  // Subnormal: the value in units of 2^-24 is the significand (implicit bit included) shifted right.
  const shift = 126 - exp;
  if (shift > 24) return sign;
  const significand = exp === 0 ? mantissa : mantissa | 0x800000;
  const units = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const tie = 1 << (shift - 1);
  return sign | (rest > tie || (rest === tie && (units & 1) !== 0) ? units + 1 : units);
}

/** x rounded to the nearest integer, ties to even (as torch.round and IEEE 754 rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}
