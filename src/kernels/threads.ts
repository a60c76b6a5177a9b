import type { Platform, PoolThread } from "../platform/platform.ts";
import { ARGC, ARGS, BARRIER, COUNT, FN, FUSED, JS, KIND, KIND_JS, KIND_ROWS, MAX_ARGS, NODE, OFFSET, PER, type Plan, SCALE, STEPS, UNITS } from "./plan.ts";

/*
 * The engine's threads, all of it in this file. A forward pass is one parallel region, as in
 * llama.cpp's ggml_graph_compute: the calling thread publishes the pass's plan (plan.ts) node by
 * node as it records it, every thread walks the same list of nodes, takes chunks of each node's
 * work from a shared counter, and waits only where the plan put a barrier — for the chunks before
 * it to be done, not for the other threads to arrive. Chunks are taken, not assigned: a thread
 * that has lost its core to another program holds back the chunk it is in, never a whole share.
 *
 * Waiting spins for a bounded number of polls, then sleeps (Atomics.wait), so a thread that is
 * waiting gives its core to the one being waited for. The calling thread may block: in a page the
 * engine itself runs in a worker (src/playground/engine-worker.ts).
 *
 * When another program takes a core, a pass of a few hundred barriers still waits, at some of
 * them, for a thread the system has paused: on two cores with one busy, two threads decoded
 * slower than one. So the team times its passes on all its threads and on the calling thread
 * alone, kind of pass by kind of pass (passes of about the same work), keeps to the faster, and
 * tries the other every so often (ThreadChoice): a busy machine costs its share, never the pass.
 *
 * The executor below runs on every thread: the workers get its source text, so it is
 * self-contained, and it takes its constants as an argument.
 */

const LAYOUT = {
  NODE, FN, KIND, UNITS, PER, BARRIER, COUNT, SCALE, ARGC, ARGS, STEPS, JS, FUSED, OFFSET, MAX_ARGS, KIND_ROWS, KIND_JS,
  // control block slots (Int32)
  RUN: 0, STOP: 1, RECEIVE: 2, ACKS: 3, NODES: 4, PARTICIPANTS: 5, LEFT: 6, SLEEPERS: 8, ABORT: 9, PROGRESS: 10, WAKES: 11, PUBLISHED: 12, IDLE: 13,
  /** Polls of a counter before a thread sleeps: about 20–50 µs, more than a barrier takes when every thread has a core. */
  SPIN: 1 << 13,
  /**
   * Milliseconds a worker waiting for the next pass spins before it sleeps (from the last wake):
   * longer than the calling thread takes to sample and record a pass (0.6–1 ms for GPT-2 small),
   * since waking a sleeping thread took 100–300 µs on this project's VM. (2^17 polls, ~0.3 ms,
   * left the worker asleep at the start of one decode pass in five.)
   */
  IDLE_SPIN_MS: 2,
  /** How long a sleeping thread sleeps before it looks again (for the watchdog and aborts). */
  NAP_MS: 50,
  /** Control slots, then a thread's error message (bytes). */
  CONTROL_INTS: 16, MESSAGE_BYTES: 512,
  // why a region was aborted
  ABORT_FAILED: 1, ABORT_STALLED: 2, ABORT_STOPPED: 3,
};

type Layout = typeof LAYOUT;

/**
 * Runs a plan's nodes as thread `self` of `participants`, as they are published; false when the
 * region was aborted. `ends`: when each node's last chunk was done (ms since the epoch). `spent`
 * (the calling thread's): how long this thread spent in each node of a group that others joined.
 */
type Execute = (plan: Float64Array, counters: Int32Array, control: Int32Array, fns: ((...a: number[]) => void)[], self: number, participants: number,
  js: ((index: number) => void) | null, ends: Float64Array, spent: Float64Array | null, stallMs: number) => boolean;

interface Executor {
  execute: Execute;
  fail: (control: Int32Array, message: string) => void;
  awaitCount: (c: Int32Array, counts: Int32Array, slot: number, target: number, stallMs: number) => boolean;
  groupEnd: (plan: Float64Array, published: number, i: number) => number;
}

