/*
 * Just enough SVG for the HTML report: axes with round ticks, bars, points and lines. Charts are
 * strings of markup; sizes are in CSS pixels of a viewBox, so they scale with the page.
 */

export function escapeXml(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** Round tick values covering [min, max] (min defaults to 0): steps of 1, 2 or 5 × 10ⁿ. */
export function ticks(max: number, min = 0, count = 5): number[] {
  if (!(max > min)) return [min, min + 1];
  const raw = (max - min) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((f) => f * magnitude).find((s) => s >= raw)!;
  const out: number[] = [];
  for (let v = Math.floor(min / step) * step; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1] < max) out.push(Number((out[out.length - 1] + step).toPrecision(12)));
  return out;
}

export interface Series {
  label: string;
  color: string;
  points: [number, number][];
  /** Drawn dashed with hollow points: a prediction beside the measured series of its colour. */
  dashed?: boolean;
}

const W = 760;
const H = 240;
const M = { left: 64, right: 16, top: 16, bottom: 44 };

function frame(xLabel: string, yLabel: string, xTicks: number[], yTicks: number[], x: (v: number) => number, y: (v: number) => number, fmt: (v: number) => string): string {
  const grid = yTicks.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${fmt(t)}</text>`).join("");
  const xs = xTicks.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${H - M.bottom}" y2="${H - M.bottom + 4}" class="axis"/><text x="${x(t)}" y="${H - M.bottom + 16}" text-anchor="middle">${fmt(t)}</text>`).join("");
  return `${grid}${xs}<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" class="axis"/>` +
    `<text x="${(M.left + W - M.right) / 2}" y="${H - 6}" text-anchor="middle" class="label">${escapeXml(xLabel)}</text>` +
    `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeXml(yLabel)}</text>`;
}

const compact = (v: number) => (Math.abs(v) >= 1e4 ? v.toExponential(0) : String(v));

/** Points joined by lines; x spans the data, y starts at 0. */
export function lineChart(series: Series[], xLabel: string, yLabel: string, title: string): string {
  const all = series.flatMap((s) => s.points);
  const xTicks = ticks(Math.max(...all.map((p) => p[0])), Math.min(...all.map((p) => p[0])));
  const yTicks = ticks(Math.max(...all.map((p) => p[1])));
  const xMin = xTicks[0];
  const xMax = xTicks[xTicks.length - 1];
  const yMax = yTicks[yTicks.length - 1];
  const x = (v: number) => M.left + ((W - M.left - M.right) * (v - xMin)) / (xMax - xMin);
  const y = (v: number) => H - M.bottom - ((H - M.top - M.bottom) * v) / yMax;
  const body = series.map((s) => {
    const path = s.points.map(([px, py], i) => `${i === 0 ? "M" : "L"}${x(px).toFixed(1)} ${y(py).toFixed(1)}`).join(" ");
    const fill = s.dashed === true ? `fill="white" stroke="${s.color}"` : `fill="${s.color}"`;
    const dots = s.points.map(([px, py]) => `<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" ${fill}><title>${escapeXml(`${s.label}: ${compact(px)}, ${py.toPrecision(3)}`)}</title></circle>`).join("");
    return `<path d="${path}" fill="none" stroke="${s.color}" stroke-width="1.5"${s.dashed === true ? ` stroke-dasharray="5 3"` : ""}/>${dots}`;
  }).join("");
  return svg(title, frame(xLabel, yLabel, xTicks, yTicks, x, y, compact) + body);
}

/** Horizontal bars made of stacked segments; each row's segments are fractions summing to ≤ 1. */
export function stackedBars(rows: { label: string; segments: { label: string; color: string; fraction: number }[] }[], title: string): string {
  const rowH = 28;
  const left = 190;
  const width = W - left - M.right;
  const height = rows.length * rowH + 40;
  const body = rows.map((row, r) => {
    let at = 0;
    const segs = row.segments.map((s) => {
      const rect = `<rect x="${(left + at * width).toFixed(1)}" y="${r * rowH + 8}" width="${Math.max(0, s.fraction * width).toFixed(1)}" height="${rowH - 10}" fill="${s.color}"><title>${escapeXml(`${s.label}: ${(100 * s.fraction).toFixed(1)}%`)}</title></rect>`;
      at += s.fraction;
      return rect;
    }).join("");
    return `<text x="${left - 8}" y="${r * rowH + 8 + (rowH - 10) / 2 + 4}" text-anchor="end">${escapeXml(row.label)}</text>${segs}`;
  }).join("");
  const axis = [0, 0.25, 0.5, 0.75, 1].map((f) => `<line x1="${left + f * width}" x2="${left + f * width}" y1="4" y2="${rows.length * rowH + 6}" class="grid"/><text x="${left + f * width}" y="${rows.length * rowH + 20}" text-anchor="middle">${f * 100}%</text>`).join("");
  return svg(title, axis + body, height);
}

