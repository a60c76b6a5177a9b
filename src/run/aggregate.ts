import type { OpEntry } from "../clock/clock.ts";
import type { LayerRecord, OpRecord } from "./record.ts";

/** The kind an entry is reported under: the op, with a matmul's role ("matmul(qkv)"). */
export function opKind(e: OpEntry): string {
  return e.role === "" ? e.op : `${e.op}(${e.role})`;
}

/** Calls, cycles and time per op kind, most cycles first (then most time). */
export function opTable(entries: readonly OpEntry[]): OpRecord[] {
  const byKind = new Map<string, OpRecord>();
  for (const e of entries) {
    const kind = opKind(e);
    const row = byKind.get(kind) ?? { op: kind, kernel: "", calls: 0, cycles: 0, bytes: 0, ms: 0 };
    if (e.kernel !== "") row.kernel = joinKernels(row.kernel, e.kernel);
    row.calls++;
    row.cycles += e.cycles;
    row.bytes += e.bytes;
    row.ms += (e.endNs - e.startNs) / 1e6;
    byKind.set(kind, row);
  }
  return [...byKind.values()].sort((a, b) => b.cycles - a.cycles || b.ms - a.ms);
}

/** Nanoseconds per cycle of each op kind that does counted work. */
export function cycleTimes(entries: readonly OpEntry[]): Record<string, number> {
  const times: Record<string, number> = {};
  for (const row of opTable(entries)) if (row.cycles > 0) times[row.op] = (row.ms * 1e6) / row.cycles;
  return times;
}

/** The article's processing delay in ms: Σ over op kinds of cycles × cycle time. */
export function predictedMs(entries: readonly OpEntry[], nsPerCycle: Record<string, number>): number {
  let ns = 0;
  for (const row of opTable(entries)) ns += row.cycles * (nsPerCycle[row.op] ?? 0);
  return ns / 1e6;
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
  const [family, ...names] = list.split(" ");
  const parts = names.join(" ").split(" + ");
  const [kFamily, ...kName] = kernel.split(" ");
  const name = kFamily === family ? kName.join(" ") : kernel;
  return parts.includes(name) || list === kernel ? list : `${list} + ${name}`;
}