function makeExecutor(L: Layout): Executor {
  const args = new Float64Array(L.MAX_ARGS);

  /** Sleepers see it within NAP_MS. */
  const abort = (c: Int32Array, reason: number): void => {
    Atomics.compareExchange(c, L.ABORT, 0, reason);
  };

  /**
   * Waits until `counts[slot]` reaches `target`; false if the region was aborted (or, for the
   * caller, stalled: no chunk finished anywhere for stallMs).
   */
  const awaitCount = (c: Int32Array, counts: Int32Array, slot: number, target: number, stallMs: number): boolean => {
    for (let s = 0; s < L.SPIN; s++) {
      if (Atomics.load(counts, slot) >= target) return true;
      if (Atomics.load(c, L.ABORT) !== 0) return false;
    }
    Atomics.add(c, L.SLEEPERS, 1);
    let progress = Atomics.load(c, L.PROGRESS);
    let since = performance.now();
    let ok = true;
    for (let now = Atomics.load(counts, slot); now < target; now = Atomics.load(counts, slot)) {
      if (Atomics.load(c, L.ABORT) !== 0) { ok = false; break; }
      Atomics.wait(counts, slot, now, L.NAP_MS);
      if (stallMs <= 0) continue;
      const t = performance.now();
      const p = Atomics.load(c, L.PROGRESS);
      if (p !== progress) {
        progress = p;
        since = t;
      } else if (t - since > stallMs) {
        abort(c, L.ABORT_STALLED);
        ok = false;
        break;
      }
    }
    Atomics.sub(c, L.SLEEPERS, 1);
    return ok;
  };

  /** One more of `counts[slot]`'s `target` is done: the last one wakes whoever sleeps on it. */
  const count = (c: Int32Array, counts: Int32Array, slot: number, target: number): void => {
    if (Atomics.add(counts, slot, 1) === target - 1 && Atomics.load(c, L.SLEEPERS) !== 0) Atomics.notify(counts, slot);
  };

  /** 1 once node i is published, 0 if the plan ended before it, −1 if the region was aborted. */
  const awaitNode = (c: Int32Array, i: number): number => {
    for (let s = 0; ; s++) {
      const published = Atomics.load(c, L.PUBLISHED);
      if (i < published) return 1;
      const nodes = Atomics.load(c, L.NODES);
      if (nodes >= 0 && i >= nodes) return 0;
      if (Atomics.load(c, L.ABORT) !== 0) return -1;
      if (s >= L.SPIN) {
        Atomics.add(c, L.SLEEPERS, 1);
        if (Atomics.load(c, L.PUBLISHED) === published && Atomics.load(c, L.NODES) === nodes) Atomics.wait(c, L.PUBLISHED, published, L.NAP_MS);
        Atomics.sub(c, L.SLEEPERS, 1);
      }
    }
  };

  /** Milliseconds since the epoch: every thread's performance.now() has its own origin. */
  const now = (): number => performance.timeOrigin + performance.now();

  const fail = (c: Int32Array, message: string): void => {
    const bytes = new TextEncoder().encode(message).subarray(0, L.MESSAGE_BYTES);
    new Uint8Array(c.buffer, 4 * L.CONTROL_INTS, L.MESSAGE_BYTES).set(bytes);
    abort(c, L.ABORT_FAILED);
  };

  /** Units [u0, u1) of the node at offset o. */
  const callChunk = (plan: Float64Array, fns: ((...a: number[]) => void)[], o: number, u0: number, u1: number): void => {
    const scale = plan[o + L.SCALE];
    for (let a = 0; a < L.MAX_ARGS; a++) args[a] = plan[o + L.ARGS + a] + plan[o + L.STEPS + a] * u0;
    if (plan[o + L.KIND] === L.KIND_ROWS) args[plan[o + L.COUNT]] = (u1 - u0) * scale;
    else {
      const argc = plan[o + L.ARGC];
      args[argc] = u0 * scale;
      args[argc + 1] = u1 * scale;
    }
    fns[plan[o + L.FN]](args[0], args[1], args[2], args[3], args[4], args[5], args[6], args[7], args[8]);
  };

  /**
   * The last node of the group that starts at node i, of the nodes before `published` (whose
   * groups are closed): nodes that joined it run each of its chunks after it, on the same thread.
   */
  const groupEnd = (plan: Float64Array, published: number, i: number): number => {
    let last = i;
    while (last + 1 < published && plan[(last + 1) * L.NODE + L.FUSED] === 1) last++;
    return last;
  };

  /** A TypeScript node is one chunk, or none when it ran as it was recorded (JS < 0). */
  const chunksOf = (plan: Float64Array, o: number): number =>
    plan[o + L.KIND] === L.KIND_JS ? (plan[o + L.JS] < 0 ? 0 : 1) : Math.ceil(plan[o + L.UNITS] / plan[o + L.PER]);

  /** Waits until every chunk of the groups that start in [from, to] is done. */
  const awaitGroups = (plan: Float64Array, counters: Int32Array, c: Int32Array, published: number, from: number, to: number, stallMs: number): boolean => {
    for (let i = from; i <= to; i = groupEnd(plan, published, i) + 1) {
      if (!awaitCount(c, counters, 2 * i + 1, chunksOf(plan, i * L.NODE), stallMs)) return false;
    }
    return true;
  };

  /*
   * counters[2i]: chunks of node i taken; counters[2i + 1]: chunks done. A barrier waits for the
   * work before it to be done, not for the threads to arrive: a thread that lost its core between
   * chunks holds nobody up, and catches up by finding the chunks taken. (So the calling thread may
   * finish a region while a worker still walks its nodes: the plan is not rewritten, nor the
   * counters reset, until every worker has left — see ThreadTeam.beginPass.) Nodes are taken as
   * they are published: while the calling thread still records a pass, the others run what it
   * has recorded so far.
   */
  const execute: Execute = (plan, counters, c, fns, self, participants, js, ends, spent, stallMs) => {
    // The first group since the last barrier: a barrier waits for all of them.
    let since = 0;
    for (let i = 0; ; ) {
      const next = awaitNode(c, i);
      if (next <= 0) return next === 0;
      const published = Atomics.load(c, L.PUBLISHED);
      const o = i * L.NODE;
      const last = groupEnd(plan, published, i);
      const chunks = chunksOf(plan, o);
      if (plan[o + L.KIND] === L.KIND_JS) {
        if (js !== null && chunks === 1) {
          js(plan[o + L.JS]);
          ends[i] = now();
          count(c, counters, 2 * i + 1, 1);
        }
      } else {
        const units = plan[o + L.UNITS];
        const per = plan[o + L.PER];
        const timed = spent !== null && last > i;
        try {
          for (let chunk = Atomics.add(counters, 2 * i, 1); chunk < chunks; chunk = Atomics.add(counters, 2 * i, 1)) {
            const u0 = chunk * per;
            const u1 = Math.min(units, u0 + per);
            let t = timed ? performance.now() : 0;
            for (let n = i; n <= last; n++) {
              // A node that joined at an offset takes the units of the chunk that are its own.
              const on = n * L.NODE;
              const off = plan[on + L.OFFSET];
              const f0 = u0 > off ? u0 - off : 0;
              const f1 = Math.min(plan[on + L.UNITS], u1 - off);
              if (f0 < f1) callChunk(plan, fns, on, f0, f1);
              if (timed) {
                const after = performance.now();
                spent[n] += after - t;
                t = after;
              }
            }
            ends[i] = now();
            count(c, counters, 2 * i + 1, chunks);
            Atomics.add(c, L.PROGRESS, 1);
          }
        } catch (err) {
          fail(c, `thread ${self} failed in kernel call ${i}: ${err instanceof Error ? err.message : String(err)}`);
          return false;
        }
      }
      if (plan[last * L.NODE + L.BARRIER] === 1) {
        if (participants > 1 && !awaitGroups(plan, counters, c, published, since, i, stallMs)) return false;
        since = last + 1;
      }
      i = last + 1;
    }
  };

  return { execute, fail, awaitCount, groupEnd };
}