/** Vertical bars in groups (one group per category, one bar per series). */
export function groupedBars(categories: string[], series: { label: string; color: string; values: number[] }[], yLabel: string, title: string): string {
  const yTicks = ticks(Math.max(...series.flatMap((s) => s.values)));
  const yMax = yTicks[yTicks.length - 1];
  const y = (v: number) => H - M.bottom - ((H - M.top - M.bottom) * v) / yMax;
  const groupW = (W - M.left - M.right) / categories.length;
  const barW = (groupW * 0.7) / series.length;
  const bars = categories.map((c, ci) => {
    const x0 = M.left + ci * groupW + groupW * 0.15;
    const rects = series.map((s, si) => `<rect x="${(x0 + si * barW).toFixed(1)}" y="${y(s.values[ci]).toFixed(1)}" width="${barW.toFixed(1)}" height="${(H - M.bottom - y(s.values[ci])).toFixed(1)}" fill="${s.color}"><title>${escapeXml(`${c}, ${s.label}: ${s.values[ci].toFixed(1)}`)}</title></rect>`).join("");
    return `${rects}<text x="${(M.left + (ci + 0.5) * groupW).toFixed(1)}" y="${H - M.bottom + 16}" text-anchor="middle">${escapeXml(c)}</text>`;
  }).join("");
  const grid = yTicks.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${compact(t)}</text>`).join("");
  const label = `<text transform="translate(14 ${(M.top + H - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">${escapeXml(yLabel)}</text>`;
  return svg(title, grid + bars + label + `<line x1="${M.left}" x2="${W - M.right}" y1="${H - M.bottom}" y2="${H - M.bottom}" class="axis"/>`);
}

/** Powers of ten covering [min, max]. */
function decades(min: number, max: number): number[] {
  // A log axis needs finite positive bounds (from 0 or to ∞, this loop would never end).
  if (!(min > 0 && max >= min && max < Infinity)) throw new RangeError(`a log axis from ${min} to ${max}`);
  const out: number[] = [];
  for (let e = Math.floor(Math.log10(min)); e <= Math.ceil(Math.log10(max)); e++) out.push(10 ** e);
  return out;
}

const powerOfTen = (v: number) => (v >= 1e9 ? `${v / 1e9}G` : v >= 1e6 ? `${v / 1e6}M` : v >= 1e3 ? `${v / 1e3}k` : String(v));

/**
 * A roofline, log–log: arithmetic intensity (cycles per byte) across, cycles per second up. The
 * memory roof is the slanted line bytes/s × cycles/byte, the compute roof the flat one; each
 * point is an op kind as measured, labelled.
 */
export function roofline(roofs: { bytesPerSec: number; cyclesPerSec: number }, points: { label: string; color: string; x: number; y: number }[], title: string): string {
  const height = 420;
  const ridge = roofs.cyclesPerSec / roofs.bytesPerSec;
  const xs = decades(Math.min(ridge / 10, ...points.map((p) => p.x)), Math.max(ridge * 10, ...points.map((p) => p.x)));
  const ys = decades(Math.min(...points.map((p) => p.y)), roofs.cyclesPerSec * 2);
  const [x0, x1, y0, y1] = [xs[0], xs[xs.length - 1], ys[0], ys[ys.length - 1]];
  const x = (v: number) => M.left + ((W - M.left - M.right) * Math.log10(v / x0)) / Math.log10(x1 / x0);
  const y = (v: number) => height - M.bottom - ((height - M.top - M.bottom) * Math.log10(v / y0)) / Math.log10(y1 / y0);
  const grid = ys.map((t) => `<line x1="${M.left}" x2="${W - M.right}" y1="${y(t)}" y2="${y(t)}" class="grid"/><text x="${M.left - 6}" y="${y(t) + 4}" text-anchor="end">${powerOfTen(t)}</text>`).join("") +
    xs.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="${M.top}" y2="${height - M.bottom}" class="grid"/><text x="${x(t)}" y="${height - M.bottom + 16}" text-anchor="middle">${t >= 1 ? powerOfTen(t) : t.toPrecision(1)}</text>`).join("");
  const memoryStart = Math.max(x0, y0 / roofs.bytesPerSec);
  const roofPath = `M${x(memoryStart).toFixed(1)} ${y(memoryStart * roofs.bytesPerSec).toFixed(1)} L${x(ridge).toFixed(1)} ${y(roofs.cyclesPerSec).toFixed(1)} L${x(x1).toFixed(1)} ${y(roofs.cyclesPerSec).toFixed(1)}`;
  const roofLabels = `<text x="${x(ridge) + 6}" y="${y(roofs.cyclesPerSec) - 6}" class="label">compute roof ${(roofs.cyclesPerSec / 1e9).toFixed(1)} Gcycles/s</text>` +
    `<text x="${x(memoryStart) + 4}" y="${y(memoryStart * roofs.bytesPerSec) - 8}" class="label">memory roof ${(roofs.bytesPerSec / 1e9).toFixed(1)} GB/s</text>`;
  // Labels that would overlap one already placed are left to the point's tooltip.
  const placed: { x0: number; x1: number; y0: number; y1: number }[] = [];
  const dots = points.map((p) => {
    const [px, py] = [x(p.x), y(p.y)];
    const box = { x0: px + 6, x1: px + 6 + 5.5 * p.label.length, y0: py - 6, y1: py + 6 };
    const free = !placed.some((b) => box.x0 < b.x1 && b.x0 < box.x1 && box.y0 < b.y1 && b.y0 < box.y1);
    if (free) placed.push(box);
    return `<circle cx="${px.toFixed(1)}" cy="${py.toFixed(1)}" r="4" fill="${p.color}"><title>${escapeXml(`${p.label}: ${p.x.toPrecision(3)} cycles/byte, ${(p.y / 1e9).toPrecision(3)} Gcycles/s`)}</title></circle>` +
      (free ? `<text x="${box.x0.toFixed(1)}" y="${(py + 4).toFixed(1)}" class="small">${escapeXml(p.label)}</text>` : "");
  }).join("");
  const axes = `<line x1="${M.left}" x2="${W - M.right}" y1="${height - M.bottom}" y2="${height - M.bottom}" class="axis"/>` +
    `<text x="${(M.left + W - M.right) / 2}" y="${height - 6}" text-anchor="middle" class="label">arithmetic intensity (cycles per byte moved)</text>` +
    `<text transform="translate(14 ${(M.top + height - M.bottom) / 2}) rotate(-90)" text-anchor="middle" class="label">cycles per second</text>`;
  return svg(title, `${grid}${axes}<path d="${roofPath}" fill="none" stroke="#1d2433" stroke-width="2"/>${roofLabels}${dots}`, height);
}

