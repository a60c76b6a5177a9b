import { isWeightProduct, stageBound } from "../run/aggregate.ts";
import { STAGES, STOP_REASONS, type RunRecord } from "../run/record.ts";
import { byteSize, cycles, fitColumn, mib, ms, nsPerCycle, perByte, percent, rate, signedPercent, table, withCommas } from "./format.ts";

/** The range of the weight products' fixed costs per call in the profile, in µs. */
function productCalls(r: RunRecord): string {
  const us = Object.entries(r.machine.ops).filter(([kind]) => isWeightProduct(kind)).map(([, c]) => c.callNs / 1e3);
  return us.length === 0 ? "—" : `${Math.min(...us).toFixed(0)}–${Math.max(...us).toFixed(0)} µs`;
}

/**
 * The run as a report for a 100-column terminal. `verbose` adds the per-layer breakdown;
 * `showPath` turns the weights' path into what the user would type (relative to where they are).
 */
export function terminalReport(r: RunRecord, verbose: boolean, showPath: (path: string) => string = (p) => p): string {
  const m = r.model;
  const out: string[] = [];
  const weights = r.weights === "random" ? "RANDOM (seeded; the text is noise, the cycles and times are real)" : showPath(m.path);
  const s = r.sampling;
  out.push(`${m.name ?? "GPT-2"} · ${m.nLayer} layers, ${m.nHead} heads, d=${m.nEmbd}, context ${m.nPositions}, vocabulary ${m.vocabSize}, ${(m.parameters / 1e6).toFixed(1)}M parameters`);
  out.push(`weights ${weights}`);
  out.push(`${r.runtime.name} ${r.runtime.version}${r.runtime.relaxedSimd ? " · relaxed SIMD" : ""} · kernel ${r.kernel} · ${r.threads} thread${r.threads === 1 ? "" : "s"} · ${s.doSample ? `sampling: temperature ${s.temperature}, top-k ${s.topK || "off"}, top-p ${s.topP}, seed ${s.seed}` : "greedy"}`);
  out.push(r.sequences === undefined
    ? `prompt ${r.promptIds.length} tokens · generated ${r.generatedIds.length} (${STOP_REASONS[r.stopReason]})`
    : `prompt ${r.promptIds.length} tokens · ${r.sequences.length} sequences, ${r.sequences.reduce((n, q) => n + q.generatedIds.length, 0)} tokens generated in all`);
  out.push("", "Stages — the article's four; GPT-2 is decoder-only, so its \"encoder\" is our prefill of the");
  out.push("prompt and its \"decoder\" our token-by-token decode loop");
  out.push(table(
    ["stage", "article", "start (Unix ms)", "duration", "cycles", "cycles/s"],
    r.stages.map((s) => [
      s.name,
      STAGES.find((x) => x.name === s.name)!.article,
      s.startUnixMs.toFixed(3),
      ms(s.durationMs),
      cycles(s.cycles),
      s.cycles > 0 ? rate((s.cycles * 1000) / s.durationMs, "") : "—",
    ]),
    2,
  ));

  out.push("", `Ops — every primitive call of the run, most cycles first (${r.weights === "random" ? "random weights" : "file weights"})`);
  const opHeader = ["op", "kernel", "calls", "cycles", "bytes", "cyc/B", "time", "ns/cyc"];
  const opRows = r.ops.map((o) => [o.op, o.kernel, withCommas(String(o.calls)), cycles(o.cycles), byteSize(o.bytes), perByte(o.cycles, o.bytes), ms(o.ms), nsPerCycle(o.ms, o.cycles)]);
  const kernelsCut = fitColumn(opHeader, opRows, 1, 100);
  out.push(table(opHeader, opRows, 2));
  if (kernelsCut) out.push("(…: kernel names cut to fit; --json and --report name them all)");

  const mp = r.machine;
  const forOther = mp.source === "file";
  out.push("", "The article's formula, predicting — processing delay = Σ cycle_time × cycles, where an op's");
  out.push("cycle time is the roofline's: (call + max(cycles ÷ compute roof, bytes ÷ memory roof)) ÷ cycles");
  out.push("(a weight product on many rows takes the two one after the other: + for max)");
  const source = mp.source === "cache" ? "profile cached" : mp.source === "measured" ? "profile measured now" : "";
  out.push(`${forOther ? `PREDICTED FOR ANOTHER MACHINE (${mp.path}): ` : "machine: "}${mp.cpu}, ${mp.cores} cores, ${mp.runtime}, ${mp.threads} thread${mp.threads === 1 ? "" : "s"}${source === "" ? "" : ` · ${source}`}`);
  const times = (f: number | undefined) => (f === undefined ? "" : ` (×${f.toFixed(2)})`);
  out.push(`memory roof ${byteSize(mp.memoryBytesPerSec)}/s${times(mp.drift?.memory)} · compute roof ${rate(mp.computeCyclesPerSec, "cycles")}${times(mp.drift?.compute)}`);
  out.push(`product calls ${productCalls(r)}${times(mp.drift?.calls)}${mp.drift ? " · (×): the warm-up's remeasure of the profile's" : ""}`);
  out.push(table(
    ["stage", "cycles", "bytes", "cyc/B", "ns/cyc", "predicted", forOther ? "measured here" : "measured", "error", "bound"],
    r.stages.filter((s) => s.cycles > 0).map((s) => [s.name, cycles(s.cycles), byteSize(s.bytes), perByte(s.cycles, s.bytes), nsPerCycle(s.predictedMs, s.cycles), ms(s.predictedMs), ms(s.durationMs), signedPercent((100 * (s.predictedMs - s.durationMs)) / s.durationMs), stageBound(r.opsByStage[s.name] ?? [])]),
  ));

  if (verbose) {
    out.push("", "Cycle time per op kind and stage — measured, and the roofline's at the op's intensity");
    out.push(table(
      ["op", "stage", "calls", "cyc/B", "ns/cyc", "predicted", "time", "predicted", "bound"],
      (["prefill", "decode"] as const).flatMap((stage) => (r.opsByStage[stage] ?? []).map((o) => [
        o.op, stage, withCommas(String(o.calls)), perByte(o.cycles, o.bytes), nsPerCycle(o.ms, o.cycles), nsPerCycle(o.predictedMs, o.cycles), ms(o.ms), ms(o.predictedMs), o.bound,
      ])),
      2,
    ));
    const p = r.parallel;
    out.push("", `Threads: ${r.threads} · barriers (all threads wait): ${withCommas(String(p.prefillBarriers))} in the prompt's pass, ${p.barriersPerToken.toFixed(0)} per token`);
    out.push(`Decode steps restored from the steps before them, not recorded: ${p.restoredPasses} of ${p.passes - 1}`);
    const layerMs = r.layers.reduce((s, l) => s + l.ms, 0);
    out.push("", "Layers — all stages");
    out.push(table(["layer", "cycles", "time", "% of block time"], r.layers.map((l) => [`h.${l.layer}`, cycles(l.cycles), ms(l.ms), percent(l.ms, layerMs)])));
  }

  const t = r.totals;
  out.push("", "Totals");
  out.push(`load ${ms(t.loadMs)} · sampling ${ms(t.samplingMs)} · peak RSS ${mib(t.peakRssBytes)}`);
  if (r.parallel.alonePasses > 0) {
    out.push(`${r.parallel.alonePasses} of ${r.parallel.passes} passes ran on 1 thread of ${r.threads}: with the cores as busy as they were, that was faster`);
  }
  out.push(`prefill  ${String(r.promptIds.length).padStart(4)} tokens in ${ms(t.prefillMs).padStart(10)}  ${ms(t.prefillMsPerToken).padStart(10)}/token  ${t.prefillTokensPerSec.toFixed(1).padStart(7)} tokens/s`);
  const batch = r.sequences === undefined ? "" : ` (${r.sequences.length} sequences in ${r.steps.length - 1} batched steps, ${ms(t.decodeMs / Math.max(1, r.steps.length - 1))}/step)`;
  out.push(`decode   ${String(t.decodeTokens).padStart(4)} tokens in ${ms(t.decodeMs).padStart(10)}  ${ms(t.decodeMsPerToken).padStart(10)}/token  ${t.decodeTokensPerSec.toFixed(1).padStart(7)} tokens/s${batch}`);
  for (const [i, q] of (r.sequences ?? []).entries()) {
    out.push(`  sequence ${String(i + 1).padStart(2)}  seed ${q.seed}  ${String(q.generatedIds.length).padStart(4)} tokens (${STOP_REASONS[q.stopReason]})  ${q.decodeTokensPerSec.toFixed(1).padStart(7)} tokens/s`);
  }
  out.push(`cycles ${cycles(t.cycles)} in all, of which ${cycles(t.macs)} multiply-accumulates in matmul-type ops (${percent(t.macs, t.cycles)})`);
  return out.join("\n");
}
