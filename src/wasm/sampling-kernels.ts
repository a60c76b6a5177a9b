import { F32, F64, type FunctionDef, I32, V128, emitModule, op } from "./emitter.ts";
import { simdAvailable } from "./runtime.ts";

/*
 * The token picker's passes over the vocabulary (src/run/sampling.ts), in WebAssembly on a
 * memory of the picker's own: float64 scalar code (the max in f32x4 lanes where there is SIMD),
 * the operations of the picker's definition, at a fraction of JavaScript's time.
 *
 *   max(n) → the highest logit                    f32x4 lanes, then the lanes and the tail
 *   bucketize(n, inv, max, weighAll) → one past the highest bucket used
 *                                                 bucket b = ⌊(max − logit·inv)·32⌋, capped at
 *                                                 BUCKETS−1; counts[b] += 1; with weighAll,
 *                                                 weigh's work too
 *   weigh(n, inv, max, limit)                     for tokens in buckets below limit:
 *                                                 weights[i] = weight(d, b), masses[b] += it
 *   sumMasses(limit) → total                      the masses' parts summed, below limit
 *   gather(n, b) → count                          bucket b's ids, in id order
 *   top(n, count) → how many                      the highest logits, best first
 *   weight(d, b) → e^(−d) for a token of bucket b
 *
 * weight: scales[b] = e^(−b/32) times the series of e^(−r), r = d − b/32 < 1/32, to r⁶ (the
 * first term left out, (1/32)⁷/7!, is below 6e-15 of the sum). Past the last bucket's start,
 * 128 nats below the top token, a weight is below 3e-56 of the top one's: it counts as 0.
 */

export const BUCKETS = 4096;
/** The most tokens top() lists. */
export const TOP_MAX = 64;
export const PER_NAT = 32;

const get = op.localGet;
const set = op.localSet;

/**
 * e^(−d) on the stack, for the f64 local d and the i32 local b; uses three f64 locals from t on
 * for r, r² and r⁴.
 */
function weightOf(d: number, b: number, scales: number, t: number): number[] {
  const [r, r2, r4] = [get(t), get(t + 1), get(t + 2)];
  const mul = op.f64Mul, add = op.f64Add, sub = op.f64Sub, c = op.f64Const;
  // Estrin's scheme, ((1 − r) + r²(1/2 − r/6)) + r⁴((1/24 − r/120) + r²/720): the same terms as
  // Horner's, but a dependency chain of five operations instead of thirteen, so the loop's
  // iterations overlap.
  const series = [
    ...r, ...r, ...mul, ...op.localTee(t + 1), ...get(t + 1), ...mul, ...set(t + 2),
    ...c(1), ...r, ...sub, ...r2, ...c(1 / 2), ...r, ...c(1 / 6), ...mul, ...sub, ...mul, ...add,
    ...r4, ...c(1 / 24), ...r, ...c(1 / 120), ...mul, ...sub, ...r2, ...c(1 / 720), ...mul, ...add, ...mul, ...add,
  ];
  return [
    ...get(b), ...op.i32Const(BUCKETS - 1), ...op.i32GeU,
    ...op.if([F64]), ...op.f64Const(0),
    ...op.else,
    // r = d − b·(1/32)
    ...get(d), ...get(b), ...op.f64ConvertI32S, ...op.f64Const(1 / PER_NAT), ...op.f64Mul, ...op.f64Sub, ...set(t),
    ...get(scales), ...get(b), ...op.i32Const(3), ...op.i32Shl, ...op.i32Add, ...op.f64Load(0), ...series, ...op.f64Mul,
    ...op.end,
  ];
}

/*
 * Every kernel takes the arrays' addresses first, in this order, then its own arguments: the
 * first locals are the arrays in every kernel.
 */
const ARRAYS = ["logits", "bucketOf", "weights", "counts", "countParts", "masses", "massParts", "scales", "ids", "topLogits", "topIds"] as const;
type Arrays = Record<(typeof ARRAYS)[number], number>;
const [LOGITS, BUCKET_OF, WEIGHTS, COUNTS, COUNT_PARTS, MASSES, MASS_PARTS, SCALES, IDS, TOP_LOGITS, TOP_IDS] = ARRAYS.map((_, i) => i);
const ARGS = ARRAYS.length;

/*
 * Counts and masses are summed into PARTS histograms, token i into part i mod PARTS, then
 * merged: consecutive tokens often share a bucket, and one histogram would make each update wait
 * for the one before it (a load after a store to the same address).
 */
const PARTS = 4;
const COUNT_PART = 4 * BUCKETS;
const MASS_PART = 8 * BUCKETS;

