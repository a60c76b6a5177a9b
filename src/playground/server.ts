import { createReadStream, realpathSync, statSync } from "node:fs";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import { extname, join, posix, sep } from "node:path";

/*
 * The playground's static server: the page, its browser build, the vendored tokenizer and one
 * model directory, read-only, under fixed URL prefixes and nothing outside them. Every response
 * makes the page cross-origin isolated (COOP + COEP), which SharedArrayBuffer — and so the
 * engine's threads and shared WebAssembly memory — requires. Range requests let the page read a
 * checkpoint tensor by tensor.
 */

/** URL prefix → directory on disk. A prefix of "" serves the page itself at the root. */
export type Roots = Record<string, string>;

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".map": "application/json",
  ".json": "application/json; charset=utf-8",
  ".bpe": "text/plain; charset=utf-8",
  ".txt": "text/plain; charset=utf-8",
  ".png": "image/png",
};

const ISOLATION = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
  "Cross-Origin-Resource-Policy": "same-origin",
  "X-Content-Type-Options": "nosniff",
  "Cache-Control": "no-cache",
};

/** The file a URL path names under the roots, or null: unknown prefix, `..`, a symlink out, or no such file. */
export function resolveFile(roots: Roots, urlPath: string): string | null {
  let path: string;
  try {
    path = decodeURIComponent(urlPath);
  } catch {
    return null;
  }
  if (!path.startsWith("/") || path.includes("\0") || path.includes("\\")) return null;
  if (path.split("/").includes("..")) return null;
  const normal = posix.normalize(path);
  const prefixes = Object.keys(roots).sort((a, b) => b.length - a.length);
  const prefix = prefixes.find((p) => normal === p || normal.startsWith(`${p}/`));
  if (prefix === undefined) return null;
  let rest = normal.slice(prefix.length + 1);
  if (rest === "" || rest.endsWith("/")) rest += "index.html";
  try {
    const root = realpathSync(roots[prefix]);
    const file = realpathSync(join(root, rest));
    if (!file.startsWith(root + sep) || !statSync(file).isFile()) return null;
    return file;
  } catch {
    return null;
  }
}

/** A single `bytes=` range of a file of `size` bytes as [start, end] inclusive; null: serve it whole; "bad": unsatisfiable. */
export function parseRange(header: string | undefined, size: number): [number, number] | null | "bad" {
  if (header === undefined) return null;
  const m = /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (m === null || (m[1] === "" && m[2] === "")) return null; // several ranges, or another unit: the whole file is a valid answer
  if (m[1] === "") {
    const suffix = Number(m[2]);
    return suffix === 0 ? "bad" : [Math.max(0, size - suffix), size - 1];
  }
  const start = Number(m[1]);
  const end = m[2] === "" ? size - 1 : Math.min(Number(m[2]), size - 1);
  return start >= size || end < start ? "bad" : [start, end];
}

/** What the page asks the server about itself: which model directory it serves (a name, or null). */
export interface ServerInfo {
  model: string | null;
}

function handle(roots: Roots, info: ServerInfo, req: IncomingMessage, res: ServerResponse): void {
  const send = (status: number, text: string, headers: Record<string, string> = {}) => {
    res.writeHead(status, { ...ISOLATION, "Content-Type": "text/plain; charset=utf-8", ...headers });
    res.end(req.method === "HEAD" ? undefined : `${text}\n`);
  };
  if (req.method !== "GET" && req.method !== "HEAD") return send(405, "method not allowed", { Allow: "GET, HEAD" });
  const url = requestUrl(req.url ?? "/");
  if (url === null) return send(400, "bad request target");
  if (url.pathname === "/info.json") {
    // Always 200: a page probing for a model that is not served would log a 404 as an error.
    return send(200, JSON.stringify(info), { "Content-Type": "application/json; charset=utf-8" });
  }
  const file = resolveFile(roots, url.pathname);
  if (file === null) return send(404, "not found");
  const size = statSync(file).size;
  const range = parseRange(req.headers.range, size);
  const type = TYPES[extname(file)] ?? "application/octet-stream";
  if (range === "bad") return send(416, "range not satisfiable", { "Content-Range": `bytes */${size}` });
  const [start, end] = range ?? [0, size - 1];
  const headers: Record<string, string> = { ...ISOLATION, "Content-Type": type, "Accept-Ranges": "bytes", "Content-Length": String(Math.max(0, end - start + 1)) };
  if (range !== null) headers["Content-Range"] = `bytes ${start}-${end}/${size}`;
  res.writeHead(range === null ? 200 : 206, headers);
  if (req.method === "HEAD" || size === 0) {
    res.end();
    return;
  }
  createReadStream(file, { start, end }).on("error", () => res.destroy()).pipe(res);
}

/** A server for `roots`, not yet listening. */
export function playgroundServer(roots: Roots, info: ServerInfo = { model: null }): Server {
  return createServer((req, res) => handle(roots, info, req, res));
}

/** The request target as a URL, or null: a target such as `//x:99999` or `http://[` gets a 400, never an exception that stops the server. */
function requestUrl(target: string): URL | null {
  try {
    return new URL(target, "http://localhost");
  } catch {
    return null;
  }
}
