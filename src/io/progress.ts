/**
 * Download progress on stderr: a live bar redrawn in place on a terminal, a plain line every
 * few seconds otherwise (logs, CI), nothing when quiet.
 */
export class Progress {
  private startMs = 0;
  private lastDrawMs = 0;
  private startBytes = 0;

  constructor(
    private readonly label: string,
    private readonly total: number,
    private readonly mode: "tty" | "lines" | "quiet",
    private readonly write: (s: string) => void = (s) => process.stderr.write(s),
  ) {}

  start(done: number): void {
    this.startMs = this.lastDrawMs = Date.now();
    this.startBytes = done;
    if (this.mode === "lines" && done > 0) this.write(`${this.label}: resuming at ${mb(done)} of ${mb(this.total)}\n`);
  }

  update(done: number): void {
    const now = Date.now();
    const interval = this.mode === "tty" ? 100 : 5000;
    if (this.mode === "quiet" || now - this.lastDrawMs < interval) return;
    this.lastDrawMs = now;
    this.draw(done, now);
  }

  /** Clears the bar: the caller's summary line takes its place. */
  finish(): void {
    if (this.mode === "tty") this.write("\r\x1b[K");
  }

  private draw(done: number, now: number): void {
    const seconds = Math.max((now - this.startMs) / 1000, 1e-3);
    const speed = (done - this.startBytes) / seconds;
    const fraction = this.total > 0 ? Math.min(done / this.total, 1) : 0;
    const eta = speed > 0 && this.total > 0 ? (this.total - done) / speed : NaN;
    const stats = `${(100 * fraction).toFixed(0).padStart(3)}%  ${mb(done)} / ${mb(this.total)}  ${(speed / 1e6).toFixed(1)} MB/s  ETA ${duration(eta)}`;
    if (this.mode === "tty") {
      const width = 24;
      const filled = Math.round(fraction * width);
      this.write(`\r${this.label.padEnd(18)} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${stats}\x1b[K`);
    } else {
      this.write(`${this.label}: ${stats}\n`);
    }
  }
}

/** Decimal units, as download sizes are usually quoted. */
export function mb(bytes: number): string {
  if (bytes < 1e3) return `${bytes} B`;
  if (bytes < 1e6) return `${(bytes / 1e3).toFixed(1)} kB`;
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

function duration(s: number): string {
  if (!Number.isFinite(s)) return "--";
  if (s < 60) return `${Math.ceil(s)}s`;
  return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, "0")}s`;
}