/** The address of element i of an array of 2^log2-byte elements, on the stack. */
const element = (array: number, i: number, log2: number) => [...get(array), ...get(i), ...op.i32Const(log2), ...op.i32Shl, ...op.i32Add];

/** d = max − logit_i·inv, on the stack. */
const distance = (i: number, inv: number, max: number) => [
  ...get(max), ...element(LOGITS, i, 2), ...op.f32Load(0), ...op.f64PromoteF32, ...get(inv), ...op.f64Mul, ...op.f64Sub,
];

/** Token i of bucket b weighs e^(−d): weights[i] = it, and it joins the mass of part i mod PARTS. */
function addWeight(i: number, b: number, d: number, w: number, at: number, t: number): number[] {
  return [
    ...weightOf(d, b, SCALES, t), ...set(w),
    ...element(WEIGHTS, i, 3), ...get(w), ...op.f64Store(0),
    ...get(MASS_PARTS), ...get(i), ...op.i32Const(PARTS - 1), ...op.i32And, ...op.i32Const(MASS_PART), ...op.i32Mul, ...op.i32Add,
    ...get(b), ...op.i32Const(3), ...op.i32Shl, ...op.i32Add, ...set(at),
    ...get(at), ...get(at), ...op.f64Load(0), ...get(w), ...op.f64Add, ...op.f64Store(0),
  ];
}

/** for (i = 0; i < n; i++) body */
const forEach = (i: number, n: number, body: number[]) => [
  ...op.i32Const(0), ...set(i),
  ...op.block, ...op.loop,
  ...get(i), ...get(n), ...op.i32GeU, ...op.brIf(1),
  ...body,
  ...get(i), ...op.i32Const(1), ...op.i32Add, ...set(i),
  ...op.br(0), ...op.end, ...op.end,
];

/**
 * Bucket b's PARTS histogram entries (PART bytes apart, from the local `at`) summed onto the
 * stack, each set back to 0 for the next pass; `f64`: masses, else counts.
 */
function takeParts(at: number, f64: boolean): number[] {
  const [part, load, add, zero, store] = f64
    ? [MASS_PART, op.f64Load, op.f64Add, op.f64Const(0), op.f64Store]
    : [COUNT_PART, op.i32Load, op.i32Add, op.i32Const(0), op.i32Store];
  return [
    ...get(at), ...load(0),
    ...Array.from({ length: PARTS - 1 }, (_, k) => [...get(at), ...load((k + 1) * part), ...add]).flat(),
    ...Array.from({ length: PARTS }, (_, k) => [...get(at), ...zero, ...store(k * part)]).flat(),
  ];
}

/**
 * The highest of n logits (NaNs left out): with SIMD four lanes at a time, then the lanes and
 * the tail; without, one at a time (the picker needs no SIMD, only WebAssembly).
 */
function maxKernel(simd: boolean): FunctionDef {
  const N = ARGS;
  const [I, M, X, N4, ACC] = [N + 1, N + 2, N + 3, N + 4, N + 5];
  // m = m < x ? x : m, as pmax does per lane
  const keepHigher = [...get(X), ...get(M), ...get(M), ...get(X), ...op.f32Lt, ...op.select, ...set(M)];
  const lanes = [
    ...op.f32x4Const(-Infinity), ...set(ACC),
    ...get(N), ...op.i32Const(-4), ...op.i32And, ...set(N4),
    ...op.block, ...op.loop,
    ...get(I), ...get(N4), ...op.i32GeU, ...op.brIf(1),
    ...get(ACC), ...element(LOGITS, I, 2), ...op.v128Load(0), ...op.f32x4Pmax, ...set(ACC),
    ...get(I), ...op.i32Const(4), ...op.i32Add, ...set(I),
    ...op.br(0), ...op.end, ...op.end,
    ...get(ACC), ...op.f32x4ExtractLane(0), ...set(M),
    ...[1, 2, 3].flatMap((lane) => [...get(ACC), ...op.f32x4ExtractLane(lane), ...set(X), ...keepHigher]),
  ];
  const body = [
    ...(simd ? lanes : [...op.f32Const(-Infinity), ...set(M)]),
    ...op.block, ...op.loop,
    ...get(I), ...get(N), ...op.i32GeU, ...op.brIf(1),
    ...element(LOGITS, I, 2), ...op.f32Load(0), ...set(X), ...keepHigher,
    ...get(I), ...op.i32Const(1), ...op.i32Add, ...set(I),
    ...op.br(0), ...op.end, ...op.end,
    ...get(M),
  ];
  return { name: "max", params: [...ARRAYS.map(() => I32), I32], results: [F32], locals: [I32, F32, F32, ...(simd ? [I32, V128] : [])], body };
}

