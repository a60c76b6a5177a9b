// CLI entry: npx tsx src/generate.ts [flags]  (npm start -- [flags]; --help lists them).
// The same as the package's `gpt2-cycles [flags]`: generate, its default command.
import { runCommand } from "./cli/commands.ts";

process.exitCode = await runCommand("generate", process.argv.slice(2));
