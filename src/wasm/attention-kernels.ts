import { type FunctionDef, I32, V128, op } from "./emitter.ts";

/*
 * Causal attention's two products as WebAssembly SIMD, specialised for one width d and head
 * count H (head width hd = d/H, a multiple of 4): every offset inside a head is a constant.
 * Keys and values are the KV cache's rows ([positions, d], in the WebAssembly memory).
 *
 *   scores(q, keys, out, tq, past, u0, u1)  out[h, i, j] = q[i, head h] · keys[j, head h], j ≤ past+i
 *   values(p, values, out, tq, past, u0, u1) out[i, head h] = Σ_{j ≤ past+i} p[h, i, j] · values[j, head h]
 *
 * for the units u0 ≤ u < u1, unit u = h·tq + i: one head of one query row. Threads take units, so
 * a decode step's one query still splits into its heads, and unit u's scores (and weights) are row
 * u of [H·tq, past+tq]: a softmax by heads and the values of one query read exactly the rows the
 * unit before them wrote, and run in its chunks (see kernels/plan.ts).
 *
 * Scores take four keys at a time: each of the query's vectors is loaded once for the four, and
 * the four sums leave as one vector. One key at a time, a decode step's scores at 1000 positions
 * read the cache at 15–16 GB/s (about 60 instructions a key left too few keys in flight to hide
 * memory); four at a time, at 20–26 GB/s (d = 768, 12 heads, caches streamed, Node 24).
 *
 * The same visible pairs as the TypeScript ops, so the same cycles.
 */
const bytes = (floats: number) => 4 * floats;

function emitFma(relaxed: boolean, acc: number, a: number[], b: number[]): number[] {
  return relaxed
    ? [...a, ...b, ...op.localGet(acc), ...op.f32x4RelaxedMadd, ...op.localSet(acc)]
    : [...op.localGet(acc), ...a, ...b, ...op.f32x4Mul, ...op.f32x4Add, ...op.localSet(acc)];
}

/** `local += step` */
const bump = (local: number, step: number[]): number[] => [...op.localGet(local), ...step, ...op.i32Add, ...op.localSet(local)];

/** Sets `h` and `i` from unit `u` (u = h·tq + i), and `hOff`, the head's byte offset in a row. */
function unitIndices(U: number, TQ: number, H: number, I: number, HOFF: number, hd: number): number[] {
  return [
    ...op.localGet(U), ...op.localGet(TQ), ...op.i32DivU, ...op.localSet(H),
    ...op.localGet(U), ...op.localGet(H), ...op.localGet(TQ), ...op.i32Mul, ...op.i32Sub, ...op.localSet(I),
    ...op.localGet(H), ...op.i32Const(bytes(hd)), ...op.i32Mul, ...op.localSet(HOFF),
  ];
}

