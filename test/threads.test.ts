// The threads: a pass gives the same bits on any thread count, and a thread that dies or throws
// mid-pass ends the run with one clear error, the engine disposed, no thread left waiting.
import { describe, expect, it } from "vitest";
import { Engine, Tensor, add, nodePlatform, randomModel } from "../src/node.ts";
import type { Platform } from "../src/platform/platform.ts";
import { ThreadChoice, ThreadTeam } from "../src/kernels/threads.ts";
import { NODE, OFFSET, Plan, UNITS, kernel } from "../src/kernels/plan.ts";
import { WasmHeap } from "../src/wasm/runtime.ts";

// Wide enough that every product is cut into several chunks.
const CONFIG = { nLayer: 2, nHead: 4, nEmbd: 256, nPositions: 64, vocabSize: 1000, layerNormEpsilon: 1e-5 };
const PROMPT = [3, 141, 59, 265, 7, 999];

describe("a forward pass on 1, 2 and 3 threads", () => {
  // One engine, its thread count changed: the kernels the autotuner chose stay the same (an FMA
  // kernel and a plain one round differently), only the threads change.
  it.each(["f32", "bf16", "q8"] as const)("%s: bit-identical logits (threads take whole chunks of output columns, rows or heads)", async (dtype) => {
    const model = await randomModel(new Engine(nodePlatform, { threads: 1, dtype }), CONFIG, 11);
    const results = [];
    for (const threads of [1, 2, 3]) {
      model.engine.setThreads(threads);
      await model.engine.ready();
      const cache = model.newCache();
      // Each is the first pass of its kind on this thread team, which runs on all its threads.
      const prefill = model.step(PROMPT, cache, PROMPT.length).data;
      const ran = [model.engine.lastPass.threads];
      const decode = model.step([42], cache).data;
      ran.push(model.engine.lastPass.threads);
      results.push({ prefill, decode, ran });
    }
    await model.dispose();
    const [one, ...many] = results;
    for (const [i, r] of many.entries()) {
      expect(r.ran).toEqual([i + 2, i + 2]);
      expect(r.prefill).toEqual(one.prefill);
      expect(r.decode).toEqual(one.decode);
    }
  });

  it("reports its kernel calls and barriers: fewer barriers than calls (calls that touch disjoint data share one)", async () => {
    const model = await randomModel(new Engine(nodePlatform, { threads: 2 }), CONFIG, 11);
    await model.engine.ready();
    model.step([1], model.newCache());
    const { calls, barriers } = model.engine.lastPass;
    // At least the chain in each block, each group waiting for the one before: ln_1, the qkv
    // product (keys and values into the cache, the queries scaled), attention, its projection,
    // ln_2, the MLP's two products.
    expect(barriers).toBeGreaterThanOrEqual(CONFIG.nLayer * 7);
    expect(barriers).toBeLessThan(calls);
    await model.dispose();
  });
});

/**
 * Node's platform, with workers whose kernels `fault` (a JavaScript statement) on their first
 * call: every WebAssembly function a worker instantiates is wrapped. (A worker takes chunks only
 * when it gets to them before the calling thread does, so a run of steps waits for that call.)
 */
function faultyPlatform(fault: string): Platform {
  return {
    ...nodePlatform,
    startThread: (main) => nodePlatform.startThread(`(listen) => {
      const Real = WebAssembly.Instance;
      let calls = 0;
      WebAssembly.Instance = function (module, imports) {
        const exports = {};
        for (const [name, f] of Object.entries(new Real(module, imports).exports)) {
          exports[name] = typeof f !== "function" ? f : (...args) => { if (++calls === 1) { ${fault}; } return f(...args); };
        }
        return { exports };
      };
      (${main})(listen);
    }`),
  };
}

describe("a worker that fails mid-pass", () => {
  const run = async (fault: string) => {
    const model = await randomModel(new Engine(faultyPlatform(fault), { threads: 2 }, 1000), CONFIG, 11);
    await model.engine.ready();
    // Prompts of 32 tokens: passes long enough that the worker wakes in time to take chunks.
    const cache = model.newCache(32);
    const prompt = Array.from({ length: 32 }, (_, i) => (i * 37) % CONFIG.vocabSize);
    let error: Error | null = null;
    try {
      for (let i = 0; i < 200; i++) {
        cache.length = 0;
        model.step(prompt, cache);
      }
    } catch (err) {
      error = err as Error;
    }
    return { model, error };
  };

  it("a kernel that throws: one error naming the failure; the engine is disposed", async () => {
    const { model, error } = await run(`throw new Error("injected fault")`);
    expect(error?.message).toMatch(/^a worker thread failed: thread 1 failed in kernel call \d+: injected fault$/);
    expect(() => model.step([1], model.newCache())).toThrow(/disposed/);
  });

  it("a worker that exits: the pass gives up after the stall limit, with one error; the engine is disposed", async () => {
    const started = performance.now();
    const { model, error } = await run("process.exit(1)");
    expect(error?.message).toMatch(/^a worker thread stopped responding \(no progress for 1 s\)/);
    expect(performance.now() - started).toBeLessThan(20_000);
    expect(() => model.step([1], model.newCache())).toThrow(/disposed/);
  });
});

