import { existsSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";

/**
 * A file to be written later, reserved now: its temporary file is created at once, so a path that
 * cannot be written fails before any work is done; `commit` fills it and renames it into place, so
 * `path` never holds a half-written file; `discard` removes what was reserved.
 */
export class PendingFile {
  private readonly tmp: string;

  constructor(readonly path: string) {
    if (existsSync(path) && statSync(path).isDirectory()) throw new Error(`${path} is a directory`);
    this.tmp = `${path}.tmp-${process.pid}`;
    writeFileSync(this.tmp, "");
  }

  commit(content: string | Uint8Array): void {
    try {
      writeFileSync(this.tmp, content);
      renameSync(this.tmp, this.path);
    } catch (err) {
      this.discard();
      throw err;
    }
  }

  discard(): void {
    rmSync(this.tmp, { force: true });
  }
}

/** Writes `path` through a temporary file and a rename, so it never holds a half-written file. */
export function writeFileAtomic(path: string, content: string | Uint8Array): void {
  new PendingFile(path).commit(content);
}
