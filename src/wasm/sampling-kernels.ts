import { F64, type FunctionDef, I32, emitModule, op } from "./emitter.ts";

/*
 * The token picker's two passes over the vocabulary (src/run/sampling.ts), in WebAssembly on a
 * memory of the picker's own: float64 scalar code, the same operations in the same order as
 * the picker's definition, so the same numbers, at a fraction of JavaScript's time.
 *
 *   bucketize(logits, n, inv, max, bucketOf, counts)   bucket b = ⌊(max − logit·inv)·32⌋, capped
 *                                                      at BUCKETS−1; counts[b] += 1
 *   weigh(logits, n, inv, max, bucketOf, limit, weights, masses, scales) → total
 *                                                      for tokens in buckets below limit:
 *                                                      weights[i] = weight(d, b), masses[b] += it
 *   weight(d, b, scales) → e^(−d) for a token of bucket b
 *
 * weight: scales[b] = e^(−b/32) times the series of e^(−r), r = d − b/32 < 1/32, to r⁶ (the
 * first term left out, (1/32)⁷/7!, is below 6e-15 of the sum). Past the last bucket's start, 128 nats below
 * the top token, a weight is below 3e-56 of the top one's: it counts as 0.
 */

export const BUCKETS = 4096;
export const PER_NAT = 32;

const get = op.localGet;
const set = op.localSet;

