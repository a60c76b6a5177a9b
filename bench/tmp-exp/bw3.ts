// Memory bandwidth from one and from two threads (each reading its own half, 4 streams each)
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { I32, V128, emitModule, op, type FunctionDef } from "../../src/wasm/emitter.ts";
function reader(S: number): FunctionDef {
  const [P, LEN, N, I, Q] = [0, 1, 2, 3, 4];
  const ACC = [5, 6, 7, 8];
  const body: number[] = [...op.i32Const(0), ...op.localSet(I), ...op.localGet(P), ...op.localSet(Q), ...op.loop];
  for (let s = 0; s < S; s++) for (let c = 0; c < 4; c++) {
    body.push(...op.localGet(ACC[c]), ...op.localGet(Q));
    if (s > 0) body.push(...op.localGet(LEN), ...op.i32Const(s), ...op.i32Mul, ...op.i32Add);
    body.push(...op.v128Load(16 * c), ...op.f32x4Add, ...op.localSet(ACC[c]));
  }
  body.push(...op.localGet(Q), ...op.i32Const(64), ...op.i32Add, ...op.localSet(Q));
  body.push(...op.localGet(I), ...op.i32Const(1), ...op.i32Add, ...op.localTee(I), ...op.localGet(N), ...op.i32GeU, ...op.i32Eqz, ...op.brIf(0), ...op.end);
  body.push(...op.localGet(P), ...op.localGet(ACC[0]), ...op.localGet(ACC[1]), ...op.f32x4Add, ...op.localGet(ACC[2]), ...op.f32x4Add, ...op.localGet(ACC[3]), ...op.f32x4Add, ...op.v128Store(0));
  return { name: `r${S}`, params: [I32, I32, I32], results: [], locals: [I32, I32, V128, V128, V128, V128], body };
}
const bytes = emitModule([reader(1), reader(4)], 65536);
const TOTAL = 512 * 2 ** 20;
if (isMainThread) {
  const memory = new WebAssembly.Memory({ initial: 9000, maximum: 65536, shared: true });
  new Uint8Array(memory.buffer).fill(1, 0, TOTAL + 2 ** 20);
  const ex = (await WebAssembly.instantiate(bytes, { env: { memory } })).instance.exports as any;
  const flag = new Int32Array(new SharedArrayBuffer(16));
  const w = new Worker(new URL(import.meta.url), { workerData: { memory, flag }, execArgv: process.execArgv });
  await new Promise((r) => w.once("message", r));
  for (const S of [1, 4]) for (let round = 0; round < 3; round++) {
    const len = TOTAL / S;
    let t0 = performance.now(); ex[`r${S}`](1 << 20, len, len / 64); const one = TOTAL / (performance.now() - t0) / 1e6;
    // two threads: each half
    const half = TOTAL / 2, hl = half / S;
    Atomics.store(flag, 1, S); Atomics.add(flag, 0, 1); Atomics.notify(flag, 0);
    t0 = performance.now(); ex[`r${S}`]((1 << 20), hl, hl / 64);
    while (Atomics.load(flag, 2) !== Atomics.load(flag, 0)) {}
    const two = TOTAL / (performance.now() - t0) / 1e6;
    console.log(`S=${S}: one thread ${one.toFixed(1)} GB/s, two threads ${two.toFixed(1)} GB/s`);
  }
  w.terminate();
} else {
  const { memory, flag } = workerData;
  const ex = (await WebAssembly.instantiate(bytes, { env: { memory } })).instance.exports as any;
  parentPort!.postMessage("ready");
  let seen = 0;
  for (;;) {
    Atomics.wait(flag, 0, seen); seen = Atomics.load(flag, 0);
    const S = Atomics.load(flag, 1); const hl = TOTAL / 2 / S;
    ex[`r${S}`]((1 << 20) + TOTAL / 2, hl, hl / 64);
    Atomics.store(flag, 2, seen);
  }
}
