import { F32, type FunctionDef, I32, V128, op } from "./emitter.ts";
import { exp, hoistedConstants } from "./exp.ts";

/*
 * The element-wise and row-wise ops on f32x4 lanes, for rows whose length is a multiple of 4
 * (softmax's rows are any length: their last 1–3 entries go one lane at a time). Addresses are
 * byte offsets into the engine's memory; counts are in floats.
 *
 *   add(a, b, out, rows, cols, bStep)       out = a + b row by row; b moves bStep bytes a row
 *                                           (0: one row added to every row, as a bias is)
 *   scale(a, out, n, s)                     out = a · s
 *   layerNorm(x, g, b, out, rows, cols, eps)
 *   softmax(src, out, heads, tq, tk, past)  causal: row i of each head sees keys 0..past+i;
 *                                           the rest of out is left as it is (zeros)
 *   copy(src, srcStep, dst, dstStep, rows, bytes)  rows of `bytes` bytes, each pointer moving
 *                                           by its step a row (q, k and v out of one product;
 *                                           keys and values into the cache)
 *   firstNonFinite(a, n) → index             of the first NaN or ±∞ of n floats, or −1
 */

const get = op.localGet;
const set = op.localSet;
const bump = (local: number, by: number[]): number[] => [...get(local), ...by, ...op.i32Add, ...set(local)];
/** `loop while ptr < end: body; ptr += 16` for each pointer in `pointers`. */
const vectorLoop = (ptr: number, end: number, body: number[], pointers: number[]): number[] => [
  ...op.block, ...op.loop,
  ...get(ptr), ...get(end), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...pointers.flatMap((p) => bump(p, op.i32Const(16))),
  ...op.br(0), ...op.end, ...op.end,
];
/** The four lanes of a v128 local combined by a scalar f32 op, lane 0 first. */
const across = (v: number, combine: number[]): number[] => [
  ...get(v), ...op.f32x4ExtractLane(0), ...[1, 2, 3].flatMap((l) => [...get(v), ...op.f32x4ExtractLane(l), ...combine]),
];

export function addKernel(): FunctionDef {
  const [A, B, OUT, ROWS, COLS, BSTEP, END, BP] = [0, 1, 2, 3, 4, 5, 6, 7];
  const body = [
    ...op.block, ...op.loop,
    ...get(ROWS), ...op.i32Eqz, ...op.brIf(1),
    ...get(A), ...get(COLS), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(END),
    ...get(B), ...set(BP),
    ...vectorLoop(A, END, [...get(OUT), ...get(A), ...op.v128Load(0), ...get(BP), ...op.v128Load(0), ...op.f32x4Add, ...op.v128Store(0)], [A, BP, OUT]),
    ...bump(B, get(BSTEP)),
    ...get(ROWS), ...op.i32Const(1), ...op.i32Sub, ...set(ROWS),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "add", params: [I32, I32, I32, I32, I32, I32], results: [], locals: [I32, I32], body };
}

export function scaleKernel(): FunctionDef {
  const [A, OUT, N, S, END, SV] = [0, 1, 2, 3, 4, 5];
  const body = [
    ...get(S), ...op.f32x4Splat, ...set(SV),
    ...get(A), ...get(N), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(END),
    ...vectorLoop(A, END, [...get(OUT), ...get(A), ...op.v128Load(0), ...get(SV), ...op.f32x4Mul, ...op.v128Store(0)], [A, OUT]),
  ];
  return { name: "scale", params: [I32, I32, I32, F32], results: [], locals: [I32, V128], body };
}