/*
 * A worker's life. It waits for a region (spinning, then sleeping), runs its part of the plan,
 * and waits again. A page has no synchronous receive, so what the workers must learn (the control
 * block, the plan's buffers, new kernel functions) is a message plus a bump of RUN with RECEIVE
 * set: the worker leaves its loop, its event loop delivers the message, and the handler
 * acknowledges and re-enters the loop.
 */
const WORKER_MAIN = `(listen) => {
  // tsx (esbuild keepNames) wraps named functions in __name(), which the shipped source must define
  const __name = (f) => f;
  const L = ${JSON.stringify(LAYOUT)};
  const { execute, fail } = (${makeExecutor.toString()})(L);
  const fns = [];
  const instances = new Map();
  let control = null, plan = null, counters = null, ends = null, memory = null, index = 0, seen = 0;
  const loop = () => {
    for (;;) {
      // A wake (a pass is being recorded) sends a sleeping worker back to spinning, and a
      // spinning one back to the start of its spin: it must not fall asleep while the pass is
      // recorded (its first barrier would then wait 100–300 µs for it).
      while (Atomics.load(control, L.RUN) === seen) {
        let wakes = Atomics.load(control, L.WAKES);
        let until = performance.now() + L.IDLE_SPIN_MS;
        for (let s = 1; Atomics.load(control, L.RUN) === seen; s++) {
          if ((s & 1023) !== 0) continue;
          // Passes run on the calling thread alone for now: spinning would take its core.
          if (Atomics.load(control, L.IDLE) === 1) break;
          if (Atomics.load(control, L.WAKES) !== wakes) [wakes, until] = [Atomics.load(control, L.WAKES), performance.now() + L.IDLE_SPIN_MS];
          else if (performance.now() > until) break;
        }
        if (Atomics.load(control, L.RUN) === seen) Atomics.wait(control, L.RUN, seen);
      }
      seen = Atomics.load(control, L.RUN);
      if (Atomics.load(control, L.STOP) === 1) return;
      if (control[L.RECEIVE] === 1) return;
      execute(plan, counters, control, fns, index, control[L.PARTICIPANTS], null, ends, null, 0);
      // The calling thread returns once the work is done; it resets the counters for the next
      // region only after every worker has left this one.
      Atomics.add(control, L.LEFT, 1);
      Atomics.notify(control, L.LEFT);
    }
  };
  listen((d) => {
    try {
      if (d.control) [control, index, memory, seen] = [d.control, d.index, d.memory, d.seen];
      if (d.plan) [plan, counters, ends] = [d.plan, d.counters, d.ends];
      for (const f of d.functions ?? []) {
        let exports = instances.get(f.id);
        if (exports === undefined) instances.set(f.id, exports = new WebAssembly.Instance(f.module, { env: { memory } }).exports);
        fns[f.index] = exports[f.name];
      }
    } catch (err) {
      fail(control, "a worker thread could not load a kernel: " + (err && err.message));
    }
    Atomics.add(control, L.ACKS, 1);
    Atomics.notify(control, L.ACKS);
    if (Atomics.load(control, L.STOP) !== 1) loop();
  });
}`;

