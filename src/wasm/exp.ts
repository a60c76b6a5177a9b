import { op } from "./emitter.ts";

/*
 * e^t on f32x4 lanes, for the kernels that need it (WebAssembly has no exp): e^t = 2^k · e^r with
 * k = round(t / ln 2), r = t − k·ln 2 (|r| ≤ ln2/2), e^r by its Taylor polynomial to r⁸/8!
 * (relative error below 1e-8, under float32's rounding), and 2^k built from its exponent bits.
 * t is clamped to ±80; below −80 the result is 0 (e^−80 is 1.8e-35: nothing a sum of such
 * terms, or GELU's x·e/(e+1), can tell from 0).
 */

const LN2_HI = 0.693145751953125; // ln 2 split so that k·LN2_HI is exact in float32
const LN2_LO = 1.428606765330187e-6;

const HORNER = [1 / 40320, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 1 / 2, 1, 1];

/** exp's constants as the bytes that put each on the stack: written inline, or read from locals. */
export interface ExpConstants {
  f32(value: number): number[];
  /** 127 − ROUNDER's bits in every i32 lane: what turns a rounded sum's bits into 2^k's exponent. */
  exponentBias: number[];
}

/**
 * 1.5·2^23: added to a float of magnitude below 2^22 it rounds it to an integer (to nearest, ties
 * to even, as f32x4.nearest does) held in the low bits of the sum's mantissa — so the sum's bits
 * minus this one's are that integer, and 2^k is built from the bits with no float-to-int
 * conversion (which V8 turns into several instructions, for NaN and overflow).
 */
const ROUNDER = 1.5 * 2 ** 23;
const ROUNDER_BITS = 0x4b400000;

const INLINE: ExpConstants = { f32: op.f32x4Const, exponentBias: op.v128ConstI32x4(127 - ROUNDER_BITS) };

/**
 * v128 locals from `first` on for exp's constants and `extra` float constants, and the bytes that
 * set them. V8 builds a v128.const where it appears, from general registers (four instructions
 * each, every iteration: a loop over GELU spent most of its time so); a loop reads them from
 * locals set once before it instead — the same values, so the same results.
 */
export function hoistedConstants(first: number, extra: readonly number[] = []): { locals: number; init: number[]; constants: ExpConstants } {
  const values = [...new Set([-80, 80, Math.LOG2E, ROUNDER, LN2_HI, LN2_LO, ...HORNER, ...extra])];
  const local = (v: number) => first + 1 + values.indexOf(v);
  return {
    locals: values.length + 1,
    init: [...INLINE.exponentBias, ...op.localSet(first), ...values.flatMap((v) => [...op.f32x4Const(v), ...op.localSet(local(v))])],
    constants: {
      f32: (v) => {
        if (!values.includes(v)) throw new Error(`constant ${v} was not hoisted`);
        return op.localGet(local(v));
      },
      exponentBias: op.localGet(first),
    },
  };
}

/** Bytes that set local `e` to e^t for the v128 local `t` (overwritten), using locals `k` and `keep`. */
export function exp(t: number, k: number, e: number, keep: number, c: ExpConstants = INLINE): number[] {
  const vec = op.localGet;
  return [
    ...vec(t), ...c.f32(-80), ...op.f32x4Ge, ...op.localSet(keep),
    ...vec(t), ...c.f32(80), ...op.f32x4Pmin, ...c.f32(-80), ...op.f32x4Pmax, ...op.localSet(t),
    // k = round(t·log2 e), as k + ROUNDER in `k`; r = t − k·ln 2 (in t)
    ...vec(t), ...c.f32(Math.LOG2E), ...op.f32x4Mul, ...c.f32(ROUNDER), ...op.f32x4Add, ...op.localSet(k),
    ...vec(t), ...vec(k), ...c.f32(ROUNDER), ...op.f32x4Sub, ...c.f32(LN2_HI), ...op.f32x4Mul, ...op.f32x4Sub,
    ...vec(k), ...c.f32(ROUNDER), ...op.f32x4Sub, ...c.f32(LN2_LO), ...op.f32x4Mul, ...op.f32x4Sub, ...op.localSet(t),
    // 2^k in `k`: (k + 127) << 23 are its bits
    ...vec(k), ...c.exponentBias, ...op.i32x4Add, ...op.i32Const(23), ...op.i32x4Shl, ...op.localSet(k),
    // e = Σ r^i / i!, i ≤ 8, by Horner
    ...c.f32(HORNER[0]), ...op.localSet(e),
    ...HORNER.slice(1).flatMap((h) => [...vec(e), ...vec(t), ...op.f32x4Mul, ...c.f32(h), ...op.f32x4Add, ...op.localSet(e)]),
    // e ·= 2^k
    ...vec(e), ...vec(k), ...op.f32x4Mul,
    ...vec(keep), ...op.v128And, ...op.localSet(e),
  ];
}
