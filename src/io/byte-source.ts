/*
 * A file's bytes by range, wherever the file is, so the safetensors reader and all its checks
 * work on every source: a path on disk (platform/node.ts), an HTTP Range request or a Blob (a
 * File picked in a page), the last two with web APIs that Node has too.
 */

/** A file's bytes by range, wherever the file is: on disk, behind HTTP, or a File picked in a page. */
export interface ByteSource {
  /** What messages name: a path, a URL, a file name. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes from `position`; fails, naming the source, if fewer are there. */
  read(position: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

/** A ByteSource's failure to deliver: the message names the source and the byte range. */
export function shortRead(name: string, position: number, wanted: number, got: number): Error {
  return new Error(`${name}: unexpected end of file at byte ${position + got} (wanted ${wanted} bytes from ${position}): truncated?`);
}

/** A Blob (a File the user picked, or any Blob) read by slices, never whole. */
export function blobSource(blob: Blob, name: string): ByteSource {
  return {
    name,
    size: blob.size,
    async read(position, length) {
      const bytes = new Uint8Array(await blob.slice(position, position + length).arrayBuffer());
      if (bytes.length !== length) throw shortRead(name, position, length, bytes.length);
      return bytes;
    },
    async close() {},
  };
}

/**
 * A file behind HTTP read with Range requests. Its size comes from a HEAD request; a server that
 * ignores Range (answers 200) is read anyway, but only if the whole body is what was asked for.
 */
export async function httpSource(url: string, name = url): Promise<ByteSource> {
  const head = await fetch(url, { method: "HEAD" });
  if (!head.ok) throw new Error(`${name}: HTTP ${head.status} ${head.statusText}`.trimEnd());
  const size = Number(head.headers.get("content-length"));
  if (!Number.isSafeInteger(size)) throw new Error(`${name}: the server sent no Content-Length, so the file's size is unknown`);
  return {
    name,
    size,
    async read(position, length) {
      if (length === 0) return new Uint8Array(0);
      const response = await fetch(url, { headers: { Range: `bytes=${position}-${position + length - 1}` } });
      if (response.status !== 206 && !(response.status === 200 && position === 0 && length === size)) {
        throw new Error(`${name}: HTTP ${response.status} for bytes ${position}..${position + length - 1} (the server must support Range requests)`);
      }
      const bytes = new Uint8Array(await response.arrayBuffer());
      if (bytes.length !== length) throw shortRead(name, position, length, bytes.length);
      return bytes;
    },
    async close() {},
  };
}
