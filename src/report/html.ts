import { STAGES, STOP_REASONS, type RunRecord } from "../run/record.ts";
import { byteSize, cycles, mib, ms, nsPerCycle, perByte, percent, signedPercent, withCommas } from "./format.ts";
import { escapeXml as esc, groupedBars, legend, lineChart, roofline, stackedBars, timeline } from "./svg.ts";
import { stageBound } from "../run/aggregate.ts";

/*
 * One self-contained HTML file: no scripts, fonts, styles or images from anywhere else; the
 * charts are inline SVG drawn by svg.ts. Every figure comes from the run record.
 */

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac", "#86bcb6", "#d37295", "#8cd17d", "#a0cbe8", "#ffbe7d"];
export const STAGE_COLORS: Record<string, string> = { preprocess: "#bab0ac", prefill: "#4e79a7", decode: "#f28e2b", postprocess: "#9c755f" };

/** The report's look; the playground page wears it too. */
export const REPORT_CSS = `
:root { color-scheme: light; --ink: #1d2433; --muted: #5b6475; --line: #d9dde5; }
* { box-sizing: border-box; }
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--ink); margin: 0 auto; max-width: 1000px; padding: 24px; }
h1 { font-size: 1.6em; margin: 0 0 4px; } h2 { font-size: 1.2em; margin: 32px 0 8px; border-bottom: 1px solid var(--line); padding-bottom: 4px; }
p.lead, .muted { color: var(--muted); }
.badge { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: .85em; background: #e8f0e8; }
.badge.random { background: #fde2e1; color: #8a1c1c; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(150px, 1fr)); gap: 10px; margin: 16px 0; }
.card { border: 1px solid var(--line); border-radius: 8px; padding: 8px 12px; }
.card b { display: block; font-size: 1.3em; } .card span { color: var(--muted); font-size: .85em; }
pre.text { white-space: pre-wrap; word-break: break-word; background: #f6f7f9; border-radius: 6px; padding: 10px 12px; }
pre.text .prompt { color: var(--muted); }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: .9em; }
th, td { text-align: right; padding: 3px 8px; border-bottom: 1px solid var(--line); } th:first-child, td:first-child, .text-col { text-align: left; }
th { font-weight: 600; color: var(--muted); }
svg { width: 100%; height: auto; font-size: 11px; fill: var(--ink); }
svg .grid { stroke: #eceef2; } svg .axis { stroke: #8a93a3; } svg .label { font-size: 12px; fill: var(--muted); } svg .small { font-size: 10px; fill: var(--muted); }
.legend { list-style: none; padding: 0; margin: 4px 0 0; display: flex; flex-wrap: wrap; gap: 4px 14px; font-size: .85em; }
.legend span { display: inline-block; width: 10px; height: 10px; margin-right: 5px; border-radius: 2px; }
@media print { body { max-width: none; padding: 0; font-size: 10pt; } section, figure { break-inside: avoid; } }
figure { margin: 0 0 12px; } figcaption { color: var(--muted); font-size: .85em; }
`;

function opColors(r: RunRecord): Map<string, string> {
  return new Map(r.ops.map((o, i) => [o.op, PALETTE[i % PALETTE.length]]));
}

