import { type FunctionDef, I32, V128, op } from "./emitter.ts";

/*
 * Matmul kernels generated as WebAssembly SIMD (f32x4), specialised for one K: row strides and
 * loop counts are constants baked into the code. B is packed in panels of 8 columns (two f32x4
 * per k), as float32 or as bfloat16 — the top half of a float32. A bf16 panel row stores columns
 * in the order 0 4 1 5 2 6 3 7, so one 16-byte load holds, in each 32-bit lane, column i in its
 * low half and column i+4 in its high half: shifting left by 16 gives columns 0–3 as floats,
 * masking off the low half gives columns 4–7. All pointers are byte offsets into the shared memory.
 *
 * Every matmul kernel (these, and the q8 ones in q8-kernels.ts) takes (a, b, out, m, ldo, j0, j1):
 *
 *   matvec   decode: per panel, row by row, four k-steps per iteration into eight independent
 *            sums (latency hidden, B streamed once)
 *   matmul   prefill: 4 rows × 8 columns in eight sums per k-step; out rows are ldo floats apart
 *
 * Columns j0 ≤ j < j1 in whole panels: j0 is a multiple of 8 and out has room up to the panel end.
 */

export const PANEL = 8;
export type WeightType = "f32" | "bf16";
/** a, b, out, m, ldo, j0, j1: byte addresses, then counts. */
export const KERNEL_PARAMS = [I32, I32, I32, I32, I32, I32, I32];

interface Emit {
  /** acc += x · (the 4 weights the load bytes push). */
  fma(acc: number, x: number, load: number[]): number[];
}

function emitter(relaxed: boolean): Emit {
  return {
    fma: (acc, x, load) => relaxed
      ? [...op.localGet(x), ...load, ...op.localGet(acc), ...op.f32x4RelaxedMadd, ...op.localSet(acc)]
      : [...op.localGet(acc), ...op.localGet(x), ...load, ...op.f32x4Mul, ...op.f32x4Add, ...op.localSet(acc)],
  };
}

/** The column order of a bf16 panel row (see above): position of column c. */
export const BF16_LANE_ORDER = [0, 2, 4, 6, 1, 3, 5, 7];

/**
 * Bytes that load k-step `step` of a panel and set `lo` and `hi` to its columns 0–3 and 4–7 as
 * float32 (for bf16, `lo` first holds the raw 8 halves).
 */
function loadStep(bp: number, type: WeightType, step: number, lo: number, hi: number): number[] {
  if (type === "f32") return [...op.localGet(bp), ...op.v128Load(step * 32), ...op.localSet(lo), ...op.localGet(bp), ...op.v128Load(step * 32 + 16), ...op.localSet(hi)];
  return [
    ...op.localGet(bp), ...op.v128Load(step * 16), ...op.localSet(lo),
    ...op.localGet(lo), ...op.v128ConstI32x4(0xffff0000), ...op.v128And, ...op.localSet(hi),
    ...op.localGet(lo), ...op.i32Const(16), ...op.i32x4Shl, ...op.localSet(lo),
  ];
}

const bytesPerPanelRow = (type: WeightType) => (type === "f32" ? 32 : 16);

/** `decrement local; continue the enclosing loop while it is not zero` */
function countDown(counter: number, loopDepth: number): number[] {
  return [...op.localGet(counter), ...op.i32Const(1), ...op.i32Sub, ...op.localTee(counter), ...op.brIf(loopDepth)];
}

export function matvecKernel(k: number, type: WeightType, relaxed: boolean): FunctionDef {
  const e = emitter(relaxed);
  // params: a, b, out, m, ldo, j0, j1 · locals: j, bp, ap, count, x, acc0..acc7, lo, hi, i
  const [A, B, OUT, M, LDO, J0, J1, J, BP, AP, COUNT, X] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11];
  const ACC = [12, 13, 14, 15, 16, 17, 18, 19];
  const [LO, HI, I] = [20, 21, 22];
  const row = bytesPerPanelRow(type);
  const quads = Math.floor(k / 4);
  // Rows one at a time inside each panel: every row sums in the same order whatever m is, and
  // the panel's weights, streamed from memory for the first row, are in cache for the rest.
  const body: number[] = [
    ...op.localGet(J0), ...op.localSet(J),
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(J1), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...op.localSet(I),
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.localGet(M), ...op.i32GeU, ...op.brIf(1),
    // bp = b + j·k·(bytes per weight): panel j/8 starts k rows of 8 weights in; ap = a + i·k·4
    ...op.localGet(B), ...op.localGet(J), ...op.i32Const(k * (type === "f32" ? 4 : 2)), ...op.i32Mul, ...op.i32Add, ...op.localSet(BP),
    ...op.localGet(A), ...op.localGet(I), ...op.i32Const(4 * k), ...op.i32Mul, ...op.i32Add, ...op.localSet(AP),
    ...ACC.flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
  ];
  if (quads > 0) {
    body.push(...op.i32Const(quads), ...op.localSet(COUNT), ...op.loop);
    for (let s = 0; s < 4; s++) {
      body.push(...op.localGet(AP), ...op.v128Load32Splat(4 * s), ...op.localSet(X), ...loadStep(BP, type, s, LO, HI));
      body.push(...e.fma(ACC[2 * s], X, op.localGet(LO)), ...e.fma(ACC[2 * s + 1], X, op.localGet(HI)));
    }
    body.push(
      ...op.localGet(AP), ...op.i32Const(16), ...op.i32Add, ...op.localSet(AP),
      ...op.localGet(BP), ...op.i32Const(4 * row), ...op.i32Add, ...op.localSet(BP),
      ...countDown(COUNT, 0), ...op.end,
    );
  }
  for (let s = 0; s < k % 4; s++) {
    body.push(...op.localGet(AP), ...op.v128Load32Splat(4 * s), ...op.localSet(X), ...loadStep(BP, type, s, LO, HI));
    body.push(...e.fma(ACC[0], X, op.localGet(LO)), ...e.fma(ACC[1], X, op.localGet(HI)));
  }
  // out[i, j .. j+8] = the sums of the four k-phases
  for (const half of [0, 1]) {
    body.push(...op.localGet(OUT), ...op.localGet(I), ...op.localGet(LDO), ...op.i32Mul, ...op.localGet(J), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add);
    body.push(...op.localGet(ACC[half]), ...op.localGet(ACC[half + 2]), ...op.f32x4Add, ...op.localGet(ACC[half + 4]), ...op.f32x4Add, ...op.localGet(ACC[half + 6]), ...op.f32x4Add);
    body.push(...op.v128Store(16 * half));
  }
  body.push(...op.localGet(I), ...op.i32Const(1), ...op.i32Add, ...op.localSet(I), ...op.br(0), ...op.end, ...op.end);
  body.push(...op.localGet(J), ...op.i32Const(PANEL), ...op.i32Add, ...op.localSet(J), ...op.br(0), ...op.end, ...op.end);
  return { name: `matvec_${type}`, params: KERNEL_PARAMS, results: [], locals: [I32, I32, I32, I32, V128, ...ACC.map(() => V128), V128, V128, I32], body };
}

