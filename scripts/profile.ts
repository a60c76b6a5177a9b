// Measures this machine's profile for a model shape and a setting, and keeps it for generate.ts.
//
//   npm run profile [-- --threads N] [--kernel NAME] [--dtype f32|bf16|q8] [--model DIR] [--out FILE]
//
// The profile (roofs, call costs, the kernel chosen for each product) is stored in the per-user
// cache, where generate.ts finds it; --out also writes it to FILE, for `generate.ts --machine FILE`
// on another machine. Without --model: GPT-2 small's shapes with random weights.
import { relative } from "node:path";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "../src/cli/args.ts";
import { Engine } from "../src/kernels/engine.ts";
import type { WeightDtype } from "../src/kernels/packed-matrix.ts";
import { GPT2_SMALL } from "../src/model/config.ts";
import { randomModel } from "../src/model/load.ts";
import { checkModelDir, loadModel } from "../src/io/model-dir.ts";
import { nodePlatform } from "../src/platform/node.ts";
import { type MachineProfile, machineIdentity, profileKey } from "../src/profile/machine-profile.ts";
import { measureProfile } from "../src/profile/measure.ts";
import { cachedProfilePath, writeProfileFile } from "../src/profile/store.ts";
import { byteSize, rate, table } from "../src/report/format.ts";

const FLAGS: Record<string, FlagSpec> = {
  threads: { kind: "int", value: "N", help: "threads for matmul (default: available cores)" },
  kernel: { kind: "string", value: "NAME", help: "matmul kernel, as generate.ts takes it (default auto)" },
  dtype: { kind: "string", value: "f32|bf16|q8", help: "how weights are held (default f32)" },
  model: { kind: "string", value: "DIR", help: "a model directory (default: GPT-2 small's shapes, random weights)" },
  out: { kind: "string", value: "FILE", help: "also write the profile to FILE (for generate.ts --machine FILE elsewhere)" },
  help: { kind: "boolean", help: "show this help" },
};

function summary(p: MachineProfile): string {
  const lines = [
    `memory roof   ${byteSize(p.memoryBytesPerSec)}/s (the LM head streaming its weights, one row)`,
    `compute roof  ${rate(p.computeCyclesPerSec, "cycles")} (the best product ceiling, many rows)`,
    `between ops   ${(p.passNs.fixed / 1e3).toFixed(0)} µs per forward pass + ${(p.passNs.perToken / 1e3).toFixed(1)} µs per token (JavaScript, pauses)`,
    `token pick    ${(p.samplingNs.greedy / 1e3).toFixed(0)} µs greedy, ${(p.samplingNs.sample / 1e3).toFixed(0)} µs sampling`,
    "",
    table(["op kind", "call", "compute ceiling", "in decode", "memory ceiling"], Object.entries(p.ops).map(([kind, c]) => [
      kind, `${(c.callNs / 1e3).toFixed(1)} µs`, rate(c.cyclesPerSec, "cycles"), c.vectorCyclesPerSec === undefined ? "" : rate(c.vectorCyclesPerSec, "cycles"),
      c.bytesPerSec === undefined ? "roof" : `${byteSize(c.bytesPerSec)}/s`,
    ])),
  ];
  return lines.join("\n");
}

async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Measure this machine's profile (roofline and kernel choices) for generate.ts's prediction.\n\nusage: npm run profile -- [flags]\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  let engine: Engine;
  try {
    engine = new Engine(nodePlatform, { kernel: f.kernel as string | undefined, threads: f.threads as number | undefined, dtype: f.dtype as WeightDtype | undefined });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const log = (line: string) => process.stderr.write(`${line}\n`);
  let model;
  if (typeof f.model === "string") {
    await checkModelDir(f.model);
    model = await loadModel(f.model, engine);
  } else {
    log("profile: GPT-2 small's shapes with random weights (--model DIR for another model)");
    model = await randomModel(engine, GPT2_SMALL);
  }
  await model.engine.ready();
  const key = profileKey(model.config, engine.settings, machineIdentity(nodePlatform));
  log(`profile: ${key.cpu}, ${key.cores} cores, ${key.runtime}; kernel ${key.kernel}, ${key.threads} thread(s), ${key.dtype}`);
  const profile = measureProfile(model, key, log);
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

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`profile: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