export function layerNormKernel(): FunctionDef {
  const [X, G, B, OUT, ROWS, COLS, EPS] = [0, 1, 2, 3, 4, 5, 6];
  const [P, END, GP, BP, ACC, MEAN, RSTD, D] = [7, 8, 9, 10, 11, 12, 13, 14];
  const rowEnd = [...get(X), ...get(COLS), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(END)];
  /** f32 on the stack ÷ cols */
  const perElement = [...get(COLS), ...op.f32ConvertI32S, ...op.f32Div];
  const body = [
    ...op.block, ...op.loop,
    ...get(ROWS), ...op.i32Eqz, ...op.brIf(1),
    ...rowEnd,
    // mean
    ...op.v128Zero, ...set(ACC), ...get(X), ...set(P),
    ...vectorLoop(P, END, [...get(ACC), ...get(P), ...op.v128Load(0), ...op.f32x4Add, ...set(ACC)], [P]),
    ...across(ACC, op.f32Add), ...perElement, ...op.f32x4Splat, ...set(MEAN),
    // variance, then 1/σ
    ...op.v128Zero, ...set(ACC), ...get(X), ...set(P),
    ...vectorLoop(P, END, [...get(P), ...op.v128Load(0), ...get(MEAN), ...op.f32x4Sub, ...set(D), ...get(ACC), ...get(D), ...get(D), ...op.f32x4Mul, ...op.f32x4Add, ...set(ACC)], [P]),
    ...op.f32Const(1), ...across(ACC, op.f32Add), ...perElement, ...get(EPS), ...op.f32Add, ...op.f32Sqrt, ...op.f32Div, ...op.f32x4Splat, ...set(RSTD),
    // out = (x − mean) · (1/σ) · γ + β
    ...get(G), ...set(GP), ...get(B), ...set(BP),
    ...vectorLoop(X, END, [
      ...get(OUT),
      ...get(X), ...op.v128Load(0), ...get(MEAN), ...op.f32x4Sub, ...get(RSTD), ...op.f32x4Mul, ...get(GP), ...op.v128Load(0), ...op.f32x4Mul,
      ...get(BP), ...op.v128Load(0), ...op.f32x4Add, ...op.v128Store(0),
    ], [X, GP, BP, OUT]),
    ...get(ROWS), ...op.i32Const(1), ...op.i32Sub, ...set(ROWS),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "layerNorm", params: [I32, I32, I32, I32, I32, I32, F32], results: [], locals: [I32, I32, I32, I32, V128, V128, V128, V128], body };
}

