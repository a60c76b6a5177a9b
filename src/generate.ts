// CLI entry: npx tsx src/generate.ts [flags]  (npm start -- [flags]; --help lists them)
import { UsageError } from "./cli/args.ts";
import { main } from "./cli/generate-cli.ts";

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (err) {
  // Bad flags and bad input files are the user's to fix: one line, no stack trace.
  const message = err instanceof Error ? err.message : String(err);
  process.stderr.write(`generate: ${message}\n`);
  if (process.env.DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  process.exitCode = err instanceof UsageError ? 2 : 1;
}
