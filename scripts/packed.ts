// The package as its users meet it: built, packed by npm (the tarball that would be published),
// and installed offline into an empty project — no tsx, no TypeScript there.
import { spawnSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");

function npm(args: string[], cwd: string): string {
  const r = spawnSync("npm", args, { cwd, encoding: "utf8", timeout: 300_000 });
  if (r.status !== 0) throw new Error(`npm ${args.join(" ")} failed (exit ${r.status}): ${(r.stderr || r.error?.message || "").trim().slice(0, 2000)}`);
  return r.stdout;
}

export interface Installed {
  tarball: string;
  /** The consumer project: package.json and node_modules/gpt2-cycles. */
  project: string;
  /** node_modules/gpt2-cycles/dist/cli/main.js, what the bin links to. */
  bin: string;
}

/** npm run build, npm pack into `work`, then an offline install of the tarball into work/project. */
export function packAndInstall(work: string): Installed {
  const build = spawnSync(process.execPath, ["--import", "tsx", join(ROOT, "scripts", "build.ts")], { cwd: ROOT, encoding: "utf8" });
  if (build.status !== 0) throw new Error(`npm run build failed: ${build.stderr}`);
  const [{ filename }] = JSON.parse(npm(["pack", "--json", "--silent", "--pack-destination", work], ROOT)) as { filename: string }[];
  const project = join(work, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), `${JSON.stringify({ name: "consumer", private: true, type: "module" })}\n`);
  npm(["install", "--offline", "--no-audit", "--no-fund", "--silent", join(work, filename)], project);
  return { tarball: join(work, filename), project, bin: join(project, "node_modules", "gpt2-cycles", "dist", "cli", "main.js") };
}
