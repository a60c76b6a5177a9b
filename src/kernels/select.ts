import { matmulIkj } from "./ikj.ts";
import { matmulNaive } from "./naive.ts";

export type MatmulKernel = (a: Float32Array, b: Float32Array, out: Float32Array, m: number, k: number, n: number) => void;

export const matmulKernels: Record<string, MatmulKernel> = {
  naive: matmulNaive,
  ikj: matmulIkj,
};

let forced: MatmulKernel | null = null;

/** Pins every matmul to one kernel (null: pick per shape). */
export function forceMatmulKernel(name: string | null): void {
  if (name === null) {
    forced = null;
    return;
  }
  const kernel = matmulKernels[name];
  if (kernel === undefined) throw new Error(`unknown kernel "${name}"; choose one of: ${Object.keys(matmulKernels).join(", ")}`);
  forced = kernel;
}

export function matmulKernelFor(_m: number, _k: number, _n: number): MatmulKernel {
  return forced ?? matmulIkj;
}
