import type { Clock, OpEntry } from "../clock/clock.ts";
import { opKind } from "../run/aggregate.ts";
import { STAGES, type RunRecord } from "../run/record.ts";

/*
 * The run in Chrome's Trace Event Format, which Perfetto (ui.perfetto.dev) and chrome://tracing
 * open: complete events ("X", ts and dur in µs) nested stage ⊃ token ⊃ layer ⊃ op, one thread
 * per generated sequence, and a counter track of cumulative cycles.
 */

interface TraceEvent {
  name: string;
  ph: "X" | "C" | "M";
  ts?: number;
  dur?: number;
  pid: number;
  tid?: number;
  cat?: string;
  args?: Record<string, unknown>;
}

/** Contiguous runs of entries that share a key (a layer, a token). */
function runsBy(entries: readonly OpEntry[], key: (e: OpEntry) => number): OpEntry[][] {
  const runs: OpEntry[][] = [];
  for (const e of entries) {
    const last = runs[runs.length - 1];
    if (last !== undefined && key(last[0]) === key(e)) last.push(e);
    else runs.push([e]);
  }
  return runs;
}

export function chromeTrace(runs: readonly { record: RunRecord; clock: Clock }[]): { traceEvents: TraceEvent[]; displayTimeUnit: "ms" } {
  const events: TraceEvent[] = [{ name: "process_name", ph: "M", pid: 1, args: { name: "gpt2-cycles generate" } }];
  const base = Math.min(...runs.map((r) => r.clock.originUnixMs));
  runs.forEach(({ record, clock }, index) => {
    const tid = index + 1;
    const us = (ns: number) => (clock.originUnixMs - base) * 1000 + ns / 1000;
    const span = (name: string, cat: string, startNs: number, endNs: number, args: Record<string, unknown>) =>
      events.push({ name, cat, ph: "X", ts: us(startNs), dur: (endNs - startNs) / 1000, pid: 1, tid, args });
    events.push({ name: "thread_name", ph: "M", pid: 1, tid, args: { name: `sequence ${tid}` } });

    for (const s of clock.stages) {
      const article = STAGES.find((x) => x.name === s.name)?.article ?? "";
      span(`${s.name} (${article})`, "stage", s.startNs, s.endNs, { cycles: s.cycles, startUnixMs: clock.unixMs(s.startNs) });
    }
    for (const token of runsBy(clock.entries.filter((e) => e.step >= 0), (e) => e.step)) {
      const step = token[0].step;
      const { id, context, cycles } = record.steps[step];
      span(`token ${step}`, "token", token[0].startNs, token[token.length - 1].endNs, { id, context, cycles });
      for (const layer of runsBy(token, (e) => e.layer)) {
        if (layer[0].layer < 0) continue;
        span(`h.${layer[0].layer}`, "layer", layer[0].startNs, layer[layer.length - 1].endNs, { cycles: layer.reduce((sum, e) => sum + e.cycles, 0) });
      }
    }
    let cumulative = 0;
    for (const e of clock.entries) {
      span(opKind(e), "op", e.startNs, e.endNs, { inputs: e.inputs, output: e.output, cycles: e.cycles, bytes: e.bytes, layer: e.layer, stage: e.stage });
      cumulative += e.cycles;
      events.push({ name: `cycles, sequence ${tid}`, ph: "C", ts: us(e.endNs), pid: 1, args: { cycles: cumulative } });
    }
  });
  return { traceEvents: events, displayTimeUnit: "ms" };
}