export function softmaxKernel(): FunctionDef {
  const [SRC, OUT, HEADS, TQ, TK, PAST] = [0, 1, 2, 3, 4, 5];
  const [I, ROW, P, O, VEND, END, H] = [6, 7, 8, 9, 10, 11, 12];
  const [MAX, T, K, E, KEEP, SUM] = [13, 14, 15, 16, 17, 18];
  const [M, S] = [19, 20]; // the row's max and sum as f32
  const hoisted = hoistedConstants(21);
  /** e^(v − max) into E, for v128 bytes on the stack. */
  const expBelowMax = [...get(MAX), ...op.f32x4Sub, ...set(T), ...exp(T, K, E, KEEP, hoisted.constants)];
  /** The row's tail, one float at a time: `each` with the float's address in O (source) and P (out). */
  const tail = (each: number[]): number[] => [
    ...op.block, ...op.loop,
    ...get(P), ...get(END), ...op.i32GeU, ...op.brIf(1),
    ...each,
    ...bump(P, op.i32Const(4)), ...bump(O, op.i32Const(4)),
    ...op.br(0), ...op.end, ...op.end,
  ];
  /** P = src row start (O = out row start), VEND = end of its whole vectors, END = end of its visible part. */
  const rowPointers = (from: number, to: number) => [
    ...get(ROW), ...get(from), ...op.i32Add, ...set(P), ...get(ROW), ...get(to), ...op.i32Add, ...set(O),
    ...get(P), ...get(I), ...get(PAST), ...op.i32Add, ...op.i32Const(1), ...op.i32Add, ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(END),
    ...get(END), ...get(P), ...op.i32Sub, ...op.i32Const(-16), ...op.i32And, ...get(P), ...op.i32Add, ...set(VEND),
  ];
  const row = [
    // the visible entries' max
    ...rowPointers(SRC, OUT),
    ...op.f32x4Const(-Infinity), ...set(MAX),
    ...vectorLoop(P, VEND, [...get(MAX), ...get(P), ...op.v128Load(0), ...op.f32x4Max, ...set(MAX)], [P]),
    ...across(MAX, op.f32Max), ...set(M),
    ...tail([...get(M), ...get(P), ...op.f32Load(0), ...op.f32Max, ...set(M)]),
    ...get(M), ...op.f32x4Splat, ...set(MAX),
    // e^(x − max) into out, and their sum
    ...rowPointers(SRC, OUT),
    ...op.v128Zero, ...set(SUM),
    ...vectorLoop(P, VEND, [...get(P), ...op.v128Load(0), ...expBelowMax, ...get(O), ...get(E), ...op.v128Store(0), ...get(SUM), ...get(E), ...op.f32x4Add, ...set(SUM), ...bump(O, op.i32Const(16))], [P]),
    ...across(SUM, op.f32Add), ...set(S),
    ...tail([...get(P), ...op.v128Load32Splat(0), ...expBelowMax, ...get(O), ...get(E), ...op.f32x4ExtractLane(0), ...op.f32Store(0), ...get(S), ...get(E), ...op.f32x4ExtractLane(0), ...op.f32Add, ...set(S)]),
    // out ·= 1/sum
    ...op.f32Const(1), ...get(S), ...op.f32Div, ...set(S), ...get(S), ...op.f32x4Splat, ...set(SUM),
    ...rowPointers(OUT, OUT),
    ...vectorLoop(P, VEND, [...get(P), ...get(P), ...op.v128Load(0), ...get(SUM), ...op.f32x4Mul, ...op.v128Store(0)], [P]),
    ...tail([...get(P), ...get(P), ...op.f32Load(0), ...get(S), ...op.f32Mul, ...op.f32Store(0)]),
  ];
  const body = [
    ...hoisted.init,
    ...op.i32Const(0), ...set(ROW),
    ...op.i32Const(0), ...set(H),
    ...op.block, ...op.loop,
    ...get(H), ...get(HEADS), ...op.i32GeU, ...op.brIf(1),
    ...op.i32Const(0), ...set(I),
    ...op.block, ...op.loop,
    ...get(I), ...get(TQ), ...op.i32GeU, ...op.brIf(1),
    ...row,
    ...bump(ROW, [...get(TK), ...op.i32Const(2), ...op.i32Shl]),
    ...bump(I, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...bump(H, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
  ];
  const locals = [I32, I32, I32, I32, I32, I32, I32, V128, V128, V128, V128, V128, V128, F32, F32, ...new Array<number>(hoisted.locals).fill(V128)];
  return { name: "softmax", params: [I32, I32, I32, I32, I32, I32], results: [], locals, body };
}

export function copyKernel(): FunctionDef {
  const [SRC, SSTEP, DST, DSTEP, ROWS, BYTES] = [0, 1, 2, 3, 4, 5];
  const body = [
    ...op.block, ...op.loop,
    ...get(ROWS), ...op.i32Eqz, ...op.brIf(1),
    ...get(DST), ...get(SRC), ...get(BYTES), ...op.memoryCopy,
    ...bump(SRC, get(SSTEP)), ...bump(DST, get(DSTEP)),
    ...get(ROWS), ...op.i32Const(1), ...op.i32Sub, ...set(ROWS),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "copy", params: [I32, I32, I32, I32, I32, I32], results: [], locals: [], body };
}

/**
 * x − x is 0 for every finite x, NaN for NaN and ±∞: sixteen floats at a time until a block holds
 * one (or fewer than sixteen are left), then one at a time from there. Every pass's logits are
 * checked (GPT2Model.step): 60 µs a token in JavaScript for GPT-2's 50,257, on the calling thread
 * while the others wait for the next pass. Sixteen at a time, it reads memory about as fast as
 * it comes, which makes it the bench's probe of the memory roof (bench/memory-roof.ts).
 */
export function firstNonFiniteKernel(): FunctionDef {
  const [A, N, I, P, V] = [0, 1, 2, 3, 4];
  const at = [...get(A), ...get(I), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add];
  /** The four floats at P + offset: each lane all ones where it is NaN or ±∞. */
  const bad = (offset: number) => [...get(P), ...op.v128Load(offset), ...op.localTee(V), ...get(V), ...op.f32x4Sub, ...op.v128Zero, ...op.f32x4Ne];
  const body = [
    ...op.block, ...op.loop,
    ...get(I), ...op.i32Const(16), ...op.i32Add, ...get(N), ...op.i32GtU, ...op.brIf(1),
    ...at, ...set(P),
    ...bad(0), ...bad(16), ...op.v128Or, ...bad(32), ...op.v128Or, ...bad(48), ...op.v128Or, ...op.v128AnyTrue, ...op.brIf(1),
    ...bump(I, op.i32Const(16)),
    ...op.br(0), ...op.end, ...op.end,
    ...op.block, ...op.loop,
    ...get(I), ...get(N), ...op.i32GeU, ...op.brIf(1),
    ...at, ...op.f32Load(0), ...at, ...op.f32Load(0), ...op.f32Sub, ...op.f32Const(0), ...op.f32Ne,
    ...op.if(), ...get(I), ...op.return, ...op.end,
    ...bump(I, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...op.i32Const(-1),
  ];
  return { name: "firstNonFinite", params: [I32, I32], results: [I32], locals: [I32, I32, V128], body };
}
