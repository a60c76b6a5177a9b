// npm run playground [-- --port N --host H --model DIR]: build the page, serve it, print its URL.
import { commandLine } from "./command-line.ts";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { DEFAULT_MODEL_DIR } from "./generate-cli.ts";
import { type FlagSpec, UsageError, flagHelp, parseFlags } from "./args.ts";
import { buildSite } from "../playground/build.ts";
import { type Roots, playgroundServer } from "../playground/server.ts";


const FLAGS: Record<string, FlagSpec> = {
  port: { kind: "int", value: "N", help: "port to listen on (default 8080; 0: any free port)" },
  host: { kind: "string", value: "HOST", help: "address to listen on (default 127.0.0.1)" },
  model: { kind: "string", value: "DIR", help: "model directory to serve to the page (default weights/gpt2 when present)" },
  "no-model": { kind: "boolean", help: "serve no model, even if weights/gpt2 is there (random weights and picked files still work)" },
  help: { kind: "boolean", help: "show this help" },
};

export async function main(argv: readonly string[]): Promise<number> {
  const f = parseFlags(argv, FLAGS);
  if (f.help === true) {
    process.stdout.write(`Serve the playground: GPT-2 in a browser tab, on the same engine, with live costs.\n\nusage: ${commandLine("playground", "[flags]")}\n\n${flagHelp(FLAGS)}\n`);
    return 0;
  }
  const port = (f.port as number | undefined) ?? 8080;
  if (port < 0 || port > 65535) throw new UsageError(`--port must be 0..65535, got ${port}`);
  const host = (f.host as string | undefined) ?? "127.0.0.1";
  let modelDir: string | null = null;
  if (typeof f.model === "string" && f["no-model"] === true) throw new UsageError("--model and --no-model exclude each other");
  if (typeof f.model === "string") {
    if (!existsSync(f.model) || !statSync(f.model).isDirectory()) throw new UsageError(`--model ${f.model}: no such directory (a model directory holds config.json and model.safetensors)`);
    if (!existsSync(join(f.model, "config.json")) || !existsSync(join(f.model, "model.safetensors"))) {
      throw new UsageError(`--model ${f.model}: needs config.json and model.safetensors (${commandLine("fetch-weights")} downloads GPT-2 small)`);
    }
    modelDir = f.model;
  } else if (f["no-model"] !== true && existsSync(join(DEFAULT_MODEL_DIR, "model.safetensors"))) modelDir = DEFAULT_MODEL_DIR;

  for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => process.exit(0)); // "exit" removes a built site
  const server = playgroundServer({ ...siteRoots(), ...(modelDir === null ? {} : { "/model": modelDir }) }, { model: modelDir === null ? null : relative(process.cwd(), modelDir) || "." });
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
  process.stdout.write(`  model served: ${modelDir === null ? "none (random weights and files from disk still work; --model DIR serves one)" : relative(process.cwd(), modelDir) || "."}\n`);
  process.stdout.write("  Ctrl-C stops the server\n");
  return 0;
}

/** The page's files: the built site an installed package ships (dist/site), or in a clone a fresh build. */
function siteRoots(): Roots {
  const shipped = join(import.meta.dirname, "..", "site");
  if (existsSync(join(shipped, "index.html"))) return { "": shipped };
  const site = mkdtempSync(join(tmpdir(), "gpt2-cycles-playground-"));
  process.once("exit", () => rmSync(site, { recursive: true, force: true }));
  buildSite(site);
  return { "": site };
}