describe("a pass whose recording fails", () => {
  it("ends the region it opened: the threads run what was published and leave, and the next pass runs", async () => {
    // A 2 s stall limit: a worker left waiting for the rest of the failed pass would end the next one with an error.
    const model = await randomModel(new Engine(nodePlatform, { threads: 2 }, 2000), CONFIG, 11);
    await model.engine.ready();
    const cache = model.newCache();
    model.step(PROMPT, cache); // the workers now hold the plan: the next pass runs as it is recorded
    const engine = model.engine;
    expect(() => engine.pass(() => engine.run(() => {
      const x = new Tensor(engine.floats(4096), [16, 256]);
      add(add(x, x), x); // recorded and published
      throw new Error("recording failed");
    }))).toThrow("recording failed");
    const next = model.step([42], cache).data;
    expect(next.every(Number.isFinite)).toBe(true);
    await model.dispose();
  });
});

describe("a pass the workers run as it is recorded", () => {
  it("stops before a TypeScript node, so a stream that must stop later (a new kernel) never waits on a worker waiting for it", async () => {
    const heap = new WasmHeap();
    const team = new ThreadTeam(nodePlatform, 2, heap.memory, 3000); // a stall fails in 3 s
    await team.started;
    const plan = new Plan();
    const n = 4096;
    const [a, out, copied] = [heap.allocate(4 * n), heap.allocate(4 * n), heap.allocate(4 * n)];
    heap.f32View(a, n).set(Float32Array.from({ length: n }, (_, i) => i));
    const ops = heap.smallOps();
    const scaled = () => plan.kernel(plan.functionIndex(kernel(ops, "scale")), [a, out, n, 2], { kind: "rows", units: n / 8, count: 2, scale: 8, steps: [32, 32], work: 1 << 20 }, [[a, a + 4 * n]], [[out, out + 4 * n]], 2);
    let typescriptRan = 0;
    // A first pass, so the workers hold the plan and the scale kernel.
    team.beginPass(plan);
    plan.clear();
    scaled();
    team.run(plan);
    // Then: the scale, published; a TypeScript node; time for a worker to reach it; then a
    // kernel the workers have not been sent, which stops the stream.
    team.beginPass(plan);
    plan.clear();
    scaled();
    team.publish(plan);
    plan.typescript(() => typescriptRan++);
    team.publish(plan);
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 200);
    plan.kernel(plan.functionIndex(kernel(ops, "copy")), [out, 4 * n, copied, 4 * n, 1, 4 * n], { kind: "rows", units: 1, count: 4, scale: 1, steps: [0, 0, 0, 0], work: n }, [[out, out + 4 * n]], [[copied, copied + 4 * n]], 2);
    team.publish(plan);
    team.run(plan);
    expect(typescriptRan).toBe(1);
    expect(heap.f32View(copied, n)).toEqual(Float32Array.from({ length: n }, (_, i) => 2 * i));
    await team.close();
  });
});

/** A thread team of `threads` on a heap of its own, a pass begun on an empty plan (a stall fails in 3 s). */
async function passOn(threads: number): Promise<{ heap: WasmHeap; team: ThreadTeam; plan: Plan }> {
  const heap = new WasmHeap();
  const team = new ThreadTeam(nodePlatform, threads, heap.memory, 3000);
  await team.started;
  const plan = new Plan();
  team.beginPass(plan);
  return { heap, team, plan };
}

