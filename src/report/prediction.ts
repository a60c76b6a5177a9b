import type { PredictionRecord } from "../run/predict-only.ts";
import { byteSize, cycles, ms, nsPerCycle, perByte, rate, table, withCommas } from "./format.ts";

/** generate.ts --predict-only's report for a 100-column terminal: the prediction, nothing measured. */
export function predictionReport(r: PredictionRecord): string {
  const m = r.model;
  const s = r.settings;
  const mp = r.machine;
  const out: string[] = [];
  out.push(`${m.name ?? "GPT-2"} · ${m.nLayer} layers, ${m.nHead} heads, d=${m.nEmbd}, context ${m.nPositions}, vocabulary ${m.vocabSize}, ${(m.parameters / 1e6).toFixed(1)}M parameters`);
  out.push(`PREDICTED ONLY: no weights loaded, nothing generated · ${s.dtype} weights · kernel ${s.kernel} · ${s.threads} thread${s.threads === 1 ? "" : "s"}`);
  out.push(`prompt ${r.promptIds.length} tokens · ${r.maxNewTokens} new tokens (the prompt's pass picks the first)`);
  const source = mp.source === "file" ? `another machine's profile (${mp.path})` : `this machine's profile, ${mp.source === "cache" ? "cached" : "measured now"}`;
  out.push(`machine: ${mp.cpu}, ${mp.cores} cores, ${mp.runtime}, ${mp.threads} thread${mp.threads === 1 ? "" : "s"} · ${source}`);
  const times = (f: number | undefined) => (f === undefined ? "" : ` (×${f.toFixed(2)})`);
  out.push(`memory roof ${byteSize(mp.memoryBytesPerSec)}/s${times(mp.drift?.memory)} · compute roof ${rate(mp.computeCyclesPerSec, "cycles")}${times(mp.drift?.compute)} · calls${times(mp.drift?.calls) || " as profiled"}`);
  out.push(mp.drift === null ? "read for this model from the profile's ladder" : "read for this model from the profile's ladder, rescaled by a calibration at its nearest rung's width");
  if (mp.extrapolated !== null) out.push(`extrapolated: ${mp.extrapolated}`);
  out.push("", "Stages — the article's \"encoder\" is our prefill of the prompt, its \"decoder\" our decode loop");
  out.push(table(
    ["stage", "tokens", "cycles", "bytes", "cyc/B", "ns/cyc", "predicted", "bound"],
    r.stages.map((x) => [x.name, withCommas(String(x.tokens)), cycles(x.cycles), byteSize(x.bytes), perByte(x.cycles, x.bytes), nsPerCycle(x.predictedMs, x.cycles), ms(x.predictedMs), x.bound]),
  ));
  out.push(`decode: ${ms(r.decodeMsPerToken)} per token, ${r.decodeTokensPerSec.toFixed(1)} tokens/s`);
  out.push("", "Ops — every primitive call the generation would make, most cycles first");
  out.push(table(
    ["op", "calls", "cycles", "bytes", "cyc/B", "predicted", "bound"],
    r.ops.map((o) => [o.op, withCommas(String(o.calls)), cycles(o.cycles), byteSize(o.bytes), perByte(o.cycles, o.bytes), ms(o.predictedMs), o.bound]),
  ));
  return out.join("\n");
}
