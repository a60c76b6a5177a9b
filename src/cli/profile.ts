// Measures this machine's profile for a setting — once, for every GPT-2 size — and keeps it for
// generate.ts.
//
//   npm run profile [-- --threads N] [--kernel NAME] [--dtype f32|bf16|q8] [--out FILE]
//
// The profile (the weight products' costs on a ladder of widths, the memory roof per working set,
// the other ops' costs, the kernel chosen for each product) is stored in the per-user cache, where
// generate.ts finds it for any model; --out also writes it to FILE, for
// `generate.ts --machine FILE` on another machine.
import { commandLine } from "./command-line.ts";
import { relative } from "node:path";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "./args.ts";
import { Engine } from "../kernels/engine.ts";
import type { WeightDtype } from "../kernels/packed-matrix.ts";
import { GPT2_SMALL } from "../model/config.ts";
import { nodePlatform } from "../platform/node.ts";
import { type MachineProfile, machineIdentity, profileKey } from "../profile/machine-profile.ts";
import { measureProfile } from "../profile/measure.ts";
import { costsFor } from "../profile/ladder.ts";
import { cachedProfilePath, ladderFromEnvironment, writeProfileFile } from "../profile/store.ts";
import { byteSize, rate, table } from "../report/format.ts";

const FLAGS: Record<string, FlagSpec> = {
  threads: { kind: "int", value: "N", help: "threads for matmul (default: available cores)" },
  kernel: { kind: "string", value: "NAME", help: "matmul kernel, as generate.ts takes it (default auto)" },
  dtype: { kind: "string", value: "f32|bf16|q8", help: "how weights are held (default f32)" },
  out: { kind: "string", value: "FILE", help: "also write the profile to FILE (for generate.ts --machine FILE elsewhere)" },
  help: { kind: "boolean", help: "show this help" },
};

/** Items two to a line: the summary stays within 100 columns. */
const inTwos = <T>(items: readonly T[]): T[][] => Array.from({ length: Math.ceil(items.length / 2) }, (_, i) => items.slice(2 * i, 2 * i + 2));

function summary(p: MachineProfile): string {
  const small = costsFor(p, GPT2_SMALL, p.key.dtype);
  const products = Object.keys(p.rungs[0].products);
  const lines = [
    `memory roof   ${p.rungs.map((r) => `${byteSize(r.memoryBytesPerSec)}/s at width ${r.width}`).join(" · ")} (the LM head, one row)`,
    ...inTwos(p.streams.map((s) => `${byteSize(s.bytesPerSec)}/s over ${byteSize(s.bytes)}`)).map((pair, i) => `${i === 0 ? "by size      " : "             "} ${pair.join(" · ")}`),
    `compute roof  ${rate(small.computeCyclesPerSec, "cycles")} at width 768 (the best product ceiling, many rows)`,
    `between ops   ${(p.passNs.fixed / 1e3).toFixed(0)} µs per forward pass + ${(p.passNs.perLayer / 1e3).toFixed(0)} µs per layer + ${(p.passNs.perToken / 1e3).toFixed(1)} µs per token (JavaScript, pauses)`,
    `              + ${(p.passNs.recordedPerLayer / 1e3).toFixed(0)} µs per layer in the prompt's pass (recorded anew, never restored)`,
    `token pick    ${(p.samplingNs.greedy / 1e3).toFixed(0)} µs greedy, ${(p.samplingNs.sample / 1e3).toFixed(0)} µs sampling`,
    "",
    table(["product", "width", "call", "compute ceiling", "in decode"], products.flatMap((kind) => p.rungs.map((r) => {
      const c = r.products[kind];
      return [kind, String(r.width), `${(c.callNs / 1e3).toFixed(1)} µs`, rate(c.cyclesPerSec, "cycles"), c.vectorCyclesPerSec === undefined ? "" : rate(c.vectorCyclesPerSec, "cycles")];
    }))),
    "",
    table(["op kind", "call", "compute ceiling", "memory ceiling"], Object.entries(p.ops).map(([kind, c]) => [
      kind, `${(c.callNs / 1e3).toFixed(1)} µs`, rate(c.cyclesPerSec, "cycles"), c.bytesPerSec === undefined ? "roof" : `${byteSize(c.bytesPerSec)}/s`,
    ])),
  ];
  return lines.join("\n");
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Measure this machine's profile (roofline and kernel choices) for generate.ts's prediction.\n\nusage: ${commandLine("profile", "[flags]")}\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const settings = { kernel: f.kernel as string | undefined, threads: f.threads as number | undefined, dtype: f.dtype as WeightDtype | undefined };
  let engine: Engine;
  try {
    engine = new Engine(nodePlatform, settings);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  const key = profileKey(engine.settings, machineIdentity(nodePlatform));
  await engine.dispose();
  log(`profile: ${key.cpu}, ${key.cores} cores, ${key.runtime}; kernel ${key.kernel}, ${key.threads} thread(s), ${key.dtype}`);
  const profile = await measureProfile(() => new Engine(nodePlatform, settings), key, log, ladderFromEnvironment());
  const cached = cachedProfilePath(key);
  try {
    writeProfileFile(cached, profile);
    log(`profile: kept in ${cached}`);
  } catch (err) {
    log(`profile: cannot write ${cached} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message}): not cached`);
  }
  if (typeof f.out === "string") {
    writeProfileFile(f.out, profile);
    log(`profile: written to ${relative(process.cwd(), f.out) || f.out}`);
  }
  process.stdout.write(`${summary(profile)}\nmeasured in ${profile.measureSeconds.toFixed(1)} s\n`);
  return 0;
}

