import { createHash } from "node:crypto";
import { closeSync, existsSync, openSync, readFileSync, readSync, renameSync, rmSync, statSync, writeSync } from "node:fs";
import { writeFileAtomic } from "./atomic-write.ts";
import { Progress, mb } from "./progress.ts";

/*
 * Resumable, verified HTTP downloads. Bytes go to `<file>.part` (with `<file>.part.json`
 * naming the remote version they belong to); a rerun continues with a Range request; only a
 * file whose size and SHA-256 check out is renamed into place, so the final path never holds
 * a partial or corrupt file.
 */

/** A failure the user can act on; the message is the whole story. */
export class DownloadError extends Error {}

export interface DownloadOptions {
  /** Sent as a Bearer token, to the first host only: never after a redirect to another host. */
  token?: string;
  /** Retries after a server error or a cut transfer, with exponential backoff. */
  retries: number;
  retryDelayMs: number;
  progress: "tty" | "lines" | "quiet";
  signal?: AbortSignal;
  /** Where to say "host unreachable": the setting that points elsewhere (HF_ENDPOINT). */
  endpointHint: string;
}

/** What the server says about the file: its version (ETag) and, where published, size and SHA-256. */
export interface RemoteInfo {
  identity: string;
  size: number | null;
  sha256: string | null;
}

export interface DownloadResult {
  status: "downloaded" | "resumed" | "up-to-date";
  bytesTransferred: number;
  info: RemoteInfo;
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

function unquote(etag: string | null): string | null {
  if (etag === null) return null;
  return etag.replace(/^W\//, "").replace(/^"(.*)"$/, "$1");
}

function sha256Of(etag: string | null): string | null {
  return etag !== null && /^[0-9a-f]{64}$/.test(etag) ? etag : null;
}

interface Reply {
  res: Response;
  /** The hub's headers on the first hop of an LFS file: the SHA-256 and the size. */
  linkedEtag: string | null;
  linkedSize: number | null;
}

async function request(url: string, method: "GET" | "HEAD", headers: Record<string, string>, o: DownloadOptions): Promise<Reply> {
  const origin = new URL(url).host;
  let current = url;
  let linkedEtag: string | null = null;
  let linkedSize: number | null = null;
  for (let hop = 0; hop < 10; hop++) {
    const h = { ...headers };
    if (o.token && new URL(current).host === origin) h.authorization = `Bearer ${o.token}`;
    let res: Response;
    try {
      res = await fetch(current, { method, headers: h, redirect: "manual", signal: o.signal });
    } catch (err) {
      throw networkError(err, current, o);
    }
    linkedEtag ??= unquote(res.headers.get("x-linked-etag"));
    const size = res.headers.get("x-linked-size");
    if (linkedSize === null && size !== null) linkedSize = Number(size);
    if (!REDIRECTS.has(res.status)) return { res, linkedEtag, linkedSize };
    await res.body?.cancel();
    const location = res.headers.get("location");
    if (location === null) throw new DownloadError(`${current}: redirect ${res.status} without a Location header`);
    current = new URL(location, current).href;
  }
  throw new DownloadError(`${url}: more than 10 redirects`);
}

function networkError(err: unknown, url: string, o: DownloadOptions): Error {
  if (o.signal?.aborted) return new DownloadError("interrupted");
  // undici wraps the socket error; with several addresses tried it is an AggregateError.
  const cause = (err as { cause?: { code?: string; message?: string; errors?: { code?: string }[] } }).cause;
  const code = cause?.code ?? cause?.errors?.[0]?.code ?? cause?.message ?? (err as Error).message;
  return new DownloadError(`cannot reach ${new URL(url).host} (${code}): check the network connection, or set ${o.endpointHint} to a mirror`);
}

/** Turns an HTTP error status into the error a user can act on; null for statuses worth a retry. */
function statusError(status: number, what: string): DownloadError | null {
  if (status === 401 || status === 403) return new DownloadError(`${what}: access denied (${status}); set HF_TOKEN to a Hugging Face token that can read this model`);
  if (status === 404) return new DownloadError(`${what}: not found (404); check the model name and --revision`);
  if (status === 429 || status >= 500) return null;
  return new DownloadError(`${what}: unexpected HTTP ${status}`);
}

/** The remote file's version, size and hash, without downloading it. */
export async function probe(url: string, what: string, o: DownloadOptions): Promise<RemoteInfo> {
  for (let attempt = 0; ; attempt++) {
    const { res, linkedEtag, linkedSize } = await request(url, "HEAD", {}, o);
    if (res.ok) {
      const etag = unquote(res.headers.get("etag"));
      const length = res.headers.get("content-length");
      return { identity: linkedEtag ?? etag ?? "", size: linkedSize ?? (length === null ? null : Number(length)), sha256: sha256Of(linkedEtag) ?? sha256Of(etag) };
    }
    const error = statusError(res.status, what);
    if (error !== null || attempt >= o.retries) throw error ?? new DownloadError(`${what}: server error ${res.status} after ${attempt + 1} tries; try again later`);
    await backoff(attempt, o);
  }
}

async function backoff(attempt: number, o: DownloadOptions): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, o.retryDelayMs * 2 ** attempt));
}

