// The memory roof a decode step streams its weights against: how fast one thread and two read
// 512 MiB (far past any cache), as the engine runs a kernel on its threads. Run by
// bench/threads.ts in a fresh process beside each round's decodes; prints one JSON object.
//
// The kernel is the engine's check of the logits for NaN and ±∞: sixteen floats a step, no
// writes, and nothing found in a buffer of ones, so it reads at the pace memory delivers.
import { nodePlatform } from "../src/node.ts";
import { Plan, kernel } from "../src/kernels/plan.ts";
import { ThreadTeam } from "../src/kernels/threads.ts";
import { WasmHeap } from "../src/wasm/runtime.ts";

const FLOATS = 128 * 2 ** 20;
const UNITS = 1024;
const ROUNDS = 5;

const heap = new WasmHeap();
const at = heap.allocate(4 * FLOATS);
heap.f32View(at, FLOATS).fill(1);
const team = new ThreadTeam(nodePlatform, 2, heap.memory);
await team.started;
const plan = new Plan();
const read = kernel(heap.smallOps(), "firstNonFinite");

/** GB/s of one read of the whole buffer: on one thread a direct call, on two a pass of one node, as the engine runs one. */
function readOnce(threads: number): number {
  const start = performance.now();
  if (threads === 1) {
    heap.smallOps().exports.firstNonFinite(at, FLOATS);
  } else {
    team.beginPass(plan);
    plan.clear();
    const split = { kind: "rows", units: UNITS, count: 1, scale: FLOATS / UNITS, steps: [(4 * FLOATS) / UNITS], work: FLOATS } as const;
    plan.kernel(plan.functionIndex(read), [at, FLOATS], split, [[at, at + 4 * FLOATS]], [], threads);
    team.publish(plan);
    team.run(plan);
    if (team.lastParticipants !== threads) throw new Error(`memory-roof: the pass ran on ${team.lastParticipants} thread(s), not ${threads}`);
  }
  return (4 * FLOATS) / ((performance.now() - start) * 1e6);
}

// The best of interleaved rounds: the roof is what the memory gives when nothing else takes it.
const best = [0, 0];
readOnce(2);
for (let round = 0; round < ROUNDS; round++) for (const threads of [1, 2]) best[threads - 1] = Math.max(best[threads - 1], readOnce(threads));
await team.close();
process.stdout.write(JSON.stringify({ oneThreadGBps: best[0], twoThreadsGBps: best[1] }));
process.exit(0);
