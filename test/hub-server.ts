// A stand-in for the Hugging Face hub on 127.0.0.1, for the download tests: /<repo>/resolve/<rev>/<file>
// answers small files itself (ETag = a git-style SHA-1) and sends LFS files (X-Linked-Etag = SHA-256,
// X-Linked-Size) by a 302 to a second server, the "CDN", on another port, which honours Range.
import { createHash } from "node:crypto";
import { type IncomingMessage, type Server, type ServerResponse, createServer } from "node:http";
import type { AddressInfo } from "node:net";

export interface HubBehaviour {
  /** Bearer token the hub requires (none: public). */
  token?: string;
  /** Cut the CDN's next `cutTimes` GETs after this many bytes. */
  cutAfter?: number;
  cutTimes?: number;
  ignoreRange?: boolean;
  /** Flip a byte in what the CDN sends. */
  corrupt?: boolean;
  /** Answer the hub's next N requests with 503. */
  unavailable?: number;
  /** Send this many bytes of a CDN body, then nothing more (the connection hangs). */
  stallAfter?: number;
}

export interface LoggedRequest {
  server: "hub" | "cdn";
  method: string;
  path: string;
  range?: string;
  authorization?: string;
  bytesSent: number;
}

export interface Hub {
  endpoint: string;
  requests: LoggedRequest[];
  behaviour: HubBehaviour;
  close(): Promise<void>;
}

const sha256 = (b: Buffer) => createHash("sha256").update(b).digest("hex");

export async function startHub(repository: string, revision: string, files: Record<string, Buffer>, lfs: Set<string>): Promise<Hub> {
  const requests: LoggedRequest[] = [];
  const behaviour: HubBehaviour = {};
  const bySha = new Map([...lfs].map((name) => [sha256(files[name]), files[name]]));
  const listen = async (server: Server) => {
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return (server.address() as AddressInfo).port;
  };
  const log = (server: "hub" | "cdn", req: IncomingMessage): LoggedRequest => {
    const entry = { server, method: req.method!, path: req.url!, range: req.headers.range, authorization: req.headers.authorization, bytesSent: 0 };
    requests.push(entry);
    return entry;
  };

  const cdn = createServer((req, res) => {
    const entry = log("cdn", req);
    const body = bySha.get(req.url!.split("/")[2]);
    if (body === undefined) return void res.writeHead(404).end();
    const etag = `"${sha256(body)}"`;
    let start = 0;
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? "");
    if (range !== null && !behaviour.ignoreRange) {
      start = Number(range[1]);
      if (start >= body.length) return void res.writeHead(416, { "content-range": `bytes */${body.length}` }).end();
      res.writeHead(206, { etag, "content-length": body.length - start, "content-range": `bytes ${start}-${body.length - 1}/${body.length}` });
    } else {
      res.writeHead(200, { etag, "content-length": body.length, "accept-ranges": "bytes" });
    }
    if (req.method === "HEAD") return void res.end();
    let out = Buffer.from(body.subarray(start));
    if (behaviour.corrupt) out[Math.floor(out.length / 2)] ^= 0xff;
    if (behaviour.stallAfter !== undefined) {
      entry.bytesSent = behaviour.stallAfter;
      res.write(out.subarray(0, behaviour.stallAfter));
      return;
    }
    if (behaviour.cutAfter !== undefined && (behaviour.cutTimes ?? 0) > 0) {
      behaviour.cutTimes!--;
      entry.bytesSent = behaviour.cutAfter;
      res.write(out.subarray(0, behaviour.cutAfter), () => res.socket?.destroy());
      return;
    }
    entry.bytesSent = out.length;
    res.end(out);
  });
  const cdnPort = await listen(cdn);

  const hub = createServer((req: IncomingMessage, res: ServerResponse) => {
    log("hub", req);
    const prefix = `/${repository}/resolve/${revision}/`;
    if ((behaviour.unavailable ?? 0) > 0) {
      behaviour.unavailable!--;
      return void res.writeHead(503).end();
    }
    if (behaviour.token !== undefined && req.headers.authorization !== `Bearer ${behaviour.token}`) return void res.writeHead(401).end();
    const name = req.url!.startsWith(prefix) ? req.url!.slice(prefix.length) : null;
    const body = name === null ? undefined : files[name];
    if (name === null || body === undefined) return void res.writeHead(404, { "x-error-code": "EntryNotFound" }).end();
    if (lfs.has(name)) {
      const sha = sha256(body);
      return void res
        .writeHead(302, { location: `http://127.0.0.1:${cdnPort}/lfs/${sha}/${name}`, "x-linked-etag": `"${sha}"`, "x-linked-size": body.length, etag: `"${sha}"` })
        .end();
    }
    res.writeHead(200, { etag: `"${createHash("sha1").update(body).digest("hex")}"`, "content-length": body.length });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  const hubPort = await listen(hub);

  return {
    endpoint: `http://127.0.0.1:${hubPort}`,
    requests,
    behaviour,
    close: async () => {
      await Promise.all([hub, cdn].map((s) => new Promise((resolve) => { s.closeAllConnections(); s.close(resolve); })));
    },
  };
}