/** Passes of a kind before the count not in use is timed again (doubling while it keeps losing, up to the longest), and for how many passes. */
const RETRY_AFTER = 16;
const RETRY_AFTER_LONGEST = 128;
const RETRY_PASSES = 3;
/** Passes of each count a choice looks back on: their mean is what a run of passes would take. */
const WINDOW = 8;
/**
 * The calling thread alone must be this much faster to be chosen: on a quiet machine all threads
 * are, by 1.2–1.8× here, and a pass that stalled once (V8 compiling on the other core, say) must
 * not decide alone. (At 0.85, q8 decode with a core busy kept all threads at 7.8 ms a step where
 * alone took 6.5–7.2.)
 */
const ALONE_MARGIN = 0.92;
/**
 * While all threads are preferred, the calling thread alone is timed again only once their
 * recent passes take this much longer than their fastest (something has taken a core since), or
 * while its own last passes came within CLOSE of theirs (a busy core from the start: all threads
 * never slow down past their best, and alone's first time may have been an unlucky one). On a
 * quiet machine neither holds. (Timed again on schedule, a pass in ten ran alone on a quiet
 * machine, 60% slower.)
 */
const SLOWED = 1.3;
const CLOSE = 1.05;
/**
 * Passes of a kind that run on all threads before any is timed: they compile the code every
 * thread runs (a first pass also tunes its kernels). Timed from the start, all threads lost to a
 * calling thread that alone had warmed up, and the workers, left idle, never did. (q8 decode,
 * quiet machine: 20, 10, 11, 8, 7.5, 9 ms, then 5.5–6 from the tenth pass on.)
 */
const WARM_PASSES = 8;
/**
 * Passes timed on all threads before the calling thread alone is first timed: the first of them
 * can still be warming up (q8 decode, quiet machine: 14.1 ms, then 5–6.5; alone took 11.5, won
 * on that one pass, and ran 16 passes at 8–9 ms before all threads were timed again).
 */
const FIRST_TIMED = 3;

interface KindOfPass {
  /** Passes of the kind so far, up to WARM_PASSES. */
  warm: number;
  /** Recent times (ms) on the calling thread alone, and on all threads; the fastest on all threads. */
  times: [number[], number[]];
  bestAll: number;
  /** Passes until the count not in use is timed again, passes left of that, and which count that is. */
  untilRetry: number;
  retryAfter: number;
  retrying: number;
  retryAll: boolean;
}

/**
 * Chooses, per kind of pass, between all the team's threads and the calling thread alone: the
 * one whose recent passes took less on average (a mean, not a median: a pass that stalls costs
 * the run its full time). Each is timed at first; the other one again for RETRY_PASSES passes
 * after RETRY_AFTER, less and less often while it keeps losing — the calling thread alone only
 * while all threads' passes run SLOWED past their best or alone came within CLOSE of them, so a
 * quiet machine stops paying for it.
 */
export class ThreadChoice {
  private readonly kinds = new Map<number, KindOfPass>();
  /** Passes run on the calling thread alone because that was faster (not to time it again). */
  alonePasses = 0;

  private static mean(times: number[]): number {
    return times.reduce((s, t) => s + t, 0) / times.length;
  }

  private static aloneFaster(k: KindOfPass): boolean {
    return ThreadChoice.mean(k.times[0]) < ALONE_MARGIN * ThreadChoice.mean(k.times[1]);
  }

  /** Whether the count not in use may win now: alone is preferred (all threads win once a core frees), or all threads slowed or came close to alone. */
  private static worthRetrying(k: KindOfPass): boolean {
    const all = ThreadChoice.mean(k.times[1]);
    return ThreadChoice.aloneFaster(k) || all > SLOWED * k.bestAll || ThreadChoice.mean(k.times[0]) < CLOSE * all;
  }

