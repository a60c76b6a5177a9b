import { type FunctionDef, I32, V128, op } from "./emitter.ts";

/*
 * Matmul kernels generated as WebAssembly SIMD (f32x4), specialised for one K: row strides and
 * loop counts are constants baked into the code. B is packed in panels of 8 columns (two f32x4
 * per k), as float32 or as bfloat16 — the top half of a float32. A bf16 panel row stores columns
 * in the order 0 4 1 5 2 6 3 7, so one 16-byte load holds, in each 32-bit lane, column i in its
 * low half and column i+4 in its high half: shifting left by 16 gives columns 0–3 as floats,
 * masking off the low half gives columns 4–7. All pointers are byte offsets into the shared memory.
 *
 * The matmul kernel (and the q8 one in q8-kernels.ts) takes (a, b, out, m, ldo, j0, j1): columns
 * j0 ≤ j < j1 in whole panels (j0 a multiple of 8, out with room up to the panel end), out rows
 * ldo floats apart. From 4 rows on (prefill, a decode batch), panel after panel: rows 4 at a time
 * × 8 columns in eight sums per k-step, then the rows left over. Below 4 (a decode step's one
 * row) each row goes against four panels a quarter of the range apart, whose weights stream
 * from memory side by side. Every output is the same sum in the same order either way.
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

/** The locals `columnSchedule` moves: the parameters m, j0, j1 and the kernel's j, i, q, g. */
export interface ScheduleLocals {
  m: number;
  j0: number;
  j1: number;
  j: number;
  i: number;
  q: number;
  g: number;
}

/**
 * The order every matmul kernel (this file's and q8-kernels.ts's) visits columns j0 ≤ j < j1:
 * from 4 rows on, panel after panel, `fours` (the rows in blocks of 4) then `ones` (the rows left,
 * one at a time); below 4 rows, q = the whole panels ÷ `streams`, the panels j0 + (s·q + g)·8 for
 * s < streams and g < q go `streamed`, row by row, and the last few `ones`. Each part is a row loop
 * that starts at row i and reads panel j (for `streamed`, the first of its panels).
 */
export function columnSchedule(l: ScheduleLocals, streams: number, parts: { fours: number[]; ones: number[]; streamed: number[] }): number[] {
  const get = op.localGet;
  const set = op.localSet;
  const inc = (local: number, by: number) => [...get(local), ...op.i32Const(by), ...op.i32Add, ...set(local)];
  /** `for (j = from; j < j1; j += 8) { i = 0; body }` */
  const panelLoop = (from: number[], body: number[]): number[] => [
    ...from, ...set(l.j),
    ...op.block, ...op.loop,
    ...get(l.j), ...get(l.j1), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...set(l.i),
    ...body,
    ...inc(l.j, PANEL), ...op.br(0),
    ...op.end, ...op.end,
  ];
  const shift = 3 + Math.log2(streams);
  return [
    ...op.block, ...op.block,
    ...get(l.m), ...op.i32Const(4), ...op.i32GeU, ...op.brIf(0),
    ...get(l.j1), ...get(l.j0), ...op.i32Sub, ...op.i32Const(shift), ...op.i32ShrU, ...set(l.q),
    ...op.i32Const(0), ...set(l.g),
    ...op.block, ...op.loop,
    ...get(l.g), ...get(l.q), ...op.i32GeU, ...op.brIf(1),
    ...get(l.j0), ...get(l.g), ...op.i32Const(3), ...op.i32Shl, ...op.i32Add, ...set(l.j),
    ...op.i32Const(0), ...set(l.i),
    ...parts.streamed,
    ...inc(l.g, 1), ...op.br(0),
    ...op.end, ...op.end,
    ...panelLoop([...get(l.j0), ...get(l.q), ...op.i32Const(shift), ...op.i32Shl, ...op.i32Add], parts.ones),
    ...op.br(1),
    ...op.end,
    ...panelLoop(get(l.j0), [...parts.fours, ...parts.ones]),
    ...op.end,
  ];
}

