// gpt2-cycles bench: how fast this machine runs a GPT-2 size, decode and prefill, on one thread
// and on all of them. (The project's full benchmarks — kernels, threads with a busy core, the
// prediction, numpy and llama.cpp beside — are npm run bench, in a clone.)
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "./args.ts";
import { Engine } from "../kernels/engine.ts";
import type { WeightDtype } from "../kernels/packed-matrix.ts";
import { GPT2_FAMILY, familyMember } from "../model/family.ts";
import { randomModel } from "../model/load.ts";
import { nodePlatform } from "../platform/node.ts";
import { machineIdentity } from "../profile/machine-profile.ts";
import { table } from "../report/format.ts";
import { measureSpeed } from "../run/speed.ts";

const FLAGS: Record<string, FlagSpec> = {
  model: { kind: "string", value: "NAME", help: `a GPT-2 size, with random weights: ${GPT2_FAMILY.map((m) => m.name).join(", ")} (default gpt2)` },
  dtype: { kind: "string", value: "f32|bf16|q8", help: "how weights are held (default f32)" },
  threads: { kind: "int", value: "N", help: "the most threads to try (default: available cores)" },
  quick: { kind: "boolean", help: "a 32-token prefill and 16 decode steps (default 128 and 64)" },
  help: { kind: "boolean", help: "show this help" },
};

export async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`How fast this machine runs GPT-2 (random weights): decode and prefill tokens/s per thread count.\n\nusage: gpt2-cycles bench [flags]\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const name = (f.model as string | undefined) ?? "gpt2";
  const member = familyMember(name);
  if (member === undefined) throw new UsageError(`--model ${name}: not a GPT-2 size; choose one of ${GPT2_FAMILY.map((m) => m.name).join(", ")}`);
  const most = (f.threads as number | undefined) ?? nodePlatform.cores();
  const counts = [...new Set([1, most])];
  const rows: string[][] = [];
  for (const threads of counts) {
    let engine: Engine;
    try {
      engine = new Engine(nodePlatform, { threads, dtype: f.dtype as WeightDtype | undefined });
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    process.stderr.write(`bench: ${name}, ${engine.dtype} weights, ${threads} thread(s)…\n`);
    const model = await randomModel(engine, member.config);
    try {
      await model.engine.ready();
      const s = measureSpeed(model, f.quick === true ? 32 : 128, f.quick === true ? 16 : 64);
      rows.push([String(threads), s.decodeTokensPerSec.toFixed(1), `${s.prefillTokensPerSec.toFixed(0)} (${s.prefillTokens} tokens)`, String(s.barriersPerToken)]);
    } finally {
      await model.dispose();
    }
  }
  process.stdout.write(`${name}, random weights, ${f.dtype ?? "f32"}; ${machineIdentity(nodePlatform).runtime}\n`);
  process.stdout.write(`${table(["threads", "decode tok/s", "prefill tok/s", "barriers/token"], rows)}\n`);
  return 0;
}