function hashFile(path: string, hash: ReturnType<typeof createHash>): void {
  const fd = openSync(path, "r");
  try {
    const buf = Buffer.alloc(1 << 22);
    for (let n; (n = readSync(fd, buf, 0, buf.length, null)) > 0; ) hash.update(buf.subarray(0, n));
  } finally {
    closeSync(fd);
  }
}

/** Whether `dest` already holds the remote file: same size, and the same SHA-256 where one is published. */
export function isUpToDate(dest: string, info: RemoteInfo, recordedIdentity: string | undefined): boolean {
  if (!existsSync(dest)) return false;
  if (info.size !== null && statSync(dest).size !== info.size) return false;
  if (info.sha256 !== null) {
    const hash = createHash("sha256");
    hashFile(dest, hash);
    return hash.digest("hex") === info.sha256;
  }
  return recordedIdentity !== undefined && recordedIdentity === info.identity;
}

/**
 * Downloads `url` to `dest` through `dest.part`, resuming a part left by an earlier run when it
 * belongs to the same remote version, retrying server errors and cut transfers.
 */
export async function download(url: string, dest: string, label: string, o: DownloadOptions): Promise<DownloadResult> {
  const part = `${dest}.part`;
  const partMeta = `${part}.json`;
  let transferred = 0;
  let resumed = false;
  for (let attempt = 0; ; attempt++) {
    const have = existsSync(part) ? statSync(part).size : 0;
    const partIdentity = have > 0 && existsSync(partMeta) ? (JSON.parse(readFileSync(partMeta, "utf8")) as { identity: string }).identity : null;
    const headers: Record<string, string> = partIdentity !== null ? { range: `bytes=${have}-` } : {};
    const { res, linkedEtag, linkedSize } = await request(url, "GET", headers, o);
    const identity = linkedEtag ?? unquote(res.headers.get("etag")) ?? "";
    if (!res.ok) {
      await res.body?.cancel();
      if (res.status === 416) {
        rmSync(part, { force: true }); // our part no longer fits the remote file: start over
        continue;
      }
      const error = statusError(res.status, label);
      if (error !== null || attempt >= o.retries) throw error ?? new DownloadError(`${label}: server error ${res.status} after ${attempt + 1} tries; try again later`);
      await backoff(attempt, o);
      continue;
    }
    // Append only to a part of the same remote version, at exactly the offset asked for.
    const range = /^bytes (\d+)-\d+\/(\d+)$/.exec(res.headers.get("content-range") ?? "");
    const appending = res.status === 206 && range !== null && Number(range[1]) === have && identity === partIdentity;
    if (res.status === 206 && !appending) {
      await res.body?.cancel();
      rmSync(part, { force: true });
      continue;
    }
    const start = appending ? have : 0;
    const length = Number(res.headers.get("content-length") ?? NaN);
    const total = linkedSize ?? (range !== null ? Number(range[2]) : start + length);
    const info: RemoteInfo = { identity, size: Number.isFinite(total) ? total : null, sha256: sha256Of(linkedEtag) ?? sha256Of(identity) };
    writeFileAtomic(partMeta, JSON.stringify({ identity }));
    resumed ||= appending;

    const hash = createHash("sha256");
    if (appending) hashFile(part, hash);
    const fd = openSync(part, appending ? "a" : "w");
    let done = start;
    const progress = new Progress(label, info.size ?? 0, o.progress);
    progress.start(done);
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        writeSync(fd, chunk);
        hash.update(chunk);
        done += chunk.length;
        transferred += chunk.length;
        progress.update(done);
      }
    } catch (err) {
      closeSync(fd);
      if (o.signal?.aborted) throw new DownloadError(`interrupted: ${mb(done)} kept in ${part}; run the same command again to resume`);
      if ((err as { code?: string }).code === "ENOSPC") throw new DownloadError(`disk full while writing ${part}: free some space and run again; the download resumes where it stopped`);
      if (attempt >= o.retries) throw new DownloadError(`${label}: transfer cut at ${mb(done)} (${(err as Error).message}); run again to resume from ${part}`);
      await backoff(attempt, o);
      continue;
    }
    closeSync(fd);
    progress.finish();

    if (info.size !== null && done !== info.size) {
      if (done < info.size && attempt < o.retries) continue; // the server closed early: resume
      rmSync(part, { force: true });
      throw new DownloadError(`${label}: received ${done} bytes, expected ${info.size}; the partial file was deleted, run again`);
    }
    const digest = hash.digest("hex");
    if (info.sha256 !== null && digest !== info.sha256) {
      rmSync(part, { force: true });
      rmSync(partMeta, { force: true });
      throw new DownloadError(`${label}: SHA-256 mismatch (expected ${info.sha256}, got ${digest}); the corrupt download was deleted, run again`);
    }
    renameSync(part, dest);
    rmSync(partMeta, { force: true });
    return { status: resumed ? "resumed" : "downloaded", bytesTransferred: transferred, info };
  }
}
