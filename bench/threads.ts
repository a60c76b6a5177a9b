// The threads, end to end: decode and prefill on one thread and on two, on one and on two while
// another program keeps one core busy (a bounded busy loop in a child process), and a decode batch of 8
// sequences against one on two, per dtype; medians of interleaved rounds, each run in a fresh
// process (bench/end-to-end.ts). Beside them, the memory roof decode streams against: one thread
// and two reading memory (bench/memory-roof.ts), in the same rounds.
import { execFileSync, spawn } from "node:child_process";
import { GPT2_SMALL } from "../src/model/config.ts";
import type { WeightDtype } from "../src/kernels/packed-matrix.ts";
import { streamedWeightBytes } from "../src/profile/ladder.ts";
import { table } from "../src/report/format.ts";

interface Run {
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  prefillBarriers: number;
  barriersPerToken: number;
  alonePasses: number;
}

export interface ThreadsRow {
  dtype: WeightDtype;
  one: Run;
  two: Run;
  /** One thread, and two, with one core taken by another program: one thread shows what the machine itself loses (shared caches, memory, a core's sibling). */
  oneBusy: Run;
  twoBusy: Run;
  /** Two threads: a decode batch of 8 sequences' tokens/s ÷ one sequence's. */
  batchOf8: number;
  /** GB/s one thread and two read from memory (bench/memory-roof.ts), medians of the same rounds. */
  memory: MemoryRoof;
  rounds: number;
}

export interface MemoryRoof {
  oneThreadGBps: number;
  twoThreadsGBps: number;
}

function memoryRoof(): MemoryRoof {
  const script = new URL("./memory-roof.ts", import.meta.url).pathname;
  return JSON.parse(execFileSync(process.execPath, [...process.execArgv, script], { encoding: "utf8" }));
}

function run(dtype: WeightDtype, threads: number, quick: boolean, batch = false): Run & { batches?: { sequences: number; tokensPerSec: number }[] } {
  const script = new URL("./end-to-end.ts", import.meta.url).pathname;
  return JSON.parse(execFileSync(process.execPath, [...process.execArgv, script, String(threads), quick ? "quick" : "full", dtype, "auto", ...(batch ? ["batch"] : [])], { encoding: "utf8" }));
}

/** A decode batch of 8 sequences' tokens/s ÷ one sequence's, on two threads. */
function batchRatio(dtype: WeightDtype, quick: boolean): number {
  const batches = run(dtype, 2, quick, true).batches!;
  const of = (n: number) => batches.find((b) => b.sequences === n)!.tokensPerSec;
  return of(8) / of(1);
}

/** fn() while a child process spins on one core (it stops itself after 10 minutes at most). */
export function withBusyCore<T>(fn: () => T): T {
  const busy = spawn(process.execPath, ["-e", "const end = Date.now() + 600000; while (Date.now() < end);"], { stdio: "ignore" });
  try {
    return fn();
  } finally {
    busy.kill();
  }
}

function median(runs: Run[]): Run {
  const mid = (key: keyof Run) => runs.map((r) => r[key]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
  return { prefillTokensPerSec: mid("prefillTokensPerSec"), decodeTokensPerSec: mid("decodeTokensPerSec"), prefillBarriers: mid("prefillBarriers"), barriersPerToken: mid("barriersPerToken"), alonePasses: mid("alonePasses") };
}

export function threadsBenchmark(quick: boolean, log: (line: string) => void): ThreadsRow[] {
  const rounds = quick ? 1 : 3;
  return (["f32", "q8"] as WeightDtype[]).map((dtype) => {
    const one: Run[] = [], two: Run[] = [], oneBusy: Run[] = [], busy: Run[] = [], batch: number[] = [], memory: MemoryRoof[] = [];
    for (let r = 0; r < rounds; r++) {
      log(`threads: ${dtype}, round ${r + 1} of ${rounds}`);
      one.push(run(dtype, 1, quick));
      two.push(run(dtype, 2, quick));
      oneBusy.push(withBusyCore(() => run(dtype, 1, quick)));
      busy.push(withBusyCore(() => run(dtype, 2, quick)));
      batch.push(batchRatio(dtype, quick));
      memory.push(memoryRoof());
    }
    const mid = (values: number[]) => values.sort((a, b) => a - b)[Math.floor(rounds / 2)];
    return {
      dtype, one: median(one), two: median(two), oneBusy: median(oneBusy), twoBusy: median(busy), batchOf8: mid(batch),
      memory: { oneThreadGBps: mid(memory.map((m) => m.oneThreadGBps)), twoThreadsGBps: mid(memory.map((m) => m.twoThreadsGBps)) }, rounds,
    };
  });
}

/** One row per dtype, in 100 columns; the line after it says what the columns are. */
export function threadsTable(rows: ThreadsRow[]): string {
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return table(
    ["dtype", "decode 1t", "2t", "÷1t", "busy 1t", "2t", "÷1t", "prefill 1t", "2t", "÷1t", "batch 8", "barriers"],
    rows.map((r) => [r.dtype, r.one.decodeTokensPerSec.toFixed(1), r.two.decodeTokensPerSec.toFixed(1), x(r.two.decodeTokensPerSec, r.one.decodeTokensPerSec),
      r.oneBusy.decodeTokensPerSec.toFixed(1), r.twoBusy.decodeTokensPerSec.toFixed(1), x(r.twoBusy.decodeTokensPerSec, r.one.decodeTokensPerSec),
      r.one.prefillTokensPerSec.toFixed(0), r.two.prefillTokensPerSec.toFixed(0), x(r.two.prefillTokensPerSec, r.one.prefillTokensPerSec),
      x(r.batchOf8, 1), `${r.two.barriersPerToken} / ${r.two.prefillBarriers}`]),
    2,
  ) + "\ntokens/s; busy: another program on a core; ÷1t: of quiet one thread; batch 8: 8 sequences" +
    "\ndecoded together ÷ one, 2 threads; barriers: per token / in a prefill";
}

/**
 * Decode against the memory roof, one row per dtype: the weights a step streams × tokens/s, and
 * what one thread and two read from memory in the same rounds. Two threads can add no more to a
 * decode that streams at the roof than the roof's own ÷1t.
 */
export function memoryTable(rows: ThreadsRow[]): string {
  const x = (a: number, b: number) => `${(a / b).toFixed(2)}×`;
  return table(
    ["dtype", "weights/token", "decode 1t", "2t", "÷1t", "memory 1t", "2t", "÷1t"],
    rows.map((r) => {
      const bytes = streamedWeightBytes(GPT2_SMALL, r.dtype);
      const [one, two] = [r.one.decodeTokensPerSec * bytes / 1e9, r.two.decodeTokensPerSec * bytes / 1e9];
      return [r.dtype, `${(bytes / 1e6).toFixed(0)} MB`, one.toFixed(1), two.toFixed(1), x(two, one),
        r.memory.oneThreadGBps.toFixed(1), r.memory.twoThreadsGBps.toFixed(1), x(r.memory.twoThreadsGBps, r.memory.oneThreadGBps)];
    }),
    2,
  ) + "\nGB/s; decode: the weights a step streams × tokens/s (the table above); memory: one thread and" +
    "\ntwo reading 512 MiB (bench/memory-roof.ts), medians of the same rounds";
}
