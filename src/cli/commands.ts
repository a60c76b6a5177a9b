import { UsageError } from "./args.ts";
import { DownloadError } from "../io/download.ts";

/*
 * The commands of `gpt2-cycles`: generate (the default: `gpt2-cycles --prompt …`), and the
 * tools beside it. Each is a module whose main(argv) returns an exit code; they load only when
 * asked for. Errors end the same way everywhere: one line naming the command, no stack trace
 * (DEBUG=1 prints it), exit 2 for bad input, 130 for an interrupted download, else 1.
 */

interface Command {
  about: string;
  load: () => Promise<{ main: (argv: string[]) => Promise<number> }>;
}

export const COMMANDS: Record<string, Command> = {
  generate: { about: "generate text and show what each op cost (the default command)", load: () => import("./generate-cli.ts") },
  profile: { about: "measure this machine's profile, which every prediction reads", load: () => import("./profile.ts") },
  sweep: { about: "the GPT-2 family's cost, size by size and prompt by prompt, predicted and measured", load: () => import("./sweep.ts") },
  bench: { about: "how fast this machine runs a GPT-2 size: decode and prefill tokens/s", load: () => import("./bench.ts") },
  "fetch-weights": { about: "download GPT-2 weights from the Hugging Face hub", load: () => import("./fetch-weights.ts") },
  playground: { about: "serve the playground: GPT-2 in a browser tab, on the same engine", load: () => import("./playground.ts") },
};

export const COMMANDS_HELP = `commands:\n${Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(15)}${c.about}`).join("\n")}\n\n` +
  "gpt2-cycles COMMAND --help shows a command's flags; with no command, the flags are generate's.\n";

/** Runs command `name` with `argv`; prints its error, if any, as one line; returns the exit code. */
export async function runCommand(name: string, argv: string[]): Promise<number> {
  try {
    return await (await COMMANDS[name].load()).main(argv);
  } catch (err) {
    process.stderr.write(`${name}: ${err instanceof Error ? err.message : String(err)}\n`);
    if (process.env.DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    return err instanceof UsageError ? 2 : err instanceof DownloadError && err.message.startsWith("interrupted") ? 130 : 1;
  }
}

/** `gpt2-cycles [COMMAND] [flags]`: a first word that is not a flag names the command. */
export async function cli(argv: string[]): Promise<number> {
  const [first, ...rest] = argv;
  if (first === undefined || first.startsWith("-")) return runCommand("generate", argv);
  if (first === "help") {
    process.stdout.write(`gpt2-cycles: GPT-2 in TypeScript, every op's multiply-accumulates counted as cycles.\n\nusage: gpt2-cycles [COMMAND] [flags]\n\n${COMMANDS_HELP}`);
    return 0;
  }
  if (!(first in COMMANDS)) {
    process.stderr.write(`gpt2-cycles: unknown command "${first}": choose one of ${Object.keys(COMMANDS).join(", ")} (or gpt2-cycles help)\n`);
    return 2;
  }
  return runCommand(first, rest);
}