/**
 * Each token's bucket, each bucket's count; with `weighAll`, each token's weight and each
 * bucket's mass in the same pass (to be summed by sumMasses). Returns one past the highest
 * bucket used.
 */
function bucketizeKernel(): FunctionDef {
  const [N, INV, MAX, WEIGH_ALL] = [ARGS, ARGS + 1, ARGS + 2, ARGS + 3];
  const [I, B, AT, D, E, HI, W, T] = [ARGS + 4, ARGS + 5, ARGS + 6, ARGS + 7, ARGS + 8, ARGS + 9, ARGS + 10, ARGS + 11];
  const body = [
    ...forEach(I, N, [
      ...distance(I, INV, MAX), ...op.localTee(D), ...op.f64Const(PER_NAT), ...op.f64Mul, ...set(E),
      // b = e < BUCKETS−1 ? trunc(e) : BUCKETS−1
      ...get(E), ...op.i32TruncSatF64S, ...op.i32Const(BUCKETS - 1), ...get(E), ...op.f64Const(BUCKETS - 1), ...op.f64Lt, ...op.select, ...set(B),
      ...element(BUCKET_OF, I, 1), ...get(B), ...op.i32Store16(0),
      // countParts[i mod PARTS][b] += 1
      ...get(COUNT_PARTS), ...get(I), ...op.i32Const(PARTS - 1), ...op.i32And, ...op.i32Const(COUNT_PART), ...op.i32Mul, ...op.i32Add,
      ...get(B), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(AT),
      ...get(AT), ...get(AT), ...op.i32Load(0), ...op.i32Const(1), ...op.i32Add, ...op.i32Store(0),
      ...get(B), ...get(HI), ...get(B), ...get(HI), ...op.i32GtU, ...op.select, ...set(HI),
      ...get(WEIGH_ALL), ...op.if(), ...addWeight(I, B, D, W, AT, T), ...op.end,
    ]),
    // counts[b] = the parts' sum, and the parts back to 0, for the buckets used
    ...get(HI), ...op.i32Const(1), ...op.i32Add, ...set(HI),
    ...forEach(B, HI, [...element(COUNT_PARTS, B, 2), ...set(AT), ...element(COUNTS, B, 2), ...takeParts(AT, false), ...op.i32Store(0)]),
    ...get(HI),
  ];
  const locals = [I32, I32, I32, F64, F64, I32, F64, F64, F64, F64];
  return { name: "bucketize", params: [...ARRAYS.map(() => I32), I32, F64, F64, I32], results: [I32], locals, body };
}

/** The weights of the tokens in buckets below `limit`, and those buckets' masses in parts. */
function weighKernel(): FunctionDef {
  const [N, INV, MAX, LIMIT] = [ARGS, ARGS + 1, ARGS + 2, ARGS + 3];
  const [I, B, AT, D, W, T] = [ARGS + 4, ARGS + 5, ARGS + 6, ARGS + 7, ARGS + 8, ARGS + 9];
  const body = forEach(I, N, [
    ...element(BUCKET_OF, I, 1), ...op.i32Load16U(0), ...set(B),
    ...get(B), ...get(LIMIT), ...op.i32GeU, ...op.i32Eqz,
    ...op.if(), ...distance(I, INV, MAX), ...set(D), ...addWeight(I, B, D, W, AT, T), ...op.end,
  ]);
  return { name: "weigh", params: [...ARRAYS.map(() => I32), I32, F64, F64, I32], results: [], locals: [I32, I32, I32, F64, F64, F64, F64, F64], body };
}

/** masses[b] = the parts' sum, and the parts back to 0, for b below `limit`; their total. */
function sumMassesKernel(): FunctionDef {
  const LIMIT = ARGS;
  const [B, AT, M, TOTAL] = [ARGS + 1, ARGS + 2, ARGS + 3, ARGS + 4];
  const body = [
    ...forEach(B, LIMIT, [
      ...element(MASS_PARTS, B, 3), ...set(AT), ...takeParts(AT, true), ...set(M),
      ...element(MASSES, B, 3), ...get(M), ...op.f64Store(0),
      ...get(TOTAL), ...get(M), ...op.f64Add, ...set(TOTAL),
    ]),
    ...get(TOTAL),
  ];
  return { name: "sumMasses", params: [...ARRAYS.map(() => I32), I32], results: [F64], locals: [I32, I32, F64, F64], body };
}

