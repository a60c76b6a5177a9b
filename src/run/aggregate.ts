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
    const row = byKind.get(kind) ?? { op: kind, calls: 0, cycles: 0, ms: 0 };
    row.calls++;
    row.cycles += e.cycles;
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
  const rows = Array.from({ length: nLayer }, (_, layer) => ({ layer, cycles: 0, ms: 0 }));
  for (const e of entries) {
    if (e.layer < 0) continue;
    rows[e.layer].cycles += e.cycles;
    rows[e.layer].ms += (e.endNs - e.startNs) / 1e6;
  }
  return rows;
}
