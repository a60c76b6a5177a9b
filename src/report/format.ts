/*
 * Units for humans, the same everywhere: cycles with k/M/G, durations in ms, rates per second.
 */

export function cycles(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} G`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} M`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} k`;
  return `${n}`;
}

/** Bytes with decimal k/M/G, as bandwidths are quoted. */
export function byteSize(n: number): string {
  if (n >= 1e9) return `${(n / 1e9).toFixed(2)} GB`;
  if (n >= 1e6) return `${(n / 1e6).toFixed(2)} MB`;
  if (n >= 1e3) return `${(n / 1e3).toFixed(2)} kB`;
  return `${n} B`;
}

/** Cycles per byte, the roofline's arithmetic intensity. */
export function perByte(cycles: number, bytes: number): string {
  if (bytes === 0) return "—";
  const x = cycles / bytes;
  return x >= 10 ? x.toFixed(0) : x >= 1 ? x.toFixed(1) : x.toFixed(2);
}

/**
 * Nanoseconds per cycle (the article's cycle_time) for `msTotal` over `cycles`: three decimals
 * where they tell something, fewer for an op whose fixed cost dwarfs its few cycles, and k/M
 * beyond four digits, so a call stalled on a busy machine cannot widen the column past five
 * characters; "—" for no cycles.
 */
export function nsPerCycle(msTotal: number, cycles: number): string {
  if (cycles <= 0) return "—";
  const x = (msTotal * 1e6) / cycles;
  if (x >= 999_500) return `${(x / 1e6).toFixed(x >= 99.95e6 ? 0 : 1)}M`;
  if (x >= 9999.5) return `${(x / 1e3).toFixed(x >= 99_950 ? 0 : 1)}k`;
  return x.toFixed(x >= 999.95 ? 0 : x >= 99.995 ? 1 : x >= 9.9995 ? 2 : 3);
}

/** Milliseconds, with a precision that suits the size. */
export function ms(x: number): string {
  if (x >= 100) return `${withCommas(x.toFixed(0))} ms`;
  if (x >= 1) return `${x.toFixed(1)} ms`;
  return `${x.toFixed(3)} ms`;
}

export function rate(perSecond: number, unit: string): string {
  if (perSecond >= 1e9) return `${(perSecond / 1e9).toFixed(2)} G${unit}/s`;
  if (perSecond >= 1e6) return `${(perSecond / 1e6).toFixed(2)} M${unit}/s`;
  if (perSecond >= 1e3) return `${(perSecond / 1e3).toFixed(2)} k${unit}/s`;
  return `${perSecond.toFixed(1)} ${unit}/s`;
}

export function percent(part: number, whole: number): string {
  return whole > 0 ? `${((100 * part) / whole).toFixed(1)}%` : "—";
}

export function signedPercent(x: number): string {
  return `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
}

export function mib(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(0)} MiB`;
}

export function withCommas(s: string): string {
  return s.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

/**
 * Aligned columns two spaces apart. `textColumns` (default 1) leading columns are words and
 * align left; the numbers after them align right.
 */
/**
 * Cuts column `c`'s longer cells to end in "…" so that `table` lines fit `total` characters;
 * true when one was cut. (A decode and a prefill may each choose their own kernel for an op.)
 */
export function fitColumn(header: string[], rows: string[][], c: number, total: number): boolean {
  const all = [header, ...rows];
  const others = header.reduce((sum, _, i) => (i === c ? sum : sum + 2 + Math.max(...all.map((r) => (r[i] ?? "").length))), 0);
  const room = Math.max(header[c].length, total - others);
  let cut = false;
  for (const r of rows) {
    if (r[c].length <= room) continue;
    r[c] = `${r[c].slice(0, room - 1)}…`;
    cut = true;
  }
  return cut;
}

export function table(header: string[], rows: string[][], textColumns = 1): string {
  const all = [header, ...rows];
  const widths = header.map((_, c) => Math.max(...all.map((r) => (r[c] ?? "").length)));
  const line = (r: string[]) => r.map((cell, c) => (c < textColumns ? cell.padEnd(widths[c]) : cell.padStart(widths[c]))).join("  ").trimEnd();
  return [line(header), ...rows.map(line)].join("\n");
}
