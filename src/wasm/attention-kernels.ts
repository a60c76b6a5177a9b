import { type FunctionDef, I32, V128, op } from "./emitter.ts";

/*
 * Causal attention's two products as WebAssembly SIMD, specialised for one width d and head
 * count H (head width hd = d/H, a multiple of 4): every offset inside a row is a constant.
 * Keys and values are the KV cache's rows ([positions, d], in the WebAssembly memory).
 *
 *   scores(q, keys, out, tq, past, i0, i1)  out[h, i, j] = q[i, head h] · keys[j, head h], j ≤ past+i
 *   values(p, values, out, tq, past, i0, i1) out[i, head h] = Σ_{j ≤ past+i} p[h, i, j] · values[j, head h]
 *
 * for query rows i0 ≤ i < i1 (threads take rows of a prefill's attention).
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

export function scoresKernel(d: number, heads: number, relaxed: boolean): FunctionDef {
  const hd = d / heads;
  const vectors = hd / 4;
  // params: q, keys, out, tq, past, i0, i1 · locals: i, j, last, qRow, kRow, cell, hStride, tk, acc0..3
  const [Q, K, OUT, TQ, PAST, I0, I1, I, J, LAST, QROW, KROW, CELL, HSTRIDE, TK] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14];
  const ACC = [15, 16, 17, 18];
  const used = Math.min(4, vectors);
  const perHead = (h: number): number[] => [
    ...ACC.slice(0, used).flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    ...Array.from({ length: vectors }, (_, v) => emitFma(relaxed, ACC[v % 4],
      [...op.localGet(QROW), ...op.v128Load(bytes(h * hd + 4 * v))],
      [...op.localGet(KROW), ...op.v128Load(bytes(h * hd + 4 * v))])).flat(),
    ...ACC.slice(1, used).flatMap((acc) => [...op.localGet(acc), ...op.localGet(ACC[0]), ...op.f32x4Add, ...op.localSet(ACC[0])]),
    // out[h, i, j] at cell + h·hStride: the four lanes' sum
    ...op.localGet(CELL), ...(h === 0 ? [] : [...op.localGet(HSTRIDE), ...op.i32Const(h), ...op.i32Mul, ...op.i32Add]),
    ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(0), ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(1), ...op.f32Add,
    ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(2), ...op.f32Add, ...op.localGet(ACC[0]), ...op.f32x4ExtractLane(3), ...op.f32Add,
    ...op.f32Store(0),
  ];
  const body = [
    ...op.localGet(TQ), ...op.localGet(PAST), ...op.i32Add, ...op.localSet(TK),
    ...op.localGet(TQ), ...op.localGet(TK), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.localSet(HSTRIDE),
    ...op.localGet(I0), ...op.localSet(I),
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.localGet(I1), ...op.i32GeU, ...op.brIf(1),
    ...op.localGet(PAST), ...op.localGet(I), ...op.i32Add, ...op.localSet(LAST),
    ...op.localGet(Q), ...op.localGet(I), ...op.i32Const(bytes(d)), ...op.i32Mul, ...op.i32Add, ...op.localSet(QROW),
    ...op.localGet(K), ...op.localSet(KROW),
    // cell = out + i·tk·4, then + 4 per key
    ...op.localGet(OUT), ...op.localGet(I), ...op.localGet(TK), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(CELL),
    ...op.i32Const(0), ...op.localSet(J),
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(LAST), ...op.i32GtU, ...op.brIf(1),
    ...Array.from({ length: heads }, (_, h) => perHead(h)).flat(),
    ...bump(KROW, op.i32Const(bytes(d))), ...bump(CELL, op.i32Const(4)), ...bump(J, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...bump(I, op.i32Const(1)), ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "scores", params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [I32, I32, I32, I32, I32, I32, I32, I32, V128, V128, V128, V128], body };
}

export function valuesKernel(d: number, heads: number, relaxed: boolean): FunctionDef {
  const hd = d / heads;
  const vectors = hd / 4;
  // params: p, values, out, tq, past, i0, i1 · locals: i, j, last, pp, vp, outRow, tk, w, acc0..7
  const [P, VALS, OUT, TQ, PAST, I0, I1, I, J, LAST, PP, VP, OROW, TK] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13];
  const W = 14;
  const ACC = [15, 16, 17, 18, 19, 20, 21, 22];
  /** One head's vectors v0 … v0+n−1 (n ≤ 8 sums held in locals across all visible keys). */
  const group = (h: number, v0: number, n: number): number[] => [
    ...ACC.slice(0, n).flatMap((acc) => [...op.v128Zero, ...op.localSet(acc)]),
    // pp = p + ((h·tq + i)·tk)·4, vp = values
    ...op.localGet(P), ...op.i32Const(h), ...op.localGet(TQ), ...op.i32Mul, ...op.localGet(I), ...op.i32Add, ...op.localGet(TK), ...op.i32Mul, ...op.i32Const(4), ...op.i32Mul, ...op.i32Add, ...op.localSet(PP),
    ...op.localGet(VALS), ...op.localSet(VP),
    ...op.i32Const(0), ...op.localSet(J),
    ...op.block, ...op.loop,
    ...op.localGet(J), ...op.localGet(LAST), ...op.i32GtU, ...op.brIf(1),
    ...op.localGet(PP), ...op.v128Load32Splat(0), ...op.localSet(W),
    ...Array.from({ length: n }, (_, c) => emitFma(relaxed, ACC[c], op.localGet(W), [...op.localGet(VP), ...op.v128Load(bytes(h * hd + 4 * (v0 + c)))])).flat(),
    ...bump(PP, op.i32Const(4)), ...bump(VP, op.i32Const(bytes(d))), ...bump(J, op.i32Const(1)),
    ...op.br(0), ...op.end, ...op.end,
    ...Array.from({ length: n }, (_, c) => [...op.localGet(OROW), ...op.localGet(ACC[c]), ...op.v128Store(bytes(h * hd + 4 * (v0 + c)))]).flat(),
  ];
  const perHead = (h: number): number[] => {
    const out: number[] = [];
    for (let v0 = 0; v0 < vectors; v0 += 8) out.push(...group(h, v0, Math.min(8, vectors - v0)));
    return out;
  };
  const body = [
    ...op.localGet(TQ), ...op.localGet(PAST), ...op.i32Add, ...op.localSet(TK),
    ...op.localGet(I0), ...op.localSet(I),
    ...op.block, ...op.loop,
    ...op.localGet(I), ...op.localGet(I1), ...op.i32GeU, ...op.brIf(1),
    ...op.localGet(PAST), ...op.localGet(I), ...op.i32Add, ...op.localSet(LAST),
    ...op.localGet(OUT), ...op.localGet(I), ...op.i32Const(bytes(d)), ...op.i32Mul, ...op.i32Add, ...op.localSet(OROW),
    ...Array.from({ length: heads }, (_, h) => perHead(h)).flat(),
    ...bump(I, op.i32Const(1)), ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "values", params: [I32, I32, I32, I32, I32, I32, I32], results: [], locals: [I32, I32, I32, I32, I32, I32, I32, V128, ...ACC.map(() => V128)], body };
}