export function matmulKernel(k: number, type: WeightType, relaxed: boolean): FunctionDef {
  const e = emitter(relaxed);
  // params: a, b, out, m, ldo, j0, j1 · locals: j, i, bp, ap, count, x, w0, w1, op(out ptr), acc[8],
  // then the streams' locals: q, g, bp1..bp3
  const [A, B, OUT, M, LDO, J0, J1, J, I, BP, AP, COUNT, X, W0, W1, O] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15];
  const ACC = [16, 17, 18, 19, 20, 21, 22, 23];
  const [Q, G] = [24, 25];
  const STREAM_BP = [BP, 26, 27, 28];
  const row = bytesPerPanelRow(type);
  const rowBytes = 4 * k;
  const panelBytes = k * (type === "f32" ? 4 : 2) * PANEL;
  const panelStart = [...op.localGet(B), ...op.localGet(J), ...op.i32Const(panelBytes / PANEL), ...op.i32Mul, ...op.i32Add, ...op.localSet(BP)];
  /** o = out + (i·ldo + j)·4 */
  const outRow = [...op.localGet(OUT), ...op.localGet(I), ...op.localGet(LDO), ...op.i32Mul, ...op.localGet(J), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.localSet(O)];
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
    // each row's 8 sums, ldo floats apart
    ...outRow,
    ...Array.from({ length: rows }, (_, r) => [
      ...op.localGet(O), ...op.localGet(ACC[2 * r]), ...op.v128Store(0),
      ...op.localGet(O), ...op.localGet(ACC[2 * r + 1]), ...op.v128Store(16),
      ...op.localGet(O), ...op.localGet(LDO), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.localSet(O),
    ]).flat(),
  ];
  /**
   * One row of A against four panels, each a quarter of the columns further on (q panels): the
   * same sums as rowsPass(1) per panel, but four streams of weights at once — one core reads
   * memory about a third faster from four streams than from one (and the eight sums are
   * independent, where one panel's two wait on each other).
   */
  const streamsPass: number[] = [
    ...panelStart,
    ...STREAM_BP.slice(1).flatMap((bp, s) => [...op.localGet(STREAM_BP[s]), ...op.localGet(Q), ...op.i32Const(panelBytes), ...op.i32Mul, ...op.i32Add, ...op.localSet(bp)]),
    ...ACC.flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    ...op.i32Const(k), ...op.localSet(COUNT),
    ...op.loop,
    ...op.localGet(AP), ...op.v128Load32Splat(0), ...op.localSet(X),
    ...STREAM_BP.flatMap((bp, s) => [...loadStep(bp, type, 0, W0, W1), ...e.fma(ACC[2 * s], X, op.localGet(W0)), ...e.fma(ACC[2 * s + 1], X, op.localGet(W1))]),
    ...op.localGet(AP), ...op.i32Const(4), ...op.i32Add, ...op.localSet(AP),
    ...STREAM_BP.flatMap((bp) => [...op.localGet(bp), ...op.i32Const(row), ...op.i32Add, ...op.localSet(bp)]),
    ...countDown(COUNT, 0), ...op.end,
    ...outRow,
    ...[0, 1, 2, 3].flatMap((s) => [
      ...op.localGet(O), ...op.localGet(ACC[2 * s]), ...op.v128Store(0),
      ...op.localGet(O), ...op.localGet(ACC[2 * s + 1]), ...op.v128Store(16),
      ...op.localGet(O), ...op.localGet(Q), ...op.i32Const(4 * PANEL), ...op.i32Mul, ...op.i32Add, ...op.localSet(O),
    ]),
  ];
  /** ap = a + i·k·4 */
  const rowPointer = [...op.localGet(A), ...op.localGet(I), ...op.i32Const(rowBytes), ...op.i32Mul, ...op.i32Add, ...op.localSet(AP)];
  /** `while (i < m) { body; i += 1 }`, or in steps of 4 while four rows are left. */
  const rowLoop = (rows: number, pass: number[]): number[] => [
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.i32Const(rows), ...op.i32Add, ...op.localGet(M), ...op.i32GtU, ...op.brIf(1),
    ...rowPointer, ...pass,
    ...op.localGet(I), ...op.i32Const(rows), ...op.i32Add, ...op.localSet(I), ...op.br(0),
    ...op.end, ...op.end,
  ];
  const body = columnSchedule({ m: M, j0: J0, j1: J1, j: J, i: I, q: Q, g: G }, STREAM_BP.length, {
    fours: rowLoop(4, rowsPass(4)),
    ones: rowLoop(1, rowsPass(1)),
    streamed: rowLoop(1, streamsPass),
  });
  const locals = [I32, I32, I32, I32, I32, V128, V128, V128, I32, ...ACC.map(() => V128), I32, I32, I32, I32, I32];
  return { name: `matmul_${type}`, params: KERNEL_PARAMS, results: [], locals, body };
}