  /** Whether the next pass of this kind should run on all threads, and whether that is a preference (not a pass that times a count). */
  private decide(kind: number): { all: boolean; preferred: boolean } {
    const k = this.kinds.get(kind);
    if (k === undefined || k.warm < WARM_PASSES || (k.times[0].length === 0 && k.times[1].length < FIRST_TIMED)) return { all: true, preferred: false };
    if (k.times[0].length === 0) return { all: false, preferred: false };
    if (k.retrying > 0) return { all: k.retryAll, preferred: false };
    return { all: !ThreadChoice.aloneFaster(k), preferred: true };
  }

  /** What allThreads would say, changing nothing (a pass's kind is known only once it is recorded: this asks with the last one's). */
  peek(kind: number): boolean {
    return this.decide(kind).all;
  }

  /** Whether the next pass of this kind runs on all threads; `started`: it already does (it ran as it was recorded). */
  allThreads(kind: number, started = false): boolean {
    const { all, preferred } = this.decide(kind);
    if (!all && preferred && !started) this.alonePasses++;
    return all || started;
  }

  /**
   * The last pass of this kind on all threads took `ms` more than it was timed at: the calling
   * thread waited that long for its workers to leave its region before the next pass could start
   * (a worker the system paused, still walking the nodes).
   */
  leftLate(kind: number, ms: number): void {
    const times = this.kinds.get(kind)?.times[1];
    if (times !== undefined && times.length > 0) times[times.length - 1] += ms;
  }

  /** A pass's time. A count timed again starts its window anew: the machine changed, or the code has warmed up since. */
  observe(kind: number, all: boolean, ms: number): void {
    let k = this.kinds.get(kind);
    if (k === undefined) this.kinds.set(kind, (k = { warm: 0, times: [[], []], bestAll: Infinity, untilRetry: RETRY_AFTER, retryAfter: RETRY_AFTER, retrying: 0, retryAll: false }));
    if (k.warm < WARM_PASSES) {
      k.warm++;
      return;
    }
    const times = k.times[all ? 1 : 0];
    times.push(ms);
    if (times.length > WINDOW) times.shift();
    if (all) k.bestAll = Math.min(k.bestAll, ms);
    if (k.retrying > 0 && --k.retrying === 0) {
      // The retried count lost again: wait longer before the next try; it won: try soon.
      const lost = ThreadChoice.aloneFaster(k) === k.retryAll;
      k.retryAfter = lost ? Math.min(RETRY_AFTER_LONGEST, 2 * k.retryAfter) : RETRY_AFTER;
      k.untilRetry = k.retryAfter;
    } else if (k.retrying === 0 && k.times[0].length > 0 && ThreadChoice.worthRetrying(k) && --k.untilRetry === 0) {
      k.retrying = RETRY_PASSES;
      k.retryAll = ThreadChoice.aloneFaster(k);
      k.times[k.retryAll ? 1 : 0].length = 0;
    }
  }
}

/** What a region reports back: how long each node took on the calling thread (start, end; performance.now() ms). */
export interface RegionTimes {
  stamps: Float64Array;
  nodes: number;
}

const mainExecutor = makeExecutor(LAYOUT);

/**
 * The engine's worker threads, started once. A pass is a region of all of them and the calling
 * thread: opened as the pass starts to be recorded (beginPass), fed node by node as the recording
 * goes (publish), and run to its end by the calling thread once it is recorded (run). With one
 * thread (or before the workers run) the same executor runs the plan alone.
 */
export class ThreadTeam {
  private readonly control = new Int32Array(new SharedArrayBuffer(4 * LAYOUT.CONTROL_INTS + LAYOUT.MESSAGE_BYTES));
  private readonly workers: PoolThread[] = [];
  private acks: number;
  /** Per node: chunks taken, chunks done (see the executor); and when its last chunk was done. */
  private counters = new Int32Array(new SharedArrayBuffer(4 * 2 * 1024));
  private ends = new Float64Array(new SharedArrayBuffer(8 * 1024));
  /** Workers sent into regions so far; each counts LEFT as it leaves one. */
  private entered = 0;
  private sentPlan: Float64Array | null = null;
  private sentCounters: Int32Array | null = null;
  private sentFunctions = 0;
  private stamps = new Float64Array(2 * 1024);
  /** Per node of a joined group: the calling thread's time in it (the executor's `spent`), to share out the group's time. */
  private spent = new Float64Array(1024);
  private mainFns: ((...a: number[]) => void)[] = [];
  private ready = false;
  private broken: string | null = null;
  private readonly choice = new ThreadChoice();
  /** The pass being recorded: whether the threads run it as it is recorded, and whether that had to stop. */
  private streaming = false;
  private frozen = false;
  /** When the pass began (performance.now()), and when its region opened (ms since the epoch). */
  private passStart = 0;
  private regionStart = 0;
  /**
   * When the pass's first nodes could run (ms since the epoch): published to a region that opened
   * as the recording started, or else the recording's end. Recording (or restoring: replay.ts)
   * before it is the engine's own time, between ops, not the first op's.
   */
  private runnableAt = Infinity;
  /** The last pass's kind (see run) and nodes. */
  private lastKind = -1;
  private lastNodes = 0;
  /** Threads the last region ran on. */
  lastParticipants = 1;
  /** Settles once every worker runs: a page's worker starts only after its creator yields, so this is awaited, never blocked on. */
  readonly started: Promise<void>;