/** The ids of the tokens of bucket b, in id order, into ids[0, count); returns count. */
function gatherKernel(): FunctionDef {
  const [N, B] = [ARGS, ARGS + 1];
  const [I, C] = [ARGS + 2, ARGS + 3];
  // ids[c] = i always, c advances only for bucket b: no branch to mispredict
  const body = [
    ...forEach(I, N, [
      ...element(IDS, C, 2), ...get(I), ...op.i32Store(0),
      ...get(C), ...element(BUCKET_OF, I, 1), ...op.i32Load16U(0), ...get(B), ...op.i32Eq, ...op.i32Add, ...set(C),
    ]),
    ...get(C),
  ];
  return { name: "gather", params: [...ARRAYS.map(() => I32), I32, I32], results: [I32], locals: [I32, I32], body };
}

/**
 * The `count` highest of n logits, best first, ties in id order, into topLogits and topIds;
 * returns how many (fewer than count only if n is). An insertion into a short sorted list, which
 * a logit reaches only if it beats the list's last once the list is full.
 */
function topKernel(): FunctionDef {
  const [N, COUNT] = [ARGS, ARGS + 1];
  const [I, FILLED, J, AT, X, FLOOR] = [ARGS + 2, ARGS + 3, ARGS + 4, ARGS + 5, ARGS + 6, ARGS + 7];
  const body = [
    ...forEach(I, N, [
      ...element(LOGITS, I, 2), ...op.f32Load(0), ...set(X),
      ...op.block,
      // Once the list is full, only a logit above its last gets in (a tie has the higher id).
      ...get(FILLED), ...get(COUNT), ...op.i32Eq, ...op.if(), ...get(X), ...get(FLOOR), ...op.f32Gt, ...op.i32Eqz, ...op.brIf(1), ...op.end,
      // j = the last place in the list (or the first free one), moved up past lower logits
      ...get(COUNT), ...op.i32Const(1), ...op.i32Sub, ...get(FILLED), ...get(FILLED), ...get(COUNT), ...op.i32Eq, ...op.select, ...set(J),
      ...op.block, ...op.loop,
      ...get(J), ...op.i32Eqz, ...op.brIf(1),
      ...element(TOP_LOGITS, J, 2), ...op.i32Const(4), ...op.i32Sub, ...set(AT),
      ...get(AT), ...op.f32Load(0), ...get(X), ...op.f32Lt, ...op.i32Eqz, ...op.brIf(1),
      ...get(AT), ...get(AT), ...op.f32Load(0), ...op.f32Store(4),
      ...element(TOP_IDS, J, 2), ...op.i32Const(4), ...op.i32Sub, ...set(AT),
      ...get(AT), ...get(AT), ...op.i32Load(0), ...op.i32Store(4),
      ...get(J), ...op.i32Const(1), ...op.i32Sub, ...set(J),
      ...op.br(0), ...op.end, ...op.end,
      ...element(TOP_LOGITS, J, 2), ...get(X), ...op.f32Store(0),
      ...element(TOP_IDS, J, 2), ...get(I), ...op.i32Store(0),
      ...get(FILLED), ...get(COUNT), ...get(FILLED), ...op.i32GtU, ...op.i32Add, ...set(FILLED),
      ...element(TOP_LOGITS, COUNT, 2), ...op.i32Const(4), ...op.i32Sub, ...op.f32Load(0), ...set(FLOOR),
      ...op.end,
    ]),
    ...get(FILLED),
  ];
  return { name: "top", params: [...ARRAYS.map(() => I32), I32, I32], results: [I32], locals: [I32, I32, I32, I32, F32, F32], body };
}

function weightKernel(): FunctionDef {
  const [D, B, T] = [ARGS, ARGS + 1, ARGS + 2];
  return { name: "weight", params: [...ARRAYS.map(() => I32), F64, I32], results: [F64], locals: [F64, F64, F64], body: weightOf(D, B, SCALES, T) };
}

const PAGE = 65536;
const modules = new Map<string, WebAssembly.Module>();

/**
 * The kernels on a memory sized for one vocabulary, with views of their arrays. Every pass over
 * the vocabulary runs here: a picker runs once per token, too rarely for JavaScript engines to
 * optimise loops of its own fully.
 */