function section(r: RunRecord, title: string): string {
  const t = r.totals;
  const colors = opColors(r);
  const runStart = r.stages[0].startUnixMs;
  const stageInfo = (name: string) => STAGES.find((s) => s.name === name)!;

  const cards = [
    ["total cycles", cycles(t.cycles)], ["multiply-accumulates", cycles(t.macs)],
    ["prefill", `${t.prefillTokensPerSec.toFixed(1)} tokens/s`], ["decode", `${t.decodeTokensPerSec.toFixed(1)} tokens/s`],
    ["load", ms(t.loadMs)], ["peak RSS", t.peakRssBytes > 0 ? mib(t.peakRssBytes) : "n/a in a page"],
  ].map(([k, v]) => `<div class="card"><span>${esc(k)}</span><b>${esc(v)}</b></div>`).join("");

  const stageRows = r.stages.map((s) => `<tr><td>${s.name}</td><td class="text-col">${esc(stageInfo(s.name).article)}</td><td>${s.startUnixMs.toFixed(3)}</td><td>${ms(s.durationMs)}</td><td>${cycles(s.cycles)}</td></tr>`).join("");
  const stagesChart = timeline(r.stages.map((s) => ({
    label: `${s.name} (${stageInfo(s.name).article})`,
    detail: `${ms(s.durationMs)}, ${cycles(s.cycles)} cycles`,
    startMs: s.startUnixMs - runStart,
    durationMs: s.durationMs,
    color: STAGE_COLORS[s.name],
  })), "The four stages on a timeline");

  const shareRows = (["prefill", "decode"] as const).flatMap((stage) => {
    const ops = r.opsByStage[stage] ?? [];
    const totalCycles = ops.reduce((s, o) => s + o.cycles, 0);
    const totalMs = ops.reduce((s, o) => s + o.ms, 0);
    if (ops.length === 0) return [];
    return [
      { label: `${stage}: cycles`, segments: ops.map((o) => ({ label: o.op, color: colors.get(o.op)!, fraction: totalCycles > 0 ? o.cycles / totalCycles : 0 })) },
      { label: `${stage}: time`, segments: ops.map((o) => ({ label: o.op, color: colors.get(o.op)!, fraction: totalMs > 0 ? o.ms / totalMs : 0 })) },
    ];
  });

  const decodeSteps = r.steps.slice(1);
  const perTokenChart = (values: (s: RunRecord["steps"][number]) => number, yLabel: string, color: string, caption: string) =>
    `<figure>${lineChart([{ label: yLabel, color, points: decodeSteps.map((s) => [s.context, values(s)]) }], "context length (positions)", yLabel, `${yLabel} against context length`)}<figcaption>${caption}</figcaption></figure>`;
  const perToken = decodeSteps.length > 1
    ? perTokenChart((s) => s.cycles / s.rows / 1e6, "cycles per token (M)", "#4e79a7", "All cycles of each decode step: nearly flat, because the weight matmuls (12·d² per layer and d·V for the head) do not depend on the context.") +
      perTokenChart((s) => s.attentionCycles / s.rows / 1e3, "attention cycles per token (k)", "#e15759", "Of those, attention's scores and values: 2·d·t per layer, growing with every position the new token attends to.") +
      `<figure>${lineChart([
        { label: "measured", color: "#f28e2b", points: decodeSteps.map((s) => [s.context, s.ms]) },
        { label: "predicted", color: "#76b7b2", points: decodeSteps.map((s) => [s.context, s.predictedMs]) },
      ], "context length (positions)", "milliseconds per token", "Predicted and measured milliseconds per token against context length")}${legend([{ label: "measured", color: "#f28e2b" }, { label: "predicted (roofline)", color: "#76b7b2" }])}<figcaption>Time per decode step (the forward pass; the prediction adds the profile's time between ops and for picking the token). Spikes the prediction does not have are pauses: a collection, or a neighbour on the other core.</figcaption></figure>`
    : `<p class="muted">Fewer than two decode steps: nothing to plot.</p>`;

  const formulaStages = r.stages.filter((s) => s.cycles > 0);
  const formulaChart = groupedBars(formulaStages.map((s) => s.name), [
    { label: "predicted", color: "#76b7b2", values: formulaStages.map((s) => s.predictedMs) },
    { label: "measured", color: "#4e79a7", values: formulaStages.map((s) => s.durationMs) },
  ], "milliseconds", "Predicted and measured delay per stage");
  const formulaRows = formulaStages.map((s) => `<tr><td>${s.name}</td><td>${cycles(s.cycles)}</td><td>${byteSize(s.bytes)}</td><td>${perByte(s.cycles, s.bytes)}</td><td>${((s.predictedMs * 1e6) / s.cycles).toFixed(3)}</td><td>${ms(s.predictedMs)}</td><td>${ms(s.durationMs)}</td><td>${signedPercent((100 * (s.predictedMs - s.durationMs)) / s.durationMs)}</td><td>${stageBound(r.opsByStage[s.name] ?? [])}</td></tr>`).join("");
  const mp = r.machine;
  const rooflinePoints = (["prefill", "decode"] as const).flatMap((stage) => (r.opsByStage[stage] ?? []).filter((o) => o.cycles > 0 && o.bytes > 0 && o.ms > 0).map((o) => ({
    label: `${o.op.replace(/^matmul\((.*)\)$/, "$1")} · ${stage}`, color: STAGE_COLORS[stage], x: o.cycles / o.bytes, y: (o.cycles * 1000) / o.ms,
  })));
  // (roofs a warm-up could not measure are not drawn)
  const drawable = rooflinePoints.length > 0 && [mp.memoryBytesPerSec, mp.computeCyclesPerSec].every((v) => v > 0 && v < Infinity);
  const rooflineChart = drawable ? `<figure>${roofline({ bytesPerSec: mp.memoryBytesPerSec, cyclesPerSec: mp.computeCyclesPerSec }, rooflinePoints, "Roofline: each op kind per stage, as measured")}${legend([{ label: "prefill", color: STAGE_COLORS.prefill }, { label: "decode", color: STAGE_COLORS.decode }])}<figcaption>The roofs are ${mp.source === "file" ? `another machine's (${esc(mp.path)})` : mp.drift ? `this machine's profile, rescaled to what the warm-up measured (memory ×${mp.drift.memory.toFixed(2)}, compute ×${mp.drift.compute.toFixed(2)})` : "this machine's profile"}: ${byteSize(mp.memoryBytesPerSec)}/s streaming weights, ${(mp.computeCyclesPerSec / 1e9).toFixed(1)} Gcycles/s for a product that reuses them. A one-row decode product reads each weight for one multiply-accumulate (0.25 cycles per fp32 byte) and sits on the slanted memory roof; the prefill's products reuse each weight for every prompt row and reach the flat compute roof. The small ops sit far below both: their cost is the call and scalar code, not the hardware.</figcaption></figure>` : "";

  const totalMs = r.ops.reduce((s, o) => s + o.ms, 0);
  const opRows = r.ops.map((o) => `<tr><td><span style="color:${colors.get(o.op)}">■</span> ${esc(o.op)}</td><td class="text-col">${esc(o.kernel)}</td><td>${withCommas(String(o.calls))}</td><td>${cycles(o.cycles)}</td><td>${percent(o.cycles, t.cycles)}</td><td>${byteSize(o.bytes)}</td><td>${perByte(o.cycles, o.bytes)}</td><td>${ms(o.ms)}</td><td>${percent(o.ms, totalMs)}</td><td>${nsPerCycle(o.ms, o.cycles)}</td><td>${ms(o.predictedMs)}</td><td class="text-col">${o.bound}</td></tr>`).join("");

  const m = r.model;
  const weights = r.weights === "random" ? `<span class="badge random">random weights — the text is noise; cycles and times are real</span>` : `<span class="badge">weights: ${esc(m.path)}</span>`;
  const prompt = r.prompt ?? `[${r.promptIds.join(", ")}]`;
  return `<section>
<h1>${esc(title)}</h1>
<p class="lead">${esc(m.name ?? "GPT-2")} · ${m.nLayer} layers, ${m.nHead} heads, d=${m.nEmbd}, ${(m.parameters / 1e6).toFixed(1)}M parameters · kernel ${esc(r.kernel)} · ${r.threads} thread${r.threads === 1 ? "" : "s"} · ${r.sampling.doSample ? `sampling, seed ${r.sampling.seed}` : "greedy"} · ${weights}</p>
<pre class="text"><span class="prompt">${esc(prompt)}</span>${esc(r.text)}</pre>
<p class="muted">${r.promptIds.length} prompt tokens, ${r.generatedIds.length} generated (${esc(STOP_REASONS[r.stopReason])}).</p>
<div class="cards">${cards}</div>

<h2>Stages</h2>
<p class="muted">The article's four stages. GPT-2 is decoder-only: its "encoder" is our prefill of the prompt, its "decoder" our token-by-token generation. Start times are Unix timestamps in ms.</p>
${stagesChart}
<table><thead><tr><th>stage</th><th class="text-col">article</th><th>start (Unix ms)</th><th>duration</th><th>cycles</th></tr></thead><tbody>${stageRows}</tbody></table>

<h2>Where the cycles go, and where the time goes</h2>
<p class="muted">Share of each op kind in a stage's cycles and in its time. Matmuls dominate the cycles; the ops with a poor cycle time take a larger share of the time than of the work.</p>
${stackedBars(shareRows, "Cycles and time by op kind, per stage")}
${legend(r.ops.map((o) => ({ label: o.op, color: colors.get(o.op)! })))}

<h2>Per generated token</h2>
${perToken}

<h2>The article's formula, predicting</h2>
<p class="muted">processing delay = Σ cycles × cycle_time, with each op call's cycle time from the roofline of ${r.machine.source === "file" ? `another machine (${esc(r.machine.path)})` : "this machine"}: (call + max(cycles ÷ compute roof, bytes ÷ memory roof)) ÷ cycles; a weight product on many rows takes the two one after the other (+ for max).</p>
<figure>${formulaChart}${legend([{ label: "predicted", color: "#76b7b2" }, { label: "measured", color: "#4e79a7" }])}</figure>
<table><thead><tr><th>stage</th><th>cycles</th><th>bytes</th><th>cycles/byte</th><th>ns/cycle</th><th>predicted</th><th>measured${mp.source === "file" ? " here" : ""}</th><th>error</th><th>bound</th></tr></thead><tbody>${formulaRows}</tbody></table>
${rooflineChart}

<h2>Ops</h2>
<table><thead><tr><th>op</th><th class="text-col">kernel</th><th>calls</th><th>cycles</th><th>% cycles</th><th>bytes</th><th>cycles/byte</th><th>time</th><th>% time</th><th>ns/cycle</th><th>predicted</th><th class="text-col">bound</th></tr></thead><tbody>${opRows}</tbody></table>
<p class="muted">Totals: ${cycles(t.cycles)} cycles, of which ${cycles(t.macs)} multiply-accumulates; prefill ${ms(t.prefillMsPerToken)}/token, decode ${ms(t.decodeMsPerToken)}/token; sampling ${ms(t.samplingMs)}.</p>
</section>`;
}

/** The report for one run, or one section per sequence. */
export function htmlReport(records: readonly RunRecord[]): string {
  const sections = records.map((r, i) => section(r, records.length === 1 ? "GPT-2 inference, op by op" : `Sequence ${i + 1} of ${records.length}`)).join("\n");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>gpt2-cycles report</title><style>${REPORT_CSS}</style></head>
<body>
${sections}
</body></html>
`;
}