/** e^(−d) on the stack, for the f64 local d and the i32 local b; uses the f64 local t for r. */
function weightOf(d: number, b: number, scales: number, t: number): number[] {
  const r = get(t);
  // Horner from the inside: 1 − r(1 − r(1/2 − r(1/6 − r(1/24 − r(1/120 − r·(1/720))))))
  let series: number[] = [...r, ...op.f64Const(1 / 720), ...op.f64Mul];
  for (const c of [1 / 120, 1 / 24, 1 / 6, 1 / 2, 1]) series = [...r, ...op.f64Const(c), ...series, ...op.f64Sub, ...op.f64Mul];
  series = [...op.f64Const(1), ...series, ...op.f64Sub];
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

function bucketizeKernel(): FunctionDef {
  const [LOGITS, N, INV, MAX, BUCKET_OF, COUNTS] = [0, 1, 2, 3, 4, 5];
  const [I, B, AT, E] = [6, 7, 8, 9];
  const body = [
    ...op.block, ...op.loop,
    ...get(I), ...get(N), ...op.i32GeU, ...op.brIf(1),
    // e = (max − logit·inv)·32
    ...get(MAX), ...get(LOGITS), ...get(I), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.f32Load(0), ...op.f64PromoteF32, ...get(INV), ...op.f64Mul, ...op.f64Sub,
    ...op.f64Const(PER_NAT), ...op.f64Mul, ...set(E),
    // b = e < BUCKETS−1 ? trunc(e) : BUCKETS−1
    ...get(E), ...op.i32TruncSatF64S, ...op.i32Const(BUCKETS - 1), ...get(E), ...op.f64Const(BUCKETS - 1), ...op.f64Lt, ...op.select, ...set(B),
    ...get(BUCKET_OF), ...get(I), ...op.i32Const(1), ...op.i32Shl, ...op.i32Add, ...get(B), ...op.i32Store16(0),
    ...get(COUNTS), ...get(B), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...set(AT),
    ...get(AT), ...get(AT), ...op.i32Load(0), ...op.i32Const(1), ...op.i32Add, ...op.i32Store(0),
    ...get(I), ...op.i32Const(1), ...op.i32Add, ...set(I),
    ...op.br(0), ...op.end, ...op.end,
  ];
  return { name: "bucketize", params: [I32, I32, F64, F64, I32, I32], results: [], locals: [I32, I32, I32, F64], body };
}

function weighKernel(): FunctionDef {
  const [LOGITS, N, INV, MAX, BUCKET_OF, LIMIT, WEIGHTS, MASSES, SCALES] = [0, 1, 2, 3, 4, 5, 6, 7, 8];
  const [I, B, AT, D, T, W, TOTAL] = [9, 10, 11, 12, 13, 14, 15];
  const body = [
    ...op.block, ...op.loop,
    ...get(I), ...get(N), ...op.i32GeU, ...op.brIf(1),
    ...get(BUCKET_OF), ...get(I), ...op.i32Const(1), ...op.i32Shl, ...op.i32Add, ...op.i32Load16U(0), ...set(B),
    ...get(B), ...get(LIMIT), ...op.i32GeU, ...op.i32Eqz,
    ...op.if(),
    ...get(MAX), ...get(LOGITS), ...get(I), ...op.i32Const(2), ...op.i32Shl, ...op.i32Add, ...op.f32Load(0), ...op.f64PromoteF32, ...get(INV), ...op.f64Mul, ...op.f64Sub, ...set(D),
    ...weightOf(D, B, SCALES, T), ...set(W),
    ...get(WEIGHTS), ...get(I), ...op.i32Const(3), ...op.i32Shl, ...op.i32Add, ...get(W), ...op.f64Store(0),
    ...get(MASSES), ...get(B), ...op.i32Const(3), ...op.i32Shl, ...op.i32Add, ...set(AT),
    ...get(AT), ...get(AT), ...op.f64Load(0), ...get(W), ...op.f64Add, ...op.f64Store(0),
    ...get(TOTAL), ...get(W), ...op.f64Add, ...set(TOTAL),
    ...op.end,
    ...get(I), ...op.i32Const(1), ...op.i32Add, ...set(I),
    ...op.br(0), ...op.end, ...op.end,
    ...get(TOTAL),
  ];
  return { name: "weigh", params: [I32, I32, F64, F64, I32, I32, I32, I32, I32], results: [F64], locals: [I32, I32, I32, F64, F64, F64, F64], body };
}

function weightKernel(): FunctionDef {
  const [D, B, SCALES, T] = [0, 1, 2, 3];
  return { name: "weight", params: [F64, I32, I32], results: [F64], locals: [F64], body: weightOf(D, B, SCALES, T) };
}

const PAGE = 65536;
const modules = new Map<number, WebAssembly.Module>();

/** The kernels on a memory sized for one vocabulary, with views of their arrays. */
export class SamplingKernels {
  readonly logits: Float32Array;
  readonly bucketOf: Uint16Array;
  readonly weights: Float64Array;
  readonly counts: Int32Array;
  readonly masses: Float64Array;
  private readonly at: { logits: number; bucketOf: number; weights: number; counts: number; masses: number; scales: number };
  private readonly fns: {
    bucketize(logits: number, n: number, inv: number, max: number, bucketOf: number, counts: number): void;
    weigh(logits: number, n: number, inv: number, max: number, bucketOf: number, limit: number, weights: number, masses: number, scales: number): number;
    weight(d: number, b: number, scales: number): number;
  };

  constructor(vocab: number) {
    const align = (x: number) => Math.ceil(x / 16) * 16;
    const logits = 16;
    const weights = align(logits + 4 * vocab);
    const masses = align(weights + 8 * vocab);
    const scales = masses + 8 * BUCKETS;
    const counts = scales + 8 * BUCKETS;
    const bucketOf = counts + 4 * BUCKETS;
    const pages = Math.ceil((bucketOf + 2 * vocab) / PAGE);
    let module = modules.get(pages);
    if (module === undefined) {
      module = new WebAssembly.Module(emitModule([bucketizeKernel(), weighKernel(), weightKernel()], pages) as BufferSource);
      modules.set(pages, module);
    }
    const memory = new WebAssembly.Memory({ initial: pages, maximum: pages, shared: true });
    this.fns = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as SamplingKernels["fns"];
    this.at = { logits, bucketOf, weights, counts, masses, scales };
    const buffer = memory.buffer;
    this.logits = new Float32Array(buffer, logits, vocab);
    this.bucketOf = new Uint16Array(buffer, bucketOf, vocab);
    this.weights = new Float64Array(buffer, weights, vocab);
    this.counts = new Int32Array(buffer, counts, BUCKETS);
    this.masses = new Float64Array(buffer, masses, BUCKETS);
    new Float64Array(buffer, scales, BUCKETS).set(Float64Array.from({ length: BUCKETS }, (_, b) => Math.exp(-b / PER_NAT)));
  }

  /** Copies the logits in, sets every token's bucket and each bucket's count. */
  bucketize(logits: Float32Array, inv: number, max: number): void {
    this.logits.set(logits);
    this.counts.fill(0);
    this.fns.bucketize(this.at.logits, logits.length, inv, max, this.at.bucketOf, this.at.counts);
  }

  /** Weighs the tokens of buckets below `limit` (logits as bucketize got them); their total. */
  weigh(n: number, inv: number, max: number, limit: number): number {
    this.masses.fill(0);
    return this.fns.weigh(this.at.logits, n, inv, max, this.at.bucketOf, limit, this.at.weights, this.at.masses, this.at.scales);
  }

  /** e^(−d) for one token of bucket b, as weigh computes it. */
  weight(d: number, b: number): number {
    return this.fns.weight(d, b, this.at.scales);
  }
}
