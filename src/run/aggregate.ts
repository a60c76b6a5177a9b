import type { OpEntry } from "../clock/clock.ts";
import type { ModelCosts } from "../profile/machine-profile.ts";
import { boundOf, isVectorCall, predictEntryNs } from "../profile/roofline.ts";
import type { LayerRecord, OpRecord } from "./record.ts";

/** The matmul roles whose work grows with the context: attention's products, which multiply activations. */
export const ATTENTION_ROLES: ReadonlySet<string> = new Set(["attn scores", "attn values"]);

/** Whether an op kind is a product whose B is a weight ("matmul(qkv)", not "matmul(attn scores)"). */
export function isWeightProduct(kind: string): boolean {
  const role = /^matmul\((.*)\)$/.exec(kind)?.[1];
  return role !== undefined && !ATTENTION_ROLES.has(role);
}

/** The kind an entry is reported under: the op, with a matmul's role ("matmul(qkv)"). */
export function opKind(e: OpEntry): string {
  return e.role === "" ? e.op : `${e.op}(${e.role})`;
}

/** Calls, cycles, bytes, time and the roofline's predicted time per op kind, most cycles first (then most time). */
export function opTable(entries: readonly OpEntry[], profile: ModelCosts): OpRecord[] {
  const byKind = new Map<string, OpRecord>();
  const vectorCalls = new Map<string, number>();
  for (const e of entries) {
    const kind = opKind(e);
    const row = byKind.get(kind) ?? { op: kind, kernel: "", calls: 0, cycles: 0, bytes: 0, ms: 0, predictedMs: 0, bound: "call" };
    if (e.kernel !== "") row.kernel = joinKernels(row.kernel, e.kernel);
    row.calls++;
    row.cycles += e.cycles;
    row.bytes += e.bytes;
    row.ms += (e.endNs - e.startNs) / 1e6;
    const vector = isVectorCall(e);
    row.predictedMs += predictEntryNs(profile, e) / 1e6;
    if (vector) vectorCalls.set(kind, (vectorCalls.get(kind) ?? 0) + 1);
    byKind.set(kind, row);
  }
  // A row's bound on the kernel most of its calls ran on.
  for (const row of byKind.values()) row.bound = boundOf(profile, row.op, row.cycles, row.bytes, row.calls, 2 * (vectorCalls.get(row.op) ?? 0) > row.calls);
  return [...byKind.values()].sort((a, b) => b.cycles - a.cycles || b.ms - a.ms);
}

/** The bound that accounts for most of a stage's predicted time (of its op table's rows). */
export function stageBound(ops: readonly OpRecord[]): string {
  const byBound = new Map<string, number>();
  for (const o of ops) byBound.set(o.bound, (byBound.get(o.bound) ?? 0) + o.predictedMs);
  return [...byBound].sort((a, b) => b[1] - a[1])[0]?.[0] ?? "—";
}

/** Cycles and time per transformer block, over the whole run. */
export function layerTable(entries: readonly OpEntry[], nLayer: number): LayerRecord[] {
  const rows = Array.from({ length: nLayer }, (_, layer) => ({ layer, cycles: 0, bytes: 0, ms: 0 }));
  for (const e of entries) {
    if (e.layer < 0) continue;
    rows[e.layer].cycles += e.cycles;
    rows[e.layer].bytes += e.bytes;
    rows[e.layer].ms += (e.endNs - e.startNs) / 1e6;
  }
  return rows;
}

/** "simd matvec" + "simd matmul·fma" → "simd matvec + matmul·fma": each kernel once, the family once. */
function joinKernels(list: string, kernel: string): string {
  if (list === "") return kernel;
  const [first, ...rest] = list.split(" + ");
  const family = first.split(" ")[0];
  const names = [first.slice(family.length + 1), ...rest]; // "" for a bare family ("simd")
  const [kFamily, ...kName] = kernel.split(" ");
  const name = kFamily === family ? kName.join(" ") : kernel;
  return names.includes(name) ? list : `${list} + ${name === "" ? kernel : name}`;
}