export function matmulKernel(k: number, type: WeightType, relaxed: boolean): FunctionDef {
  const e = emitter(relaxed);
  // params: a, b, out, m, ldo, j0, j1 · locals: j, i, bp, ap, count, x, w0, w1, op(out ptr), acc[8]
  const [A, B, OUT, M, LDO, J0, J1, J, I, BP, AP, COUNT, X, W0, W1, O] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const ACC = [16, 17, 18, 19, 20, 21, 22, 23];
  const row = bytesPerPanelRow(type);
  const rowBytes = 4 * k;
  const panelStart = [...op.localGet(B), ...op.localGet(J), ...op.i32Const(k * (type === "f32" ? 4 : 2)), ...op.i32Mul, ...op.i32Add, ...op.localSet(BP)];
  /** One pass over k for `rows` rows of A starting at AP, into ACC[0 .. 2·rows). */
  const rowsPass = (rows: number): number[] => [
    ...panelStart,
    ...ACC.slice(0, 2 * rows).flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    ...op.i32Const(k), ...op.localSet(COUNT),
    ...op.loop,
    ...loadStep(BP, type, 0, W0, W1),
    ...Array.from({ length: rows }, (_, r) => [
      ...op.localGet(AP), ...op.v128Load32Splat(r * rowBytes), ...op.localSet(X),
      ...e.fma(ACC[2 * r], X, op.localGet(W0)), ...e.fma(ACC[2 * r + 1], X, op.localGet(W1)),
    ]).flat(),
    ...op.localGet(AP), ...op.i32Const(4), ...op.i32Add, ...op.localSet(AP),
    ...op.localGet(BP), ...op.i32Const(row), ...op.i32Add, ...op.localSet(BP),
    ...countDown(COUNT, 0), ...op.end,
    // o = out + (i·ldo + j)·4; store each row's 8 sums, ldo floats apart
    ...op.localGet(OUT), ...op.localGet(I), ...op.localGet(LDO), ...op.i32Mul, ...op.localGet(J), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.localSet(O),
    ...Array.from({ length: rows }, (_, r) => [
      ...op.localGet(O), ...op.localGet(ACC[2 * r]), ...op.v128Store(0),
      ...op.localGet(O), ...op.localGet(ACC[2 * r + 1]), ...op.v128Store(16),
      ...op.localGet(O), ...op.localGet(LDO), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.localSet(O),
    ]).flat(),
  ];
  /** ap = a + i·k·4 */
  const rowPointer = [...op.localGet(A), ...op.localGet(I), ...op.i32Const(rowBytes), ...op.i32Mul, ...op.i32Add, ...op.localSet(AP)];
  const body: number[] = [
    ...op.localGet(J0), ...op.localSet(J),
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(J1), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...op.localSet(I),
    // blocks of 4 rows
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.i32Const(4), ...op.i32Add, ...op.localGet(M), ...op.i32GtU, ...op.brIf(1),
    ...rowPointer, ...rowsPass(4),
    ...op.localGet(I), ...op.i32Const(4), ...op.i32Add, ...op.localSet(I), ...op.br(0),
    ...op.end, ...op.end,
    // the rows left over, one at a time
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.localGet(M), ...op.i32GeU, ...op.brIf(1),
    ...rowPointer, ...rowsPass(1),
    ...op.localGet(I), ...op.i32Const(1), ...op.i32Add, ...op.localSet(I), ...op.br(0),
    ...op.end, ...op.end,
    ...op.localGet(J), ...op.i32Const(PANEL), ...op.i32Add, ...op.localSet(J), ...op.br(0),
    ...op.end, ...op.end,
  ];
  const locals = [I32, I32, I32, I32, I32, V128, V128, V128, I32, ...ACC.map(() => V128)];
  return { name: `matmul_${type}`, params: KERNEL_PARAMS, results: [], locals, body };
}
