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
  const v = Math.fround(x);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (Number.isNaN(a)) return 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal: units of 2^-24 (1024 carries into the smallest normal)
  const exp = Math.floor(Math.log2(a));
  // Math.log2 can land a hair off at exact powers of two: the significand a / 2^exp must be in [1, 2).
  const e = a / 2 ** exp >= 2 ? exp + 1 : a / 2 ** exp < 1 ? exp - 1 : exp;
  return sign | ((e + 15) * 1024 + roundHalfEven(a * 2 ** (10 - e)) - 1024); // a carry of the significand raises the exponent
}

/** x rounded to the nearest integer, ties to even (as torch.round and IEEE 754 rounding). */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && (r & 1) !== 0 ? r - 1 : r;
}