describe("nodes that join the node before them", () => {
  it("at an offset into its units, and in coarser units: no barrier, each unit run once, on any thread", async () => {
    const { heap, team, plan } = await passOn(2);
    const n = 4096;
    const [a, out, part, tripled, shifted] = [0, 1, 2, 3, 4].map(() => heap.allocate(4 * n));
    heap.f32View(a, n).set(Float32Array.from({ length: n }, (_, i) => i));
    const ops = heap.smallOps();
    const [scale, copy] = [plan.functionIndex(kernel(ops, "scale")), plan.functionIndex(kernel(ops, "copy"))];
    // out = 2a, in 128 units of 32 floats (a one-row product's output, as it is cut).
    plan.kernel(scale, [a, out, n, 2], { kind: "rows", units: 128, count: 2, scale: 32, steps: [128, 128], work: 1 << 20 }, [[a, a + 4 * n]], [[out, out + 4 * n]], 2);
    // part = out[1024, 2048), as 32 rows of 32 floats: unit u reads what unit 32 + u wrote.
    const joinedCopy = plan.kernel(copy, [out + 4096, 128, part, 128, 32, 128], { kind: "rows", units: 32, count: 4, scale: 1, steps: [128, 0, 128, 0], work: 1024 }, [[out + 4096, out + 8192]], [[part, part + 4096]], 2);
    // tripled = 3 · out in units of 16 floats: two of them to a unit of the group's.
    const joinedScale = plan.kernel(scale, [out, tripled, n, 3], { kind: "rows", units: 256, count: 2, scale: 16, steps: [64, 64], work: 1 << 20 }, [[out, out + 4 * n]], [[tripled, tripled + 4 * n]], 2);
    // shifted = out from float 4 on: its units straddle the group's, so it waits for all of them.
    const joinedShift = plan.kernel(copy, [out + 16, 128, shifted, 128, 127, 128], { kind: "rows", units: 127, count: 4, scale: 1, steps: [128, 0, 128, 0], work: n }, [[out + 16, out + 16 + 127 * 128]], [[shifted, shifted + 127 * 128]], 2);
    expect([joinedCopy, joinedScale, joinedShift]).toEqual([true, true, false]);
    expect([1, 2].map((i) => plan.data[i * NODE + OFFSET])).toEqual([32, 0]);
    expect([1, 2].map((i) => plan.data[i * NODE + UNITS])).toEqual([32, 128]);
    expect(plan.barriers).toBe(1); // before the shifted copy
    team.run(plan);
    const twice = (i: number) => 2 * i;
    expect(heap.f32View(part, 1024)).toEqual(Float32Array.from({ length: 1024 }, (_, i) => twice(1024 + i)));
    expect(heap.f32View(tripled, n)).toEqual(Float32Array.from({ length: n }, (_, i) => 3 * twice(i)));
    expect(heap.f32View(shifted, 127 * 32)).toEqual(Float32Array.from({ length: 127 * 32 }, (_, i) => twice(4 + i)));
    await team.close();
  });
});

describe("a joined group's time", () => {
  it("is shared out among its nodes as the calling thread's chunks of them took it, end to end with no gap", async () => {
    // One thread: the calling thread runs every chunk, so every node has a time of its own.
    const { heap, team, plan } = await passOn(1);
    const n = 1 << 16;
    const [a, out, tripled] = [0, 1, 2].map(() => heap.allocate(4 * n));
    const scale = plan.functionIndex(kernel(heap.smallOps(), "scale"));
    const rows = { kind: "rows", units: 64, count: 2, scale: n / 64, steps: [(4 * n) / 64, (4 * n) / 64], work: n } as const;
    plan.kernel(scale, [a, out, n, 2], rows, [[a, a + 4 * n]], [[out, out + 4 * n]], 1);
    expect(plan.kernel(scale, [out, tripled, n, 3], rows, [[out, out + 4 * n]], [[tripled, tripled + 4 * n]], 1)).toBe(true);
    const { stamps, nodes } = team.run(plan, true);
    expect(nodes).toBe(2);
    const [start0, end0, start1, end1] = stamps.slice(0, 4);
    // The old sharing gave the whole group to its first node: the joined one took 0.
    expect(end0).toBeGreaterThan(start0);
    expect(start1).toBe(end0);
    expect(end1).toBeGreaterThan(start1);
    await team.close();
  });
});

describe("the time a pass spends being recorded", () => {
  it("after its first node ran is no op's: the next node's time starts when the nodes could run", async () => {
    const { heap, team, plan } = await passOn(1);
    const n = 1024;
    const [a, out] = [0, 1].map(() => heap.allocate(4 * n));
    plan.ranFirst(() => {});
    // The rest of the recording (or a restore, replay.ts) takes 30 ms before anything can run.
    const recorded = performance.now() + 30;
    while (performance.now() < recorded);
    plan.kernel(plan.functionIndex(kernel(heap.smallOps(), "scale")), [a, out, n, 2], { kind: "rows", units: 1, count: 2, scale: n, steps: [4 * n, 4 * n], work: n }, [[a, a + 4 * n]], [[out, out + 4 * n]], 1);
    const { stamps } = team.run(plan, true);
    const [, firstEnd, start, end] = stamps.slice(0, 4);
    // Before, the scale ran from the first node's end: over 30 ms for a kernel of 1,024 floats.
    expect(start - firstEnd).toBeGreaterThanOrEqual(30);
    expect(end - start).toBeLessThan(15);
    await team.close();
  });
});