  /**
   * `memory`: the engine's WebAssembly memory, which every thread instantiates the kernels on.
   * `stallMs`: how long the calling thread waits at a barrier with no thread making progress
   * before it declares a worker dead (0: forever).
   */
  constructor(platform: Platform, readonly threads: number, memory: WebAssembly.Memory, private readonly stallMs = 30_000) {
    for (let w = 1; w < threads; w++) {
      const worker = platform.startThread(WORKER_MAIN);
      worker.postMessage({ control: this.control, index: w, memory, seen: 0 });
      this.workers.push(worker);
    }
    this.acks = this.workers.length;
    this.started = this.allAcknowledged().then(() => { this.ready = true; });
  }

  /** Threads that can take part in a region: all of them once the workers run. */
  get participants(): number {
    return this.ready ? this.threads : 1;
  }

  /** Passes that ran on the calling thread alone because, with the machine as busy as it was, that was faster. */
  get alonePasses(): number {
    return this.choice.alonePasses;
  }

  /** Polls with a timer rather than Atomics.waitAsync, which does not keep Node's event loop alive. */
  private async allAcknowledged(): Promise<void> {
    while (Atomics.load(this.control, LAYOUT.ACKS) < this.acks) await new Promise((resolve) => setTimeout(resolve, 1));
  }

  /** Sends every worker one message, calls them out of their loops to take it, and waits until all have. */
  private send(message: object): void {
    for (const w of this.workers) w.postMessage(message);
    this.acks += this.workers.length;
    const c = this.control;
    c[LAYOUT.RECEIVE] = 1;
    Atomics.add(c, LAYOUT.RUN, 1);
    Atomics.notify(c, LAYOUT.RUN);
    for (let now; (now = Atomics.load(c, LAYOUT.ACKS)) < this.acks; ) Atomics.wait(c, LAYOUT.ACKS, now, LAYOUT.NAP_MS);
    c[LAYOUT.RECEIVE] = 0;
  }

  /** Waits until every worker has left the regions it entered (a late one may still be walking nodes whose chunks are taken). */
  private awaitLeft(): void {
    if (!mainExecutor.awaitCount(this.control, this.control, LAYOUT.LEFT, this.entered, this.stallMs)) this.stopped();
  }

  /** Sends the workers into a region of `participants` threads. */
  private openRegion(participants: number, nodes: number, published: number): void {
    const c = this.control;
    c[LAYOUT.NODES] = nodes;
    c[LAYOUT.PUBLISHED] = published;
    c[LAYOUT.PARTICIPANTS] = participants;
    this.entered += participants - 1;
    Atomics.add(c, LAYOUT.RUN, 1);
    Atomics.notify(c, LAYOUT.RUN);
  }

  /**
   * A pass is about to be recorded into `plan`. Once every worker has left the last region (the
   * plan is rewritten only then), the counters are cleared and, when all threads run this pass
   * and already hold the plan's buffers, its region opens now: the workers run each node as it
   * is published, while the calling thread records the rest.
   */
  beginPass(plan: Plan): void {
    if (this.broken !== null) throw new Error(this.broken);
    const waiting = performance.now();
    this.awaitLeft();
    if (this.lastParticipants > 1) this.choice.leftLate(this.lastKind, performance.now() - waiting);
    this.counters.fill(0, 0, 2 * this.lastNodes);
    this.passStart = performance.now();
    this.regionStart = performance.timeOrigin + this.passStart;
    this.runnableAt = Infinity;
    // Decided for real once the pass's kind is known (run), as the pass before it was decided if
    // it is of the same kind; a pass that starts on all threads keeps them.
    const all = this.participants > 1 && this.choice.peek(this.lastKind);
    this.streaming = all && this.sentPlan === plan.data && this.sentCounters === this.counters;
    this.frozen = false;
    // Workers of a team whose passes run on the calling thread alone sleep at once: on a machine
    // with a core taken, a worker spinning for its next pass took the calling thread's core, and
    // the passes timed alone ran 3–4× slower than alone they do (q8, GPT-2 small, this VM).
    if (this.participants > 1) Atomics.store(this.control, LAYOUT.IDLE, all ? 0 : 1);
    if (this.streaming) this.openRegion(this.participants, -1, 0);
    else if (all) {
      // Not run as recorded (a plan the workers lack): wake them, for the region after the recording.
      Atomics.add(this.control, LAYOUT.WAKES, 1);
      Atomics.notify(this.control, LAYOUT.RUN);
    }
  }

