// The article's "task complexity" across the GPT-2 family: sizes × prompt lengths, each run
// generated and predicted, one table.
//
//   npm run sweep [-- --dtype f32|bf16|q8] [--threads N] [--quick] [--json] [--report FILE.html]
//
// One random-weights model per size (loaded once, run at every prompt length), this machine's
// profile (measured once if there is none), greedy decoding of NEW_TOKENS tokens per run.
import { commandLine } from "./command-line.ts";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "./args.ts";
import { Engine, type EngineSettings } from "../kernels/engine.ts";
import type { WeightDtype } from "../kernels/packed-matrix.ts";
import { type FamilyMember, GPT2_FAMILY, parameterCounts } from "../model/family.ts";
import { randomModel } from "../model/load.ts";
import { nodePlatform } from "../platform/node.ts";
import { machineIdentity, profileKey } from "../profile/machine-profile.ts";
import { type ObtainedProfile, obtainProfile } from "../profile/store.ts";
import { type SweepRow, sweepHtml, sweepTable } from "../report/sweep.ts";
import { reserveOutput } from "./generate-cli.ts";
import { generate } from "../run/generate-run.ts";
import { spreadIds } from "../run/speed.ts";

const FLAGS: Record<string, FlagSpec> = {
  dtype: { kind: "string", value: "f32|bf16|q8", help: "how weights are held (default q8: every size on the SIMD kernels)" },
  threads: { kind: "int", value: "N", help: "threads (default: available cores)" },
  quick: { kind: "boolean", help: "distilgpt2 and gpt2 at prompts of 1 and 64 tokens (about a minute)" },
  json: { kind: "boolean", help: "print the rows as JSON on stdout (the table goes to stderr)" },
  report: { kind: "string", value: "FILE.html", help: "also draw the results: cycles and time against parameters and prompt length, prediction beside each point" },
  help: { kind: "boolean", help: "show this help" },
};

const NEW_TOKENS = 16;
const PROMPTS = [1, 64, 512, 1000];

/** Each size (smallest first) loaded once, then run at every prompt length. */
async function sweep(sizes: readonly FamilyMember[], prompts: readonly number[], settings: Partial<EngineSettings>, machine: ObtainedProfile, log: (line: string) => void): Promise<SweepRow[]> {
  const rows: SweepRow[] = [];
  for (const member of [...sizes].sort((a, b) => parameterCounts(a.config).matmul - parameterCounts(b.config).matmul)) {
    log(`sweep: ${member.name}, random ${settings.dtype} weights…`);
    const model = await randomModel(new Engine(nodePlatform, settings), member.config);
    try {
      await model.engine.ready();
      model.engine.adoptKernelWisdom(machine.profile.kernels);
      for (const prompt of prompts) {
        log(`sweep: ${member.name}, ${prompt}-token prompt…`);
        const { record } = await generate({
          model, inputIds: spreadIds(prompt, 464, member.config.vocabSize), maxNewTokens: NEW_TOKENS, seed: 1, stopAtEndOfText: false, machine: async () => machine,
        });
        const decode = record.stages.find((s) => s.name === "decode")!;
        const tokens = record.totals.decodeTokens;
        rows.push({
          model: member.name,
          parameters: record.model.parameters,
          prompt,
          decodeCyclesPerToken: decode.cycles / tokens,
          decodeBytesPerToken: decode.bytes / tokens,
          predictedMsPerToken: decode.predictedMs / tokens,
          measuredMsPerToken: decode.durationMs / tokens,
          prefillTokensPerSec: record.totals.prefillTokensPerSec,
        });
      }
    } finally {
      await model.dispose();
    }
  }
  return rows;
}

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`The GPT-2 family's cost, size by size and prompt by prompt: predicted and measured.\n\nusage: ${commandLine("sweep", "[flags]")}\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const report = reserveOutput("report", f.report);
  try {
    const settings = { dtype: (f.dtype ?? "q8") as WeightDtype, threads: f.threads as number | undefined };
    const log = (line: string) => process.stderr.write(`${line}\n`);
    let probe: Engine;
    try {
      probe = new Engine(nodePlatform, settings);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const key = profileKey(probe.settings, machineIdentity(nodePlatform));
    const machine = await obtainProfile(probe, () => new Engine(nodePlatform, settings), key, log);
    await probe.dispose();
    const sizes = f.quick === true ? GPT2_FAMILY.filter((m) => m.name === "distilgpt2" || m.name === "gpt2") : GPT2_FAMILY;
    const prompts = f.quick === true ? PROMPTS.slice(0, 2) : PROMPTS;
    const rows = await sweep(sizes, prompts, settings, machine, log);
    const about = `The GPT-2 family, random ${settings.dtype} weights, ${key.threads} thread(s), ${NEW_TOKENS} new tokens each (decode per token; ${key.runtime})`;
    log(`\n${about}`);
    log(sweepTable(rows));
    if (report !== null) {
      report.commit(sweepHtml(rows, `${about}: ${commandLine("sweep", argv.join(" "))}`));
      log(`report: ${report.path}`);
    }
    if (f.json === true) process.stdout.write(`${JSON.stringify(rows, null, 1)}\n`);
  } finally {
    report?.discard(); // nothing, once committed
  }
  return 0;
}

