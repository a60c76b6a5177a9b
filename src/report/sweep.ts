import { REPORT_CSS } from "./html.ts";
import { byteSize, cycles, ms, signedPercent, table } from "./format.ts";
import { escapeXml as esc, legend, lineChart, type Series } from "./svg.ts";

/*
 * `npm run sweep`'s results: the GPT-2 family's cost per decoded token, size by size and prompt
 * by prompt, as a terminal table and as a self-contained HTML page whose charts put the
 * prediction (dashed, hollow points) beside every measured point.
 */

/** One run of the sweep: a model at one prompt length. */
export interface SweepRow {
  model: string;
  parameters: number;
  prompt: number;
  decodeCyclesPerToken: number;
  decodeBytesPerToken: number;
  predictedMsPerToken: number;
  measuredMsPerToken: number;
  prefillTokensPerSec: number;
}

const COLORS = ["#4e79a7", "#f28e2b", "#e15759", "#59a14f", "#b07aa1", "#76b7b2"];

const errorOf = (r: SweepRow) => (100 * (r.predictedMsPerToken - r.measuredMsPerToken)) / r.measuredMsPerToken;

export function sweepTable(rows: readonly SweepRow[]): string {
  return table(
    ["model", "parameters", "prompt", "cycles/token", "bytes/token", "predicted", "measured", "error", "prefill tok/s"],
    rows.map((r) => [
      r.model, `${(r.parameters / 1e6).toFixed(0)} M`, String(r.prompt), cycles(r.decodeCyclesPerToken), byteSize(r.decodeBytesPerToken),
      ms(r.predictedMsPerToken), ms(r.measuredMsPerToken), signedPercent(errorOf(r)), r.prefillTokensPerSec.toFixed(0),
    ]),
  );
}

/** Rows grouped by `key`, in the order each value first appears, sorted within a group by `x`. */
function groups(rows: readonly SweepRow[], key: (r: SweepRow) => string, x: (r: SweepRow) => number): [string, SweepRow[]][] {
  const out = new Map<string, SweepRow[]>();
  for (const r of rows) out.set(key(r), [...(out.get(key(r)) ?? []), r]);
  return [...out].map(([k, g]) => [k, g.sort((a, b) => x(a) - x(b))]);
}

/** A measured and a predicted series per group, in the group's colour. */
function measuredAndPredicted(grouped: [string, SweepRow[]][], x: (r: SweepRow) => number): Series[] {
  return grouped.flatMap(([label, g], i) => [
    { label: `${label}, measured`, color: COLORS[i % COLORS.length], points: g.map((r): [number, number] => [x(r), r.measuredMsPerToken]) },
    { label: `${label}, predicted`, color: COLORS[i % COLORS.length], dashed: true, points: g.map((r): [number, number] => [x(r), r.predictedMsPerToken]) },
  ]);
}

/** The page: `about` says how the rows were made (dtype, threads, runtime, the command). */
export function sweepHtml(rows: readonly SweepRow[], about: string): string {
  const millions = (r: SweepRow) => r.parameters / 1e6;
  const byPrompt = groups(rows, (r) => `${r.prompt}-token prompt`, millions);
  const bySize = groups(rows, (r) => r.model, (r) => r.prompt);
  const keyOf = (grouped: [string, SweepRow[]][]) => legend(grouped.map(([label], i) => ({ label, color: COLORS[i % COLORS.length] })));
  const cyclesChart = lineChart(
    byPrompt.map(([label, g], i) => ({ label, color: COLORS[i % COLORS.length], points: g.map((r): [number, number] => [millions(r), r.decodeCyclesPerToken / 1e6]) })),
    "parameters (M)", "cycles per decoded token (M)", "Cycles per decoded token against parameters",
  );
  const sizeChart = lineChart(measuredAndPredicted(byPrompt, millions), "parameters (M)", "ms per decoded token", "Time per decoded token against parameters");
  const contextChart = lineChart(measuredAndPredicted(bySize, (r) => r.prompt), "prompt length (tokens)", "ms per decoded token", "Time per decoded token against prompt length");
  const worst = Math.max(...rows.map((r) => Math.abs(errorOf(r))));
  const within = rows.filter((r) => Math.abs(errorOf(r)) <= 15).length;
  const tableRows = rows.map((r) => `<tr><td>${esc(r.model)}</td><td>${(r.parameters / 1e6).toFixed(0)} M</td><td>${r.prompt}</td><td>${cycles(r.decodeCyclesPerToken)}</td>` +
    `<td>${byteSize(r.decodeBytesPerToken)}</td><td>${ms(r.predictedMsPerToken)}</td><td>${ms(r.measuredMsPerToken)}</td><td>${signedPercent(errorOf(r))}</td><td>${r.prefillTokensPerSec.toFixed(0)}</td></tr>`).join("");
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>gpt2-cycles sweep</title><style>${REPORT_CSS}</style></head>
<body>
<h1>The GPT-2 family, size by size</h1>
<p class="lead">${esc(about)}</p>
<p class="muted">The article's "task complexity" is the cycles a token costs: it grows with the parameters, and with the
context through attention. The formula's cycle times come from this machine's profile; the dashed lines and
hollow points are its prediction, the solid ones the runs. ${within} of ${rows.length} predictions within ±15 %, the worst ${worst.toFixed(0)} % off.</p>
<h2>Task complexity</h2>
<figure>${cyclesChart}${keyOf(byPrompt)}<figcaption>Cycles (multiply-accumulates) of one decode step: counted, so the same whatever the machine.</figcaption></figure>
<h2>Processing delay</h2>
<figure>${sizeChart}${keyOf(byPrompt)}<figcaption>Solid: measured; dashed: predicted from the machine's profile.</figcaption></figure>
<figure>${contextChart}${keyOf(bySize)}<figcaption>Solid: measured; dashed: predicted.</figcaption></figure>
<h2>Every run</h2>
<table><thead><tr><th class="text-col">model</th><th>parameters</th><th>prompt</th><th>cycles/token</th><th>bytes/token</th><th>predicted</th><th>measured</th><th>error</th><th>prefill tok/s</th></tr></thead><tbody>${tableRows}</tbody></table>
</body></html>
`;
}
