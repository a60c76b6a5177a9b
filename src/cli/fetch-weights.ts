// Downloads GPT-2 from the Hugging Face hub into weights/<name>/, resumably and verified.
//
//   npm run fetch-weights [-- --model gpt2-medium] [--revision main] [--dir DIR] [--quiet]
//   npm run fetch-weights -- --list      the GPT-2 sizes, and the memory their weights take
//
// HF_ENDPOINT points at a mirror (default https://huggingface.co); HF_TOKEN is sent as a
// Bearer token to that host only.
import { commandLine } from "./command-line.ts";
import { basename, join, relative } from "node:path";
import { weightsDir } from "./weights-dir.ts";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "./args.ts";
import { DEFAULT_HUB, fetchModel, repositoryOf } from "../io/fetch-model.ts";
import { checkModelDir } from "../io/model-dir.ts";
import { bytesPerWeight } from "../kernels/packed-matrix.ts";
import { GPT2_FAMILY, parameterCounts } from "../model/family.ts";
import { table } from "../report/format.ts";

/**
 * The sizes, and what their weights take in memory per dtype (matmul weights at the dtype's
 * width, with q8's block scales and sums; the rest float32). The SIMD kernels address 4 GiB:
 * past it f32 runs on the TypeScript kernels.
 */
function familyTable(): string {
  const gib = (bytes: number) => `${(bytes / 2 ** 30).toFixed(2)} GiB`;
  return table(
    ["model", "repository", "layers", "heads", "width", "parameters", "f32", "bf16", "q8"],
    GPT2_FAMILY.map(({ name, repository, config: c }) => {
      const { matmul, others } = parameterCounts(c);
      const bytes = (dtype: "f32" | "bf16" | "q8") => matmul * bytesPerWeight(dtype) + 4 * others;
      return [name, repository, String(c.nLayer), String(c.nHead), String(c.nEmbd), (matmul + others).toLocaleString("en-US"),
        gib(bytes("f32")) + (bytes("f32") > 4 * 2 ** 30 ? "*" : ""), gib(bytes("bf16")), gib(bytes("q8"))];
    }),
    2,
  ) + "\n* past the SIMD kernels' 4 GiB: f32 runs on the TypeScript kernels (bf16 and q8 fit)";
}

const FLAGS: Record<string, FlagSpec> = {
  model: { kind: "string", value: "NAME", help: "gpt2 (default), gpt2-medium, gpt2-large, gpt2-xl, distilgpt2, or any owner/name" },
  list: { kind: "boolean", help: "list the GPT-2 sizes and the memory their weights take per dtype" },
  revision: { kind: "string", value: "REV", help: "branch, tag or commit (default main)" },
  dir: { kind: "string", value: "DIR", help: "where to put the files (default weights/<name>)" },
  quiet: { kind: "boolean", help: "print nothing but errors" },
  help: { kind: "boolean", help: "show this help" },
};

export async function main(argv: string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Download a GPT-2 checkpoint from the Hugging Face hub.\n\nusage: ${commandLine("fetch-weights", "[flags]")}\n\n${flagHelp(FLAGS)}\n\nenvironment: HF_ENDPOINT (a mirror), HF_TOKEN (for gated or private models)\n`);
    return 0;
  }
  if (f.list === true) {
    process.stdout.write(`${familyTable()}\n`);
    return 0;
  }
  const model = typeof f.model === "string" ? f.model : "gpt2";
  const repository = repositoryOf(model);
  if (!/^[\w.-]+\/[\w.-]+$/.test(repository)) throw new UsageError(`--model "${model}" is not a model name like gpt2 or owner/name`);
  const dir = typeof f.dir === "string" ? f.dir : join(weightsDir(), basename(repository));
  const quiet = f.quiet === true;
  const log = (line: string) => quiet || process.stderr.write(`${line}\n`);
  const endpoint = process.env.HF_ENDPOINT || DEFAULT_HUB;
  const revision = typeof f.revision === "string" ? f.revision : "main";
  const shown = relative(process.cwd(), dir) || ".";

  const abort = new AbortController();
  process.once("SIGINT", () => abort.abort());
  log(`fetching ${repository}@${revision} from ${endpoint} into ${shown}`);
  const files = await fetchModel({
    repository, revision, dir, endpoint, log,
    token: process.env.HF_TOKEN || undefined,
    retries: 4,
    retryDelayMs: Number(process.env.FETCH_RETRY_DELAY_MS ?? 1000),
    progress: quiet ? "quiet" : process.stderr.isTTY ? "tty" : "lines",
    signal: abort.signal,
    endpointHint: "HF_ENDPOINT",
  });
  const c = await checkModelDir(dir);
  const fetched = files.filter((x) => x.status === "downloaded" || x.status === "resumed");
  if (fetched.length === 0) log(`everything in ${shown} is already downloaded and verified: nothing fetched`);
  log(`${shown} loads: ${c.nLayer} layers, ${c.nHead} heads, d=${c.nEmbd}, context ${c.nPositions}, vocabulary ${c.vocabSize}`);
  log(`next: ${commandLine("generate", typeof f.dir === "string" || model !== "gpt2" ? `--model ${shown}` : "")}`);
  return 0;
}