describe("the choice between all threads and the calling thread alone", () => {
  /** Runs `passes` passes of one kind that take `allMs` on all threads and `aloneMs` alone; the counts each ran on. */
  const drive = (choice: ThreadChoice, passes: number, allMs: number, aloneMs: number): boolean[] =>
    Array.from({ length: passes }, () => {
      const all = choice.allThreads(7);
      choice.observe(7, all, all ? allMs : aloneMs);
      return all;
    });

  // Passes counted from 0. Passes 0–7 run on all threads untimed (they warm up every thread's
  // code), passes 8–10 time all threads, pass 11 the calling thread alone; from then on the faster
  // one runs. All threads, when they lose, are timed again for 3 passes after 16 passes, then after
  // 32, 64 and 128 while they keep losing; the calling thread alone on the same schedule while
  // its passes come within 5% of all threads', or once all threads' passes run 30% past their
  // fastest.
  const ran = (passes: boolean[], all: boolean) => passes.map((a, i) => (a === all ? i : -1)).filter((i) => i >= 0);

  it("keeps all threads unless alone is 8% faster, and on a quiet machine stops timing alone", () => {
    const quiet = drive(new ThreadChoice(), 200, 10, 11); // all threads faster by 10%
    expect(ran(quiet, false)).toEqual([11]);
    // Alone 3% faster: not enough, but close enough to be timed again now and then.
    const close = drive(new ThreadChoice(), 200, 10, 9.7);
    expect(ran(close, false)).toEqual([11, 27, 28, 29, 62, 63, 64, 129, 130, 131]);
    // Alone 10% faster: it runs from its first time on, all threads timed again less and less often.
    const faster = drive(new ThreadChoice(), 80, 10, 9);
    expect(ran(faster, true)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 27, 28, 29, 62, 63, 64]);
  });

  it("when a core gets busy, all threads' passes slow down and the calling thread alone takes over", () => {
    const choice = new ThreadChoice();
    const quiet = drive(choice, 30, 10, 12);
    const busy = drive(choice, 40, 30, 12);
    expect(ran(quiet, false)).toEqual([11]);
    // Busy pass 1: all threads' last 8 average 15 ms, and alone (12) is faster than 0.92 × 15.
    // All threads are timed again 16 passes after busy pass 0 (whose 12.5 ms average came within
    // 5% of alone's) at 16–18, and lose.
    expect(ran(busy, true)).toEqual([0, 1, 16, 17, 18]);
  });

  it("times the calling thread alone again when all threads slow down past their best, even if its last time lost", () => {
    const choice = new ThreadChoice();
    drive(choice, 30, 10, 20); // alone timed once (pass 11) at 20 ms: it loses
    // All threads at 15 ms: 1.5× their best, yet alone's old 20 ms still loses (0.92 × 15 < 20).
    // From pass 4 their last 8 average over 13 ms (1.3 × 10); 16 such passes later, at pass 20,
    // the calling thread alone is timed again, finds 12 ms, and keeps the passes from there until
    // all threads are timed again, 16 passes after its 3 timed passes (pass 39).
    const slowed = drive(choice, 40, 15, 12);
    expect(ran(slowed, false)).toEqual(Array.from({ length: 19 }, (_, i) => 20 + i));
  });

  it("on a busy machine runs alone, and tries all threads again less and less often while they keep losing", () => {
    const choice = new ThreadChoice();
    const busy = drive(choice, 200, 30, 10);
    expect(ran(busy, true)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 27, 28, 29, 62, 63, 64, 129, 130, 131]);
    expect(choice.alonePasses).toBe(200 - 20 - 1); // every other pass but pass 11, which only timed it
  });

  it("charges all threads' passes the wait for their workers to leave: late leavers make the calling thread alone win", () => {
    // All threads' passes take 8 ms, then the calling thread waits 3 ms more for a paused worker
    // to leave the region: 11 ms a pass, against 9 ms alone. Timed without that wait, all threads won.
    const choice = new ThreadChoice();
    const ranAll = Array.from({ length: 24 }, () => {
      const all = choice.allThreads(7);
      choice.observe(7, all, all ? 8 : 9);
      if (all) choice.leftLate(7, 3);
      return all;
    });
    expect(ranAll.slice(12).every((all) => !all)).toBe(true);
  });

  it("goes back to all threads when the machine quiets down", () => {
    const choice = new ThreadChoice();
    const busy = drive(choice, 30, 30, 10);
    const quiet = drive(choice, 60, 8, 10);
    // All threads lose their retry at 27–29, still busy; the next, at passes 62–64 (32–34 here),
    // finds them faster again: they stay, at their best, so the calling thread alone is not timed again.
    expect(ran(busy, true)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 27, 28, 29]);
    expect(ran(quiet, false)).toEqual(Array.from({ length: 32 }, (_, i) => i));
  });
});
