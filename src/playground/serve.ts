// npm run playground [-- --port N --host H --model DIR]: build the page, serve it, print its URL.
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "../cli/args.ts";
import { buildPlayground, playgroundRoots } from "./build.ts";
import { playgroundServer } from "./server.ts";

const DEFAULT_MODEL_DIR = join(import.meta.dirname, "..", "..", "weights", "gpt2");

const FLAGS: Record<string, FlagSpec> = {
  port: { kind: "int", value: "N", help: "port to listen on (default 8080; 0: any free port)" },
  host: { kind: "string", value: "HOST", help: "address to listen on (default 127.0.0.1)" },
  model: { kind: "string", value: "DIR", help: "model directory to serve to the page (default weights/gpt2 when present)" },
  "no-model": { kind: "boolean", help: "serve no model, even if weights/gpt2 is there (random weights and picked files still work)" },
  help: { kind: "boolean", help: "show this help" },
};

async function main(argv: readonly string[]): Promise<void> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Serve the playground: GPT-2 in a browser tab, on the same engine, with live costs.\n\nusage: npm run playground -- [flags]\n\n${flagHelp(FLAGS)}\n`);
    return;
  }
  const port = (f.port as number | undefined) ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${port}`);
  const host = (f.host as string | undefined) ?? "127.0.0.1";
  let modelDir: string | null = null;
  if (typeof f.model === "string" && f["no-model"] === true) throw new UsageError("--model and --no-model exclude each other");
  if (typeof f.model === "string") {
    if (!existsSync(f.model) || !statSync(f.model).isDirectory()) throw new UsageError(`--model ${f.model}: no such directory (a model directory holds config.json and model.safetensors)`);
    if (!existsSync(join(f.model, "config.json")) || !existsSync(join(f.model, "model.safetensors"))) {
      throw new UsageError(`--model ${f.model}: needs config.json and model.safetensors (npm run fetch-weights downloads GPT-2 small)`);
    }
    modelDir = f.model;
  } else if (f["no-model"] !== true && existsSync(join(DEFAULT_MODEL_DIR, "model.safetensors"))) modelDir = DEFAULT_MODEL_DIR;

  const buildDir = mkdtempSync(join(tmpdir(), "gpt2-cycles-playground-"));
  const cleanUp = () => rmSync(buildDir, { recursive: true, force: true });
  process.once("exit", cleanUp);
  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(0));
  buildPlayground(buildDir);
  const served = modelDir === null ? null : relative(process.cwd(), modelDir) || ".";
  const server = playgroundServer(playgroundRoots(buildDir, modelDir), { model: served });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "EADDRINUSE") reject(new UsageError(`port ${port} on ${host} is in use: choose another with --port N`));
      else if (err.code === "EADDRNOTAVAIL" || err.code === "ENOTFOUND") reject(new UsageError(`cannot listen on ${host}: not an address of this machine (try --host 127.0.0.1)`));
      else reject(err);
    });
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const actual = typeof address === "object" && address !== null ? address.port : port;
  const shownHost = host.includes(":") ? `[${host}]` : host;
  process.stdout.write(`playground: http://${shownHost}:${actual}/\n`);
  process.stdout.write(`  model served: ${served ?? "none (random weights and files from disk still work; --model DIR serves one)"}\n`);
  process.stdout.write("  Ctrl-C stops the server\n");
}

try {
  await main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`playground: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(err instanceof UsageError ? 2 : 1);
}