function svg(title: string, body: string, height = H): string {
  return `<svg viewBox="0 0 ${W} ${height}" role="img" aria-label="${escapeXml(title)}"><title>${escapeXml(title)}</title>${body}</svg>`;
}

export function legend(items: { label: string; color: string }[]): string {
  return `<ul class="legend">${items.map((i) => `<li><span style="background:${i.color}"></span>${escapeXml(i.label)}</li>`).join("")}</ul>`;
}

/** Spans on a time axis (ms from the first start), one lane each; very short spans still show. */
export function timeline(spans: { label: string; detail: string; startMs: number; durationMs: number; color: string }[], title: string): string {
  const lane = 40;
  const left = 190;
  const width = W - left - M.right;
  const end = Math.max(...spans.map((s) => s.startMs + s.durationMs));
  const xTicks = ticks(end);
  const xMax = xTicks[xTicks.length - 1];
  const x = (v: number) => left + (width * v) / xMax;
  const height = spans.length * lane + 48;
  const grid = xTicks.map((t) => `<line x1="${x(t)}" x2="${x(t)}" y1="4" y2="${spans.length * lane + 4}" class="grid"/><text x="${x(t)}" y="${spans.length * lane + 20}" text-anchor="middle">${compact(t)}</text>`).join("");
  const bars = spans.map((s, i) => {
    const w = Math.max(2, x(s.startMs + s.durationMs) - x(s.startMs));
    return `<text x="${left - 8}" y="${i * lane + 20}" text-anchor="end">${escapeXml(s.label)}</text>` +
      `<text x="${left - 8}" y="${i * lane + 34}" text-anchor="end" class="small">${escapeXml(s.detail)}</text>` +
      `<rect x="${x(s.startMs).toFixed(1)}" y="${i * lane + 10}" width="${w.toFixed(1)}" height="${lane - 16}" fill="${s.color}"><title>${escapeXml(`${s.label}: ${s.detail}`)}</title></rect>`;
  }).join("");
  const label = `<text x="${left + width / 2}" y="${height - 6}" text-anchor="middle" class="label">time since the run started (ms)</text>`;
  return svg(title, grid + bars + label, height);
}
