/**
 * The article's formulas, as code.
 *
 * processing_delay = Σ cycle_time × task_complexity: each task is some amount of
 * work (cycles) done at some speed (time per cycle).
 */
export interface Task {
  /** The work, in cycles (multiply-accumulates for a matmul). */
  complexity: number;
  /** Time per cycle, in any unit; the delay comes out in the same unit. */
  cycleTime: number;
}

export function processingDelay(tasks: readonly Task[]): number {
  let delay = 0;
  for (const t of tasks) delay += t.cycleTime * t.complexity;
  return delay;
}

/**
 * Unix timestamp (whole seconds since 1970-01-01T00:00:00Z) of a UTC calendar time,
 * counting leap years properly — the article's hand formula did not.
 */
export function unixTimestamp(year: number, month: number, day: number, hour = 0, minute = 0, second = 0): number {
  return Date.UTC(year, month - 1, day, hour, minute, second) / 1000;
}