export class SamplingKernels {
  readonly logits: Float32Array;
  readonly bucketOf: Uint16Array;
  readonly weights: Float64Array;
  /** Tokens per bucket, below `end`. */
  readonly counts: Int32Array;
  /** Each bucket's mass, below the limit sumMasses last had. */
  readonly masses: Float64Array;
  /** gather's output. */
  readonly ids: Int32Array;
  /** top's output. */
  readonly topLogits: Float32Array;
  readonly topIds: Int32Array;
  /** One past the highest bucket the last bucketize used. */
  end = 0;
  /** The arrays' addresses, in ARRAYS' order: every kernel's first arguments. */
  private readonly at: number[];
  private readonly fns: {
    max(...a: [...number[], number]): number;
    bucketize(...a: [...number[], number, number, number, number]): number;
    weigh(...a: [...number[], number, number, number, number]): void;
    sumMasses(...a: [...number[], number]): number;
    gather(...a: [...number[], number, number]): number;
    top(...a: [...number[], number, number]): number;
    weight(...a: [...number[], number, number]): number;
  };

  /** `simd`: whether max may use SIMD (the tests run both forms). */
  constructor(vocab: number, simd = simdAvailable) {
    const align = (x: number) => Math.ceil(x / 16) * 16;
    const bytes: Arrays = {
      logits: 4 * vocab, bucketOf: 2 * vocab, weights: 8 * vocab, counts: 4 * BUCKETS, countParts: PARTS * COUNT_PART,
      masses: 8 * BUCKETS, massParts: PARTS * MASS_PART, scales: 8 * BUCKETS, ids: 4 * vocab,
      topLogits: 4 * TOP_MAX, topIds: 4 * TOP_MAX,
    };
    const at = {} as Arrays;
    let next = 16;
    for (const name of ARRAYS) {
      at[name] = next;
      next = align(next + bytes[name]);
    }
    const pages = Math.ceil(next / PAGE);
    const key = `${pages}${simd ? " simd" : ""}`;
    let module = modules.get(key);
    if (module === undefined) {
      const kernels = [maxKernel(simd), bucketizeKernel(), weighKernel(), sumMassesKernel(), gatherKernel(), topKernel(), weightKernel()];
      module = new WebAssembly.Module(emitModule(kernels, pages) as BufferSource);
      modules.set(key, module);
    }
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.fns = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SamplingKernels["fns"];
    this.at = ARRAYS.map((name) => at[name]);
    const buffer = memory.buffer;
    this.logits = new Float32Array(buffer, at.logits, vocab);
    this.bucketOf = new Uint16Array(buffer, at.bucketOf, vocab);
    this.weights = new Float64Array(buffer, at.weights, vocab);
    this.counts = new Int32Array(buffer, at.counts, BUCKETS);
    this.masses = new Float64Array(buffer, at.masses, BUCKETS);
    this.ids = new Int32Array(buffer, at.ids, vocab);
    this.topLogits = new Float32Array(buffer, at.topLogits, TOP_MAX);
    this.topIds = new Int32Array(buffer, at.topIds, TOP_MAX);
    new Float64Array(buffer, at.scales, BUCKETS).set(Float64Array.from({ length: BUCKETS }, (_, b) => Math.exp(-b / PER_NAT)));
  }

  /** Copies the logits in. */
  load(logits: Float32Array): void {
    this.logits.set(logits);
  }

  /** The highest of the first n logits. */
  max(n: number): number {
    return this.fns.max(...this.at, n);
  }

  /** The `count` (≤ TOP_MAX) highest of the first n logits into topLogits and topIds; how many. */
  top(n: number, count: number): number {
    return this.fns.top(...this.at, n, count);
  }

  /**
   * Sets each of the first n tokens' bucket and each bucket's count below `end`; with
   * `weighAll`, weighs every token too, as weigh(n, inv, max, end) would, in the same pass.
   */
  bucketize(n: number, inv: number, max: number, weighAll: boolean): void {
    this.end = this.fns.bucketize(...this.at, n, inv, max, weighAll ? 1 : 0);
  }

  /** Weighs the tokens of buckets below `limit`. */
  weigh(n: number, inv: number, max: number, limit: number): void {
    this.fns.weigh(...this.at, n, inv, max, Math.min(limit, this.end));
  }

  /** Sums the mass of each bucket below `limit` (weighed by bucketize or weigh); their total. */
  sumMasses(limit: number): number {
    return this.fns.sumMasses(...this.at, Math.min(limit, this.end));
  }

  /** The ids of bucket b's first n tokens, in id order, into ids[0, count); returns count. */
  gather(n: number, b: number): number {
    return this.fns.gather(...this.at, n, b);
  }

  /** e^(−d) for one token of bucket b, as weigh computes it. */
  weight(d: number, b: number): number {
    return this.fns.weight(...this.at, d, b);
  }
}