  /**
   * The workers may run the nodes recorded so far whose groups are closed (Plan.closed), unless one
   * needs a buffer or function they lack. Nor past a TypeScript node: the calling thread runs it
   * only once the recording ends, and a worker waiting for it could not leave a stream that stops
   * later (run ends such a stream at what was published, then waits for the workers to leave).
   */
  publish(plan: Plan): void {
    if (!this.streaming || this.frozen) return;
    if (plan.data !== this.sentPlan || plan.table.length > this.sentFunctions) {
      this.frozen = true;
      return;
    }
    const c = this.control;
    let end = plan.closed;
    for (let i = Atomics.load(c, LAYOUT.PUBLISHED); i < end; i++) {
      if (plan.data[i * NODE + KIND] === KIND_JS && plan.data[i * NODE + JS] >= 0) {
        end = i;
        this.frozen = true;
      }
    }
    // (stamped before the nodes are published: a worker may run one and end before the next line)
    if (end > (plan.ran === null ? 0 : 1) && this.runnableAt === Infinity) this.runnableAt = performance.timeOrigin + performance.now();
    Atomics.store(c, LAYOUT.PUBLISHED, end);
    if (Atomics.load(c, LAYOUT.SLEEPERS) !== 0) Atomics.notify(c, LAYOUT.PUBLISHED);
  }

  /** The pass's recording failed: a region opened for it ends at what was published (those nodes run; the workers then leave). */
  cancel(): void {
    if (!this.streaming) return;
    const c = this.control;
    Atomics.store(c, LAYOUT.NODES, Atomics.load(c, LAYOUT.PUBLISHED));
    Atomics.notify(c, LAYOUT.PUBLISHED);
    this.streaming = false;
    this.lastNodes = this.counters.length / 2;
  }

  /** Makes sure the workers hold the plan's buffers and every function its table names (between regions only). */
  private share(plan: Plan): void {
    if (this.counters.length < 2 * plan.capacity) {
      // Grown with what a stopped stream already did in it.
      const counters = new Int32Array(new SharedArrayBuffer(4 * 2 * plan.capacity));
      counters.set(this.counters);
      this.counters = counters;
      const ends = new Float64Array(new SharedArrayBuffer(8 * plan.capacity));
      ends.set(this.ends);
      this.ends = ends;
    }
    const message: { plan?: Float64Array; counters?: Int32Array; ends?: Float64Array; functions?: object[] } = {};
    if (this.sentPlan !== plan.data || this.sentCounters !== this.counters) {
      message.plan = plan.data;
      message.counters = this.counters;
      message.ends = this.ends;
    }
    if (this.sentFunctions < plan.table.length) {
      message.functions = plan.table.slice(this.sentFunctions).map((ref, i) => ({ index: this.sentFunctions + i, id: ref.instance.id, module: ref.instance.module, name: ref.name }));
    }
    if (message.plan === undefined && message.functions === undefined) return;
    if (this.workers.length > 0 && this.ready) this.send(message);
    this.sentPlan = plan.data;
    this.sentCounters = this.counters;
    this.sentFunctions = plan.table.length;
  }

  /**
   * The pass is recorded: runs the rest of it on the calling thread too, and returns its time
   * stamps per node. `shared`: a clock reads them, so a joined group's time is shared out among
   * its nodes (stampsOf; it costs a performance.now() per node a chunk, 55–70 ns, about 1% of a
   * decode step). Throws (and stays broken) if a thread failed or stalled.
   */
  run(plan: Plan, shared = false): RegionTimes {
    if (this.broken !== null) throw new Error(this.broken);
    const nodes = plan.nodes;
    plan.barrierAfterLast();
    const kind = Math.round(4 * Math.log2(1 + plan.work));
    const c = this.control;
    for (let i = this.mainFns.length; i < plan.table.length; i++) this.mainFns.push(plan.table[i].fn);
    const all = this.participants > 1 && this.choice.allThreads(kind, this.streaming);
    // A region that opened as the recording started keeps that start for its times.
    const opened = this.streaming;
    if (this.streaming && this.frozen) {
      // The stream stopped at a node the workers could not run: they finish what was published
      // and leave; then they learn the new buffers and functions, and a second region runs the
      // rest (the counters keep what the first did).
      Atomics.store(c, LAYOUT.NODES, Atomics.load(c, LAYOUT.PUBLISHED));
      Atomics.notify(c, LAYOUT.PUBLISHED);
      this.awaitLeft();
      this.streaming = false;
    }
    const participants = all ? this.participants : 1;
    // Every node can run from now, if none could before (see runnableAt): stamped before they are
    // published, as in publish.
    this.runnableAt = Math.min(this.runnableAt, performance.timeOrigin + performance.now());
    if (this.streaming) {
      Atomics.store(c, LAYOUT.NODES, nodes);
      Atomics.store(c, LAYOUT.PUBLISHED, nodes);
      if (Atomics.load(c, LAYOUT.SLEEPERS) !== 0) Atomics.notify(c, LAYOUT.PUBLISHED);
    } else {
      // (The counters grow with the plan even for a region the calling thread runs alone.)
      if (participants > 1 || this.counters.length < 2 * plan.capacity) this.share(plan);
      if (!opened) this.regionStart = performance.timeOrigin + performance.now();
      if (participants > 1) this.openRegion(participants, nodes, nodes);
      else [c[LAYOUT.NODES], c[LAYOUT.PUBLISHED]] = [nodes, nodes];
    }
    const js = plan.js;
    if (this.spent.length < nodes) this.spent = new Float64Array(plan.capacity);
    this.spent.fill(0, 0, nodes);
    const spent = shared ? this.spent : null;
    let done: boolean;
    try {
      done = mainExecutor.execute(plan.data, this.counters, c, this.mainFns, 0, participants, (i) => js[i](), this.ends, spent, this.stallMs);
    } catch (err) {
      // A TypeScript node threw on this thread: the others are let go, the error stands.
      mainExecutor.fail(c, err instanceof Error ? err.message : String(err));
      this.broken = "the engine stopped after an error in a forward pass: load the model again";
      throw err;
    }
    if (!done) this.stopped();
    if (this.participants > 1) this.choice.observe(kind, all, performance.now() - this.passStart);
    this.lastParticipants = participants;
    this.lastKind = kind;
    this.lastNodes = nodes;
    return { stamps: this.stampsOf(plan), nodes };
  }

