// The playground's static server: the roots and nothing outside them, Range as RFC 9110 has it,
// the headers that make the page cross-origin isolated, and `npm run playground`'s bad input.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { type Server, createServer, request } from "node:http";
import { type AddressInfo, connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildPlayground } from "../src/playground/build.ts";
import { parseRange, playgroundServer } from "../src/playground/server.ts";

const ROOT = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "playground-server-"));
const site = join(dir, "site");
const model = join(dir, "model");
mkdirSync(site);
mkdirSync(model);
writeFileSync(join(site, "index.html"), "<!doctype html><title>t</title>");
const bytes = Buffer.from(Array.from({ length: 1000 }, (_, i) => i % 251));
writeFileSync(join(model, "model.safetensors"), bytes);
writeFileSync(join(dir, "secret.txt"), "outside the roots");
symlinkSync(join(dir, "secret.txt"), join(model, "link.txt"));

let server: Server;
let base = "";
beforeAll(async () => {
  server = playgroundServer({ "": site, "/model": model });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

/** A raw request: the path goes out exactly as written (fetch would normalise `..` away). */
function get(path: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(`${base}/`, { method, path, headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("the playground server", () => {
  it("serves the page at / and the model under /model/, with COOP, COEP and CORP on every answer", async () => {
    for (const path of ["/", "/model/model.safetensors", "/nope"]) {
      const r = await get(path);
      expect(r.headers["cross-origin-opener-policy"], path).toBe("same-origin");
      expect(r.headers["cross-origin-embedder-policy"], path).toBe("require-corp");
      expect(r.headers["cross-origin-resource-policy"], path).toBe("same-origin");
    }
    const page = await get("/");
    expect(page.status).toBe(200);
    expect(page.headers["content-type"]).toBe("text/html; charset=utf-8");
    const whole = await get("/model/model.safetensors");
    expect(whole.status).toBe(200);
    expect(whole.headers["accept-ranges"]).toBe("bytes");
    expect(whole.body.equals(bytes)).toBe(true);
  });

  it("answers Range requests with 206 and exactly the bytes asked for", async () => {
    const cases: [string, number, number][] = [["bytes=0-7", 0, 7], ["bytes=100-199", 100, 199], ["bytes=990-", 990, 999], ["bytes=-10", 990, 999], ["bytes=995-5000", 995, 999]];
    for (const [range, start, end] of cases) {
      const r = await get("/model/model.safetensors", { Range: range });
      expect(r.status, range).toBe(206);
      expect(r.headers["content-range"], range).toBe(`bytes ${start}-${end}/1000`);
      expect(r.headers["content-length"], range).toBe(String(end - start + 1));
      expect(r.body.equals(bytes.subarray(start, end + 1)), range).toBe(true);
    }
    const head = await get("/model/model.safetensors", { Range: "bytes=0-7" }, "HEAD");
    expect([head.status, head.headers["content-length"], head.body.length]).toEqual([206, "8", 0]);
  });

  it("416 for a range past the end; the whole file for a header it does not take", async () => {
    const past = await get("/model/model.safetensors", { Range: "bytes=1000-1001" });
    expect([past.status, past.headers["content-range"]]).toEqual([416, "bytes */1000"]);
    expect((await get("/model/model.safetensors", { Range: "bytes=-0" })).status).toBe(416);
    const several = await get("/model/model.safetensors", { Range: "bytes=0-1,5-6" });
    expect([several.status, several.body.length]).toEqual([200, 1000]);
    expect(parseRange("items=0-5", 10)).toBeNull();
    expect(parseRange("bytes=5-2", 10)).toBe("bad");
  });

  it.each([
    "/../secret.txt", "/model/../secret.txt", "/model/%2e%2e/secret.txt", "/%2e%2e/%2e%2e/etc/passwd", "/model/..%2fsecret.txt",
    "//etc/passwd", "/model//etc/passwd", "/model/%2fetc%2fpasswd", "/model/link.txt", "/model/..\\secret.txt", "/model/%00", "/other/x", "/model/",
  ])("404 for %s (outside the roots, not a file, or a link out of them)", async (path) => {
    const r = await get(path);
    expect(r.status).toBe(404);
    expect(r.body.toString()).not.toContain("outside the roots");
  });

  it("/info.json says which model is served, with 200 either way (a page's probe logs no 404)", async () => {
    const r = await get("/info.json");
    expect([r.status, JSON.parse(r.body.toString())]).toEqual([200, { model: null }]);
    expect(r.headers["cross-origin-embedder-policy"]).toBe("require-corp");
  });

  it("405 for anything but GET and HEAD", async () => {
    expect((await get("/", {}, "POST")).status).toBe(405);
  });

  it("answers a corpus of malformed raw requests with a status code each, survives early disconnects, and keeps serving", async () => {
    const port = (server.address() as AddressInfo).port;
    /** Writes `raw` on a fresh connection; resolves with what came back before the server closed it (or 2 s passed). */
    const send = (raw: string | Buffer, hangUp = false): Promise<string> => new Promise((resolve) => {
      const socket = connect(port, "127.0.0.1");
      let answer = "";
      const done = () => { socket.destroy(); resolve(answer); };
      socket.on("data", (c: Buffer) => (answer += c.toString("latin1")));
      socket.on("error", done);
      socket.on("close", done);
      socket.setTimeout(2000, done);
      socket.write(raw, () => { if (hangUp) socket.destroy(); });
    });
    const corpus: string[] = [
      "GARBAGE\r\n\r\n",
      "GET\r\n\r\n",
      "GET / HTTP/9.9\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + "a".repeat(100_000) + "\r\n\r\n",
      "GET /" + "a".repeat(70_000) + " HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\nBad\0Header: 1\r\n\r\n",
      "GET /model/model.safetensors HTTP/1.1\r\nHost: x\r\nRange: bytes=99999999999999999999999-\r\nConnection: close\r\n\r\n",
      "GET /model/model.safetensors HTTP/1.1\r\nHost: x\r\nRange: bytes=-0\r\nConnection: close\r\n\r\n",
      "GET /model/model.safetensors HTTP/1.1\r\nHost: x\r\nRange: bytes=5-2,x-y\r\nConnection: close\r\n\r\n",
      "GET /%00 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /%ff%fe%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /model/%2e%2e/secret.txt HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET /model/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "GET //[::1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
      "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",
    ];
    for (const raw of corpus) {
      const answer = await send(raw);
      expect(answer, JSON.stringify(raw.slice(0, 60))).toMatch(/^HTTP\/1\.1 [2-5]\d\d /);
      expect(answer).not.toContain("outside the roots");
    }
    // Hanging up mid-request and mid-response.
    await send("GET /model/model.safetensors HTTP/1.1\r\nHost: x\r\n", true);
    await send("GET /model/model.safetensors HTTP/1.1\r\nHost: x\r\n\r\n", true);
    expect((await get("/index.html")).status).toBe(200);
    expect((await get("/model/model.safetensors", { range: "bytes=0-3" })).body).toEqual(bytes.subarray(0, 4));
  });

  it("400 for a request target that is no URL, and it keeps serving", async () => {
    for (const target of ["//x:99999", "http://[", "//[", "//%", "http://a:-1/"]) expect((await get(target)).status, target).toBe(400);
    expect((await get("/index.html")).status).toBe(200);
  });
});

describe("npm run playground", () => {
  function playground(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
    return new Promise((resolve) => {
      const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "playground", ...args], { cwd: ROOT });
      let stdout = "";
      let stderr = "";
      child.stdout.on("data", (c) => (stdout += c));
      child.stderr.on("data", (c) => (stderr += c));
      child.on("exit", (code) => resolve({ code, stdout, stderr }));
    });
  }

  it("a port in use: one line saying so, exit 2", async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, "127.0.0.1", resolve));
    const port = (busy.address() as AddressInfo).port;
    const r = await playground(["--port", String(port)]);
    busy.close();
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(`playground: port ${port} on 127.0.0.1 is in use: choose another with --port N\n`);
  });

  it.each([
    [["--model", join(dir, "missing")], /^playground: --model .*missing: no such directory/],
    [["--model", site], /^playground: --model .*site: needs config.json and model.safetensors/],
    [["--port", "70000"], /^playground: --port must be 0..65535, got 70000\n$/],
    [["--bogus"], /^playground: unknown flag --bogus/],
  ])("%j: one line, exit 2", async (args, message) => {
    const r = await playground(args);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
  });

  it("builds the page with tsc alone: browser ES modules, .ts imports rewritten, nothing from node:", () => {
    const out = mkdtempSync(join(tmpdir(), "playground-build-"));
    buildPlayground(out);
    const files = readdirSync(out, { recursive: true, encoding: "utf8" }).filter((f) => f.endsWith(".js"));
    expect(files).toEqual(expect.arrayContaining([join("playground", "page.js"), join("playground", "engine-worker.js"), join("kernels", "engine.js"), join("platform", "browser.js")]));
    for (const f of files) {
      const js = readFileSync(join(out, f), "utf8");
      expect(js, f).not.toMatch(/from "[^"]+\.ts"/);
      expect(js, f).not.toMatch(/["']node:/);
    }
    expect(files.some((f) => f.includes("platform/node"))).toBe(false);
  });
});
