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
const Ss = [1, 4];
const memory = new WebAssembly.Memory({ initial: 16000, maximum: 65536, shared: true });
const ex = (await WebAssembly.instantiate(emitModule(Ss.map(reader), 65536), { env: { memory } })).instance.exports as any;
new Uint8Array(memory.buffer).fill(1, 0, 1000 * 2 ** 20);
for (const MB of [8, 16, 32, 64, 128, 256, 512, 900]) {
  const TOTAL = MB * 2 ** 20; const line: string[] = [`${MB} MB:`];
  for (const S of Ss) {
    const len = TOTAL / S; const n = len / 64;
    for (let r = 0; r < 2; r++) ex[`r${S}`](1024, len, n);
    const reps = Math.max(3, Math.round(2000 / MB));
    const t0 = performance.now();
    for (let r = 0; r < reps; r++) ex[`r${S}`](1024, len, n);
    const ms = (performance.now() - t0) / reps;
    line.push(`S=${S}: ${(TOTAL / ms / 1e6).toFixed(1)} GB/s`);
  }
  console.log(line.join("  "));
}
