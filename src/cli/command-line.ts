import { existsSync } from "node:fs";
import { join } from "node:path";

/** A clone has src/ beside the running code; an installed package ships dist/ alone. */
const IN_CLONE = existsSync(join(import.meta.dirname, "..", "..", "src", "cli"));

/**
 * How to tell the user to run a command, with `args`: as the installed package's bin
 * (`gpt2-cycles fetch-weights --model gpt2-xl`), or in a clone as the project's docs do
 * (`npm run fetch-weights -- --model gpt2-xl`, `npx tsx src/generate.ts`).
 */
export function commandLine(command: string, args = ""): string {
  const rest = args === "" ? "" : ` ${args}`;
  if (!IN_CLONE) return `gpt2-cycles${command === "generate" ? "" : ` ${command}`}${rest}`;
  if (command === "generate") return `npx tsx src/generate.ts${rest}`;
  return `npm run ${command}${args === "" ? "" : ` -- ${args}`}`;
}