export function scoresKernel(d: number, heads: number, relaxed: boolean): FunctionDef {
  const hd = d / heads;
  const vectors = hd / 4;
  // params: q, keys, out, tq, past, u0, u1 · locals: u, h, i, j, last, qRow, kRow, cell, tk, hOff, x, acc0..acc7
  const [Q, K, OUT, TQ, PAST, U0, U1, U, H, I, J, LAST, QROW, KROW, CELL, TK, HOFF] = Array.from({ length: 17 }, (_, n) => n);
  const X = 17;
  const ACC = [18, 19, 20, 21, 22, 23, 24, 25];
  /** f32 lanes picked from two vectors (0–3 the first's, 4–7 the second's), as byte lanes for i8x16.shuffle. */
  const lanes = (picks: number[]): number[] => picks.flatMap((l) => [0, 1, 2, 3].map((b) => 4 * l + b));
  // Four keys at a time: each of q's vectors is loaded once for the four, two sums per key (even
  // and odd vectors) keep the chains short, and the four keys' sums leave as one vector.
  const four = [
    ...ACC.flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    ...Array.from({ length: vectors }, (_, v) => [
      ...op.localGet(QROW), ...op.v128Load(bytes(4 * v)), ...op.localSet(X),
      ...[0, 1, 2, 3].flatMap((key) => emitFma(relaxed, ACC[2 * key + (v % 2)], op.localGet(X), [...op.localGet(KROW), ...op.v128Load(bytes(key * d + 4 * v))])),
    ]).flat(),
    // acc(key) = even + odd; then the four keys' lane sums, transposed into one vector
    ...[0, 1, 2, 3].flatMap((key) => [...op.localGet(ACC[2 * key]), ...op.localGet(ACC[2 * key + 1]), ...op.f32x4Add, ...op.localSet(ACC[2 * key])]),
    ...op.localGet(CELL),
    ...op.localGet(ACC[0]), ...op.localGet(ACC[2]), ...op.i8x16Shuffle(lanes([0, 4, 1, 5])),
    ...op.localGet(ACC[0]), ...op.localGet(ACC[2]), ...op.i8x16Shuffle(lanes([2, 6, 3, 7])), ...op.f32x4Add, ...op.localSet(ACC[1]),
    ...op.localGet(ACC[4]), ...op.localGet(ACC[6]), ...op.i8x16Shuffle(lanes([0, 4, 1, 5])),
    ...op.localGet(ACC[4]), ...op.localGet(ACC[6]), ...op.i8x16Shuffle(lanes([2, 6, 3, 7])), ...op.f32x4Add, ...op.localSet(ACC[3]),
    ...op.localGet(ACC[1]), ...op.localGet(ACC[3]), ...op.i8x16Shuffle(lanes([0, 1, 4, 5])),
    ...op.localGet(ACC[1]), ...op.localGet(ACC[3]), ...op.i8x16Shuffle(lanes([2, 3, 6, 7])), ...op.f32x4Add,
    ...op.v128Store(0),
  ];
  const one = [
    ...ACC.slice(0, 4).flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    ...Array.from({ length: vectors }, (_, v) => emitFma(relaxed, ACC[v % 4],
      [...op.localGet(QROW), ...op.v128Load(bytes(4 * v))],
      [...op.localGet(KROW), ...op.v128Load(bytes(4 * v))])).flat(),
    ...ACC.slice(1, Math.min(4, vectors)).flatMap((acc) => [...op.localGet(acc), ...op.localGet(ACC[0]), ...op.f32x4Add, ...op.localSet(ACC[0])]),
    // the four lanes' sum
    ...op.localGet(CELL),
    ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(0), ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(1), ...op.f32Add,
    ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(2), ...op.f32Add, ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(3), ...op.f32Add,
    ...op.f32Store(0),
  ];
  const body = [
    ...op.localGet(TQ), ...op.localGet(PAST), ...op.i32Add, ...op.localSet(TK),
    ...op.localGet(U0), ...op.localSet(U),
    ...op.block, ...op.loop,
    ...op.localGet(U), ...op.localGet(U1), ...op.i32GeU, ...op.brIf(1),
    ...unitIndices(U, TQ, H, I, HOFF, hd),
    ...op.localGet(PAST), ...op.localGet(I), ...op.i32Add, ...op.localSet(LAST),
    ...op.localGet(Q), ...op.localGet(I), ...op.i32Const(bytes(d)), ...op.i32Mul, ...op.i32Add, ...op.localGet(HOFF), ...op.i32Add, ...op.localSet(QROW),
    ...op.localGet(K), ...op.localGet(HOFF), ...op.i32Add, ...op.localSet(KROW),
    // cell = out + u·tk·4 (row u of [H·tq, tk]), then + 4 per key
    ...op.localGet(OUT), ...op.localGet(U), ...op.localGet(TK), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(CELL),
    ...op.i32Const(0), ...op.localSet(J),
    // keys j … j+3 while j+3 ≤ last
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.i32Const(3), ...op.i32Add, ...op.localGet(LAST), ...op.i32GtU, ...op.brIf(1),
    ...four,
    ...bump(KROW, op.i32Const(bytes(4 * d))), ...bump(CELL, op.i32Const(16)), ...bump(J, op.i32Const(4)),
    ...op.br(0), ...op.end, ...op.end,
    // the keys left, one at a time
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(LAST), ...op.i32GtU, ...op.brIf(1),
    ...one,
    ...bump(KROW, op.i32Const(bytes(d))), ...bump(CELL, op.i32Const(4)), ...bump(J, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...bump(U, op.i32Const(1)), ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "scores", params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [...Array(10).fill(I32), V128, ...ACC.map(() => V128)], body };
}

export function valuesKernel(d: number, heads: number, relaxed: boolean): FunctionDef {
  const hd = d / heads;
  const vectors = hd / 4;
  // params: p, values, out, tq, past, u0, u1 · locals: u, h, i, j, last, pp, vp, outRow, tk, hOff, w, acc0..7
  const [P, VALS, OUT, TQ, PAST, U0, U1, U, H, I, J, LAST, PP, VP, OROW, TK, HOFF] = Array.from({ length: 17 }, (_, n) => n);
  const W = 17;
  const ACC = [18, 19, 20, 21, 22, 23, 24, 25];
  /** The unit's head, vectors v0 … v0+n−1 (n ≤ 8 sums held in locals across all visible keys). */
  const group = (v0: number, n: number): number[] => [
    ...ACC.slice(0, n).flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    // pp = p + u·tk·4 (row u of [H·tq, tk]), vp = values + hOff
    ...op.localGet(P), ...op.localGet(U), ...op.localGet(TK), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(PP),
    ...op.localGet(VALS), ...op.localGet(HOFF), ...op.i32Add, ...op.localSet(VP),
    ...op.i32Const(0), ...op.localSet(J),
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(LAST), ...op.i32GtU, ...op.brIf(1),
    ...op.localGet(PP), ...op.v128Load32Splat(0), ...op.localSet(W),
    ...Array.from({ length: n }, (_, c) => emitFma(relaxed, ACC[c], op.localGet(W), [...op.localGet(VP), ...op.v128Load(bytes(4 * (v0 + c)))])).flat(),
    ...bump(PP, op.i32Const(4)), ...bump(VP, op.i32Const(bytes(d))), ...bump(J, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...Array.from({ length: n }, (_, c) => [...op.localGet(OROW), ...op.localGet(ACC[c]), ...op.v128Store(bytes(4 * (v0 + c)))]).flat(),
  ];
  const groups: number[] = [];
  for (let v0 = 0; v0 < vectors; v0 += 8) groups.push(...group(v0, Math.min(8, vectors - v0)));
  const body = [
    ...op.localGet(TQ), ...op.localGet(PAST), ...op.i32Add, ...op.localSet(TK),
    ...op.localGet(U0), ...op.localSet(U),
    ...op.block, ...op.loop,
    ...op.localGet(U), ...op.localGet(U1), ...op.i32GeU, ...op.brIf(1),
    ...unitIndices(U, TQ, H, I, HOFF, hd),
    ...op.localGet(PAST), ...op.localGet(I), ...op.i32Add, ...op.localSet(LAST),
    ...op.localGet(OUT), ...op.localGet(I), ...op.i32Const(bytes(d)), ...op.i32Mul, ...op.i32Add, ...op.localGet(HOFF), ...op.i32Add, ...op.localSet(OROW),
    ...groups,
    ...bump(U, op.i32Const(1)), ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "values", params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [...Array(10).fill(I32), V128, ...ACC.map(() => V128)], body };
}
