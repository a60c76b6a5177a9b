/*
 * A small WebAssembly module emitter: LEB128, the opcodes our kernels use, and the sections of a
 * module that imports one memory and exports functions. Instruction helpers return byte arrays;
 * a function body is their concatenation.
 */

export function uleb(value: number): number[] {
  const out: number[] = [];
  let v = value >>> 0;
  do {
    let byte = v & 0x7f;
    v >>>= 7;
    if (v !== 0) byte |= 0x80;
    out.push(byte);
  } while (v !== 0);
  return out;
}

export function sleb(value: number): number[] {
  const out: number[] = [];
  let v = value | 0;
  for (;;) {
    const byte = v & 0x7f;
    v >>= 7;
    const done = (v === 0 && (byte & 0x40) === 0) || (v === -1 && (byte & 0x40) !== 0);
    out.push(done ? byte : byte | 0x80);
    if (done) return out;
  }
}

export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;

type Bytes = number[];
const simd = (code: number, ...immediates: number[]): Bytes => [0xfd, ...uleb(code), ...immediates];
/** Memory immediate: alignment as a power of two, then the constant offset. */
const memarg = (alignLog2: number, offset: number): Bytes => [...uleb(alignLog2), ...uleb(offset)];

/** The instructions the kernels use, by their text-format names. */
export const op = {
  block: [0x02, 0x40], loop: [0x03, 0x40], end: [0x0b],
  br: (depth: number): Bytes => [0x0c, ...uleb(depth)],
  brIf: (depth: number): Bytes => [0x0d, ...uleb(depth)],
  localGet: (i: number): Bytes => [0x20, ...uleb(i)],
  localSet: (i: number): Bytes => [0x21, ...uleb(i)],
  localTee: (i: number): Bytes => [0x22, ...uleb(i)],
  i32Const: (v: number): Bytes => [0x41, ...sleb(v)],
  i32Eqz: [0x45], i32Eq: [0x46], i32GtU: [0x4b], i32GeU: [0x4f],
  i32Add: [0x6a], i32Sub: [0x6b], i32Mul: [0x6c], i32DivU: [0x6e], i32And: [0x71], i32Shl: [0x74], i32ShrU: [0x76],
  f32Store: (offset = 0): Bytes => [0x38, ...memarg(2, offset)],
  f32Add: [0x92], f32Sub: [0x93], f32Mul: [0x94], f32Div: [0x95], f32Max: [0x97], f32Sqrt: [0x91],
  f32ConvertI32S: [0xb2],
  f32Load: (offset = 0): Bytes => [0x2a, ...memarg(2, offset)],
  f64Load: (offset = 0): Bytes => [0x2b, ...memarg(3, offset)],
  f64Store: (offset = 0): Bytes => [0x39, ...memarg(3, offset)],
  i32Load: (offset = 0): Bytes => [0x28, ...memarg(2, offset)],
  i32Store: (offset = 0): Bytes => [0x36, ...memarg(2, offset)],
  i32Load16U: (offset = 0): Bytes => [0x2f, ...memarg(1, offset)],
  i32Store16: (offset = 0): Bytes => [0x3b, ...memarg(1, offset)],
  f64Const: (v: number): Bytes => [0x44, ...new Uint8Array(Float64Array.of(v).buffer)],
  f32Ne: [0x5c], f32Lt: [0x5d], f32Gt: [0x5e],
  f64Add: [0xa0], f64Sub: [0xa1], f64Mul: [0xa2], f64Lt: [0x63],
  f64PromoteF32: [0xbb], f64ConvertI32S: [0xb7],
  /** f64 → i32 toward zero, saturating (no trap on NaN or out of range). */
  i32TruncSatF64S: [0xfc, 0x02],
  /** memory.copy (bulk memory): dst, src, byte count from the stack. */
  memoryCopy: [0xfc, 0x0a, 0x00, 0x00],
  select: [0x1b],
  return: [0x0f],
  if: (results: number[] = []): Bytes => [0x04, results.length === 0 ? 0x40 : results[0]],
  else: [0x05],
  f32Const: (v: number): Bytes => [0x43, ...new Uint8Array(Float32Array.of(v).buffer)],
  v128Load: (offset = 0): Bytes => simd(0x00, ...memarg(4, offset)),
  v128Load32Splat: (offset = 0): Bytes => simd(0x09, ...memarg(2, offset)),
  v128Load64Splat: (offset = 0): Bytes => simd(0x0a, ...memarg(3, offset)),
  /** Four u16 at the address, each widened to an i32 lane. */
  v128Load16x4U: (offset = 0): Bytes => simd(0x04, ...memarg(3, offset)),
  v128Store: (offset = 0): Bytes => simd(0x0b, ...memarg(4, offset)),
  v128Zero: simd(0x0c, ...new Array(16).fill(0)),
  /** A v128 constant of four equal little-endian 32-bit lanes. */
  v128ConstI32x4: (v: number): Bytes => simd(0x0c, ...new Array(4).fill([v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff]).flat()),
  v128And: simd(0x4e),
  v128Or: simd(0x50),
  v128Xor: simd(0x51),
  /** 1 if any bit of the v128 is set. */
  v128AnyTrue: simd(0x53),
  /** Bits of a where the mask (on top) is set, else of b: a, b, mask from the stack. */
  v128Bitselect: simd(0x52),
  /** A v128 constant of four equal float32 lanes. */
  f32x4Const: (v: number): Bytes => simd(0x0c, ...new Array(4).fill([...new Uint8Array(Float32Array.of(v).buffer)]).flat()),
  f32x4Nearest: simd(0x6a),
  f32x4Abs: simd(0xe0),
  f32x4Splat: simd(0x13),
  i16x8NarrowI32x4S: simd(0x85),
  i8x16NarrowI16x8S: simd(0x65),
  i8x16Add: simd(0x6e),
  f32x4Ne: simd(0x42),
  f32x4Lt: simd(0x43),
  f32x4Ge: simd(0x46),
  i32x4Add: simd(0xae),
  i32x4Sub: simd(0xb1),
  i32x4ShrU: simd(0xad),
  i32x4MinS: simd(0xb6),
  i32x4MaxS: simd(0xb8),
  i16x8NarrowI32x4U: simd(0x86),
  /** Lanes of a then b picked by 16 byte indices (0–15: a, 16–31: b). */
  i8x16Shuffle: (lanes: number[]): Bytes => simd(0x0d, ...lanes),
  i16x8ExtendLowI8x16S: simd(0x87),
  i16x8ExtendHighI8x16S: simd(0x88),
  i16x8ExtendLowI8x16U: simd(0x89),
  /** Lane i: a[2i] + a[2i+1], signed bytes summed in i16. */
  i16x8ExtaddPairwiseI8x16S: simd(0x7c),
  i16x8Add: simd(0x8e),
  i16x8Sub: simd(0x91),
  /** Lane i: a[2i]·b[2i] + a[2i+1]·b[2i+1], i16 products summed in i32. */
  i32x4DotI16x8S: simd(0xba),
  f32x4ConvertI32x4S: simd(0xfa),
  f32x4Sub: simd(0xe5),
  f32x4Div: simd(0xe7),
  f32x4Min: simd(0xe8),
  f32x4Max: simd(0xe9),
  /** min(a, b) as `b < a ? b : a`: a NaN in b leaves a. */
  f32x4Pmin: simd(0xea),
  /** max(a, b) as `a < b ? b : a`: a NaN in b leaves a. */
  f32x4Pmax: simd(0xeb),
  i32x4TruncSatF32x4S: simd(0xf8),
  i32x4Splat: simd(0x11),
  i8x16Splat: simd(0x0f),
  f32x4ExtractLane: (lane: number): Bytes => simd(0x1f, lane),
  i32x4ExtractLane: (lane: number): Bytes => simd(0x1b, lane),
  i32x4Shl: simd(0xab),
  f32x4Add: simd(0xe4),
  f32x4Mul: simd(0xe6),
  /** a·b + c in one step (fused where the hardware has it); Relaxed SIMD. */
  f32x4RelaxedMadd: simd(0x105),
  /**
   * Lane i: Σ_{t<4} a[4i+t]·b[4i+t] + c[i], a signed bytes, b bytes 0–127 (with the top bit set
   * the result is the CPU's choice: x86 reads b unsigned, Arm signed); Relaxed SIMD.
   */
  i32x4RelaxedDotI8x16I7x16AddS: simd(0x113),
  /** Lane i: a[2i]·b[2i] + a[2i+1]·b[2i+1] in i16, operands as for the i32x4 form; Relaxed SIMD. */
  i16x8RelaxedDotI8x16I7x16S: simd(0x112),
};

