import { renameSync, rmSync, writeFileSync } from "node:fs";

/** Writes `path` through a temporary file and a rename, so it never holds a half-written file. */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, content);
    renameSync(tmp, path);
  } catch (err) {
    rmSync(tmp, { force: true });
    throw err;
  }
}
