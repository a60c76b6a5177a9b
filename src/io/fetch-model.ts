import { existsSync, mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "./atomic-write.ts";
import { type DownloadOptions, DownloadError, download, isUpToDate, probe } from "./download.ts";
import { familyMember } from "../model/family.ts";
import { mb } from "./progress.ts";

export const DEFAULT_HUB = "https://huggingface.co";

/** The files of a GPT-2 model directory; generation_config.json is not in every repository. */
export const MODEL_FILES = [
  { name: "config.json", required: true },
  { name: "generation_config.json", required: false },
  { name: "vocab.json", required: true },
  { name: "merges.txt", required: true },
  { name: "model.safetensors", required: true },
] as const;

/** A GPT-2 size's repository (src/model/family.ts); another bare name is taken as OpenAI's (openai-community/), owner/name as is. */
export function repositoryOf(model: string): string {
  return familyMember(model)?.repository ?? (model.includes("/") ? model : `openai-community/${model}`);
}

export interface FetchOptions extends DownloadOptions {
  repository: string;
  revision: string;
  dir: string;
  endpoint: string;
  log: (line: string) => void;
}

export interface FetchedFile {
  name: string;
  status: "downloaded" | "resumed" | "up-to-date" | "absent";
  bytesTransferred: number;
}

/** Which remote version each verified file is: lets a rerun skip files without re-hashing them. */
type Manifest = Record<string, string>;
const MANIFEST = ".fetch-manifest.json";

/** Fetches a model's files into `dir`, skipping those already there and verified. */
export async function fetchModel(o: FetchOptions): Promise<FetchedFile[]> {
  mkdirSync(o.dir, { recursive: true });
  const manifestPath = join(o.dir, MANIFEST);
  const manifest: Manifest = existsSync(manifestPath) ? JSON.parse(readFileSync(manifestPath, "utf8")) : {};
  const results: FetchedFile[] = [];
  for (const file of MODEL_FILES) {
    const url = `${o.endpoint.replace(/\/+$/, "")}/${o.repository}/resolve/${encodeURIComponent(o.revision)}/${file.name}`;
    const label = file.name;
    let info;
    try {
      info = await probe(url, `${o.repository}@${o.revision}: ${file.name}`, o);
    } catch (err) {
      if (!file.required && err instanceof DownloadError && err.message.includes("(404)")) {
        o.log(`${label.padEnd(24)} not in this repository (optional)`);
        results.push({ name: file.name, status: "absent", bytesTransferred: 0 });
        continue;
      }
      throw err;
    }
    const dest = join(o.dir, file.name);
    if (isUpToDate(dest, info, manifest[file.name])) {
      o.log(`${label.padEnd(24)} up to date`);
      results.push({ name: file.name, status: "up-to-date", bytesTransferred: 0 });
    } else {
      const r = await download(url, dest, label, o);
      o.log(`${label.padEnd(24)} ${r.status} (${mb(r.bytesTransferred)} transferred${info.sha256 ? ", SHA-256 verified" : ", size verified"})`);
      results.push({ name: file.name, status: r.status, bytesTransferred: r.bytesTransferred });
      info = r.info;
    }
    manifest[file.name] = info.identity;
    writeFileAtomic(manifestPath, JSON.stringify(manifest, null, 2));
  }
  return results;
}