export interface FunctionDef {
  name: string;
  params: number[];
  results: number[];
  /** Extra locals by type, after the parameters. */
  locals: number[];
  body: Bytes;
}

function section(id: number, content: Bytes): Bytes {
  return [id, ...uleb(content.length), ...content];
}

function vector(items: Bytes[]): Bytes {
  return [...uleb(items.length), ...items.flat()];
}

function name(s: string): Bytes {
  const bytes = [...new TextEncoder().encode(s)];
  return [...uleb(bytes.length), ...bytes];
}

/** A module importing memory `env.memory` (shared, up to `maxPages` of 64 KiB) and exporting `functions`. */
export function emitModule(functions: FunctionDef[], maxPages: number): Uint8Array {
  const types = functions.map((f) => [0x60, ...vector(f.params.map((t) => [t])), ...vector(f.results.map((t) => [t]))]);
  const memoryImport = [...name("env"), ...name("memory"), 0x02, 0x03, ...uleb(1), ...uleb(maxPages)]; // shared, min 1, max
  const bodies = functions.map((f) => {
    const localGroups = f.locals.map((t) => [...uleb(1), t]);
    const body = [...vector(localGroups), ...f.body, 0x0b];
    return [...uleb(body.length), ...body];
  });
  return Uint8Array.from([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vector(types)),
    ...section(2, vector([memoryImport])),
    ...section(3, vector(functions.map((_, i) => uleb(i)))),
    ...section(7, vector(functions.map((f, i) => [...name(f.name), 0x00, ...uleb(i)]))),
    ...section(10, vector(bodies)),
  ]);
}
