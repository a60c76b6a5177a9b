// Every matmul kernel the bench times, as "configs": a kernel, a thread count, a weight dtype,
// and a setup that lays B out the way that kernel reads it (copies of it, to time streaming).
import { KERNELS } from "../src/kernels/engine.ts";
import { PackedMatrix, type WeightDtype } from "../src/kernels/packed-matrix.ts";
import { type Plan, kernel as kernelRef } from "../src/kernels/plan.ts";
import type { ThreadTeam } from "../src/kernels/threads.ts";
import { simdKernelLabel } from "../src/kernels/simd.ts";
import { Tensor } from "../src/tensor/tensor.ts";
import { PANEL } from "../src/wasm/kernels.ts";
import type { RelaxedDot } from "../src/wasm/q8-kernels.ts";
import { type WasmFunction, WasmHeap, relaxedAvailable, relaxedDotForms, simdAvailable } from "../src/wasm/runtime.ts";
import { activationBytes, paddedK, quantizeActivations } from "../src/kernels/q8.ts";

/** Runs out = a × B[copy]; `out` is row-major [M,N]. */
export type Runner = (a: Float32Array, out: Float32Array, copy: number) => void;

export interface Config {
  kernel: string;
  threads: number;
  dtype: WeightDtype;
  /** `prepared` shares B's layouts between the configs of one shape. */
  setup(b: Tensor, copies: number, prepared: Map<string, unknown>): Runner;
}

function once<T>(prepared: Map<string, unknown>, key: string, make: () => T): T {
  if (!prepared.has(key)) prepared.set(key, make());
  return prepared.get(key) as T;
}

/** The WebAssembly memory the SIMD configs run on (the workers instantiate their kernels on it too). */
export const heap = new WasmHeap();

/** One region of the heap, reused shape after shape. */
class Arena {
  private base = 0;
  private size = 0;
  private used = 0;
  reset(bytes: number): void {
    if (bytes > this.size) {
      this.size = bytes;
      this.base = heap.allocate(bytes);
    }
    this.used = 0;
  }
  take(bytes: number): number {
    const at = this.base + Math.ceil(this.used / 16) * 16;
    this.used = at - this.base + bytes;
    if (this.used > this.size) throw new Error("bench arena overflow");
    return at;
  }
}

export const arena = new Arena();

function tsConfig(name: string): Config {
  const kernel = KERNELS.find((k) => k.name === name)!;
  const fn = kernel.fn!;
  return {
    kernel: name, threads: 1, dtype: "f32",
    setup(b, copies, prepared) {
      const [k, n] = b.shape;
      const layouts = once(prepared, kernel.layout, () => Array.from({ length: copies }, () => {
        if (kernel.layout === "panels") return PackedMatrix.pack(b, 4, "f32").data as Float32Array;
        if (kernel.layout === "transposed") {
          const t = new Float32Array(k * n);
          for (let p = 0; p < k; p++) for (let j = 0; j < n; j++) t[j * k + p] = b.data[p * n + j];
          return t;
        }
        return b.data.slice();
      }));
      return (a, out, c) => fn(a, layouts[c], out, a.length / k, k, n, 0, n);
    },
  };
}

/**
 * The engine's thread team and the one plan every two-thread config records into: the team
 * keeps the functions its workers were sent by their index in that plan's table, which only
 * grows (a plan of each config's own would reuse index 0 for another kernel). Each call is a
 * pass, as the engine runs one — begun (counters cleared), recorded, published, run: without the
 * beginning, every two-thread config after the first found its one node's chunks already taken,
 * ran nothing, and was timed doing so.
 */
export interface TeamPlan {
  team: ThreadTeam;
  plan: Plan;
}

function simdConfig(relaxed: boolean, dot: RelaxedDot | null, dtype: WeightDtype, threads: number, { team, plan }: TeamPlan): Config {
  const name: WasmFunction = `matmul_${dtype}`;
  return {
    kernel: simdKernelLabel(name, relaxed, dot), threads, dtype,
    setup(b, copies, prepared) {
      const [k, n] = b.shape;
      const module = heap.kernelsFor(k, relaxed, dot);
      const ldo = Math.ceil(n / PANEL) * PANEL;
      const weights = once(prepared, `simd/${dtype}`, () => Array.from({ length: copies }, () => PackedMatrix.pack(b, PANEL, dtype, (count, t) => {
        const at = arena.take(count * (t === "f32" ? 4 : t === "bf16" ? 2 : 1));
        return t === "f32" ? heap.f32View(at, count) : t === "bf16" ? heap.u16View(at, count) : heap.i8View(at, count);
      }).data.byteOffset));
      const f = module.exports[name];
      const kp = paddedK(k);
      // Two threads: the product as a one-call plan, run as a region of the engine's thread team.
      const ref = kernelRef(module, name);
      return (a, out, c) => {
        const m = a.length / k;
        const [aAt, outAt] = once(prepared, `scratch/${m}`, () => [arena.take(4 * m * k), arena.take(4 * m * ldo)] as [number, number]);
        const [qAt] = once(prepared, `q8 scratch/${m}`, () => [dtype === "q8" ? arena.take(activationBytes(m, k)) : 0]);
        const [scalesAt, sumsAt, blocks] = [qAt + m * kp, qAt + m * kp + (4 * m * kp) / 32, (m * kp) / 32];
        heap.f32View(aAt, m * k).set(a);
        // q8: the activations are quantized on every call, as the engine does (part of the product's cost)
        if (dtype === "q8" && k === kp) heap.smallOps().exports.quantize(aAt, qAt, scalesAt, sumsAt, blocks);
        else if (dtype === "q8") quantizeActivations(a, m, k, heap.i8View(qAt, m * kp), heap.f32View(scalesAt, blocks), heap.i32View(sumsAt, blocks));
        const input = dtype === "q8" ? qAt : aAt;
        if (threads > 1) {
          // as the engine records a pass: the last region left, the counters cleared
          team.beginPass(plan);
          plan.clear();
          plan.kernel(plan.functionIndex(ref), [input, weights[c], outAt, m, ldo], { kind: "range", units: ldo / PANEL, scale: PANEL, work: m * k * ldo }, [], [], threads);
          team.publish(plan);
          team.run(plan);
        } else f(input, weights[c], outAt, m, ldo, 0, ldo);
        const result = heap.f32View(outAt, m * ldo);
        for (let i = 0; i < m; i++) out.set(result.subarray(i * ldo, i * ldo + n), i * n);
      };
    },
  };
}

/** Every config for a product. */
export function configsFor(team: TeamPlan): Config[] {
  const configs: Config[] = KERNELS.filter((k) => k.fn !== null).map((k) => tsConfig(k.name));
  if (!simdAvailable) return configs;
  for (const threads of [1, 2]) {
    for (const dtype of ["f32", "bf16", "q8"] as WeightDtype[]) {
      configs.push(simdConfig(false, null, dtype, threads, team));
      if (dtype === "q8") for (const dot of relaxedDotForms()) configs.push(simdConfig(true, dot, dtype, threads, team));
      else if (relaxedAvailable()) configs.push(simdConfig(true, null, dtype, threads, team));
    }
  }
  return configs;
}