  /**
   * Each node's start and end on the calling thread's clock (performance.now() ms): a group runs
   * from the end of the group before it (or the region's start) to when its last chunk was done
   * (or that end, if it was done sooner, beside it). A group's nodes share its time as the calling
   * thread's chunks of them shared its own (a GELU that joined a bias add takes its part, not the
   * add); where it ran none of their chunks, the first node takes it all. So the nodes' times add
   * up to the region's from when its first nodes could run, recording included where the threads
   * ran beside it; the recording or restoring before that is not an op's (a restored decode step's
   * first layer norm had taken 0.2–0.3 ms of it a token, 15× its own time, with a clock).
   */
  private stampsOf(plan: Plan): Float64Array {
    const nodes = plan.nodes;
    if (this.stamps.length < 2 * nodes) this.stamps = new Float64Array(4 * nodes);
    const stamps = this.stamps;
    const origin = performance.timeOrigin;
    // A node that ran as it was recorded (Plan.ranFirst) may precede a region opened after the recording.
    let previous = Math.min(this.regionStart, plan.ran?.[0] ?? Infinity);
    for (let i = 0; i < nodes; ) {
      const ranFirst = i === 0 && plan.ran !== null;
      if (!ranFirst) previous = Math.max(previous, this.runnableAt);
      const last = mainExecutor.groupEnd(plan.data, nodes, i);
      const end = Math.max(previous, ranFirst ? plan.ran![1] : this.ends[i]);
      let own = 0;
      for (let n = i; n <= last; n++) own += this.spent[n];
      let at = previous;
      for (let n = i; n <= last; n++) {
        const part = own > 0 ? this.spent[n] / own : n === i ? 1 : 0;
        stamps[2 * n] = at - origin;
        at = n === last ? end : at + (end - previous) * part;
        stamps[2 * n + 1] = at - origin;
      }
      previous = end;
      i = last + 1;
    }
    return stamps;
  }

  /** A region was aborted: the team is broken from now on, with the reason. */
  private stopped(): never {
    const c = this.control;
    const reason = Atomics.load(c, LAYOUT.ABORT);
    const message = new TextDecoder().decode(new Uint8Array(c.buffer, 4 * LAYOUT.CONTROL_INTS, LAYOUT.MESSAGE_BYTES).slice()).replace(/\0+$/, "");
    this.broken = reason === LAYOUT.ABORT_STALLED
      ? `a worker thread stopped responding (no progress for ${this.stallMs / 1000} s): the engine was stopped; run again, or with --threads 1`
      : reason === LAYOUT.ABORT_STOPPED ? "the engine was disposed during a forward pass" : `a worker thread failed: ${message}`;
    throw new Error(this.broken);
  }

  async close(): Promise<void> {
    const c = this.control;
    // A worker still walking the last region reads the plan, which the engine's next team rewrites.
    if (this.broken === null) mainExecutor.awaitCount(c, c, LAYOUT.LEFT, this.entered, this.stallMs);
    Atomics.store(c, LAYOUT.STOP, 1);
    Atomics.compareExchange(c, LAYOUT.ABORT, 0, LAYOUT.ABORT_STOPPED);
    Atomics.add(c, LAYOUT.RUN, 1);
    Atomics.notify(c, LAYOUT.RUN);
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
