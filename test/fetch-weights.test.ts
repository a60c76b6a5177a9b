// gpt2-cycles fetch-weights (src/cli/fetch-weights.ts) against a local stand-in for the hub: no internet needed.
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { VENDORED_TOKENIZER_DIR, loadModel } from "../src/node.ts";
import { FIXTURES, readReference } from "./helpers.ts";
import { type Hub, startHub } from "./hub-server.ts";

const ROOT = join(import.meta.dirname, "..");
const REPO = "openai-community/gpt2";
const files: Record<string, Buffer> = {
  "config.json": readFileSync(join(FIXTURES, "tiny-hot", "config.json")),
  "generation_config.json": Buffer.from(JSON.stringify({ bos_token_id: 319, eos_token_id: 319 })),
  "vocab.json": readFileSync(join(VENDORED_TOKENIZER_DIR, "encoder.json")),
  "merges.txt": readFileSync(join(VENDORED_TOKENIZER_DIR, "vocab.bpe")),
  "model.safetensors": readFileSync(join(FIXTURES, "tiny-hot", "model.safetensors")),
};
const MODEL_SIZE = files["model.safetensors"].length;
let hub: Hub;

function fetchWeights(dir: string, env: Record<string, string> = {}, ...args: string[]): Promise<{ code: number; stderr: string }> {
  return fetchWeightsUntil(dir, env, args);
}

/** Runs the script; `interruptWhen` is polled and, once true, the script gets a Ctrl-C (SIGINT). */
function fetchWeightsUntil(dir: string, env: Record<string, string>, args: string[], interruptWhen?: () => boolean): Promise<{ code: number; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "fetch-weights", "--dir", dir, ...args], {
      cwd: ROOT,
      env: { ...process.env, HF_ENDPOINT: hub.endpoint, FETCH_RETRY_DELAY_MS: "1", HF_TOKEN: "", ...env },
    });
    let stderr = "";
    child.stderr.on("data", (d) => (stderr += d));
    const poll = interruptWhen && setInterval(() => {
      if (!interruptWhen()) return;
      child.kill("SIGINT"); // once: a second Ctrl-C would end the process the hard way
      clearInterval(poll);
    }, 20);
    child.on("close", (code) => {
      if (poll) clearInterval(poll);
      resolve({ code: code ?? -1, stderr });
    });
  });
}

const freshDir = () => mkdtempSync(join(tmpdir(), "fetch-"));
const gets = (path: string) => hub.requests.filter((r) => r.method === "GET" && r.path.endsWith(path));

beforeAll(async () => {
  hub = await startHub(REPO, "main", files, new Set(["model.safetensors"]));
});
afterAll(() => hub.close());
beforeEach(() => {
  hub.requests.length = 0;
  for (const k of Object.keys(hub.behaviour)) delete hub.behaviour[k as keyof typeof hub.behaviour];
});

describe("fetch-weights", () => {
  it("downloads the model through the hub's redirect; the directory then loads and generates like the fixture", async () => {
    const dir = freshDir();
    hub.behaviour.token = "secret";
    const r = await fetchWeights(dir, { HF_TOKEN: "secret" });
    expect(r.code, r.stderr).toBe(0);
    for (const [name, body] of Object.entries(files)) expect(readFileSync(join(dir, name)).equals(body), name).toBe(true);
    expect(r.stderr).toContain("SHA-256 verified");
    expect(r.stderr).toMatch(/loads: 3 layers, 4 heads, d=48/);
    const model = await loadModel(dir);
    const [c] = readReference("tiny-hot").cases;
    expect(model.forward(c.ids).length).toBe(320);
    // The token goes to the hub, never to the host it redirects to.
    expect(hub.requests.filter((q) => q.server === "hub").every((q) => q.authorization === "Bearer secret")).toBe(true);
    const cdn = hub.requests.filter((q) => q.server === "cdn");
    expect(cdn.length).toBeGreaterThan(0);
    expect(cdn.every((q) => q.authorization === undefined)).toBe(true);
    expect(existsSync(join(dir, "model.safetensors.part"))).toBe(false);
  });

  it("resumes a cut transfer: the second run asks only for the remaining bytes", async () => {
    const dir = freshDir();
    // Four retries within the run each resume too, but 5 × 20 kB does not reach the end.
    hub.behaviour.cutAfter = 20_000;
    hub.behaviour.cutTimes = 99;
    const first = await fetchWeights(dir);
    expect(first.code, first.stderr).toBe(1);
    expect(first.stderr).toMatch(/model.safetensors: transfer cut at .* run again to resume/);
    expect(first.stderr.trim().split("\n").filter((l) => l.startsWith("fetch-weights:"))).toHaveLength(1);
    expect(existsSync(join(dir, "model.safetensors"))).toBe(false);
    const kept = statSync(join(dir, "model.safetensors.part")).size;
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThan(MODEL_SIZE);

    hub.requests.length = 0;
    hub.behaviour.cutTimes = 0;
    const second = await fetchWeights(dir);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stderr).toMatch(/model.safetensors\s+resumed/);
    const [resume] = gets("/model.safetensors").filter((q) => q.server === "cdn");
    expect(resume.range).toBe(`bytes=${kept}-`);
    expect(resume.bytesSent).toBe(MODEL_SIZE - kept);
    expect(readFileSync(join(dir, "model.safetensors")).equals(files["model.safetensors"])).toBe(true);
  });

  it("starts over cleanly when the server ignores Range", async () => {
    const dir = freshDir();
    hub.behaviour.cutAfter = 50_000;
    hub.behaviour.cutTimes = 99;
    await fetchWeights(dir);
    hub.behaviour.cutTimes = 0;
    hub.behaviour.ignoreRange = true;
    hub.requests.length = 0;
    const r = await fetchWeights(dir);
    expect(r.code, r.stderr).toBe(0);
    const [full] = gets("/model.safetensors").filter((q) => q.server === "cdn");
    expect(full.range).toMatch(/^bytes=\d+-$/);
    expect(full.bytesSent).toBe(MODEL_SIZE);
    expect(readFileSync(join(dir, "model.safetensors")).equals(files["model.safetensors"])).toBe(true);
  });

  it("starts over when the part belongs to another version of the remote file", async () => {
    const dir = freshDir();
    writeFileSync(join(dir, "model.safetensors.part"), Buffer.alloc(1000, 7));
    writeFileSync(join(dir, "model.safetensors.part.json"), JSON.stringify({ identity: "an-older-version" }));
    const r = await fetchWeights(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, "model.safetensors")).equals(files["model.safetensors"])).toBe(true);
  });

  it("rejects a corrupted body: hash mismatch, no final file, no part left", async () => {
    const dir = freshDir();
    hub.behaviour.corrupt = true;
    const r = await fetchWeights(dir);
    expect(r.code).toBe(1);
    const expected = createHash("sha256").update(files["model.safetensors"]).digest("hex");
    expect(r.stderr).toContain(`model.safetensors: SHA-256 mismatch (expected ${expected}`);
    expect(existsSync(join(dir, "model.safetensors"))).toBe(false);
    expect(existsSync(join(dir, "model.safetensors.part"))).toBe(false);
  });

  it("404: an unknown model or revision is one clear line", async () => {
    const r = await fetchWeights(freshDir(), {}, "--model", "nobody/nothing");
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split("\n").at(-1)).toBe("fetch-weights: nobody/nothing@main: config.json: not found (404); check the model name and --revision");
    const rev = await fetchWeights(freshDir(), {}, "--revision", "v9");
    expect(rev.stderr).toContain("openai-community/gpt2@v9: config.json: not found (404)");
  });

  it("401: a gated model without a token says to set HF_TOKEN", async () => {
    hub.behaviour.token = "secret";
    const r = await fetchWeights(freshDir());
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/access denied \(401\); set HF_TOKEN/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("a rerun with everything present downloads nothing and says so", async () => {
    const dir = freshDir();
    expect((await fetchWeights(dir)).code).toBe(0);
    hub.requests.length = 0;
    const r = await fetchWeights(dir);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain("already downloaded and verified: nothing fetched");
    expect(hub.requests.filter((q) => q.method === "GET")).toEqual([]);
  });

  it("retries server errors with backoff, then succeeds", async () => {
    hub.behaviour.unavailable = 3;
    const r = await fetchWeights(freshDir());
    expect(r.code, r.stderr).toBe(0);
    expect(hub.requests.filter((q) => q.server === "hub").slice(0, 4).map((q) => q.path)).toEqual(Array(4).fill(`/${REPO}/resolve/main/config.json`));
  });

  it("Ctrl-C leaves a resumable part and says so; the next run finishes it", async () => {
    const dir = freshDir();
    hub.behaviour.stallAfter = 30_000;
    const part = join(dir, "model.safetensors.part");
    const r = await fetchWeightsUntil(dir, {}, [], () => existsSync(part) && statSync(part).size >= 30_000);
    expect(r.code).toBe(130);
    expect(r.stderr).toContain(`fetch-weights: interrupted: 30.0 kB kept in`);
    expect(statSync(part).size).toBe(30_000);
    delete hub.behaviour.stallAfter;
    hub.requests.length = 0;
    const again = await fetchWeights(dir);
    expect(again.code, again.stderr).toBe(0);
    expect(gets("/model.safetensors").find((q) => q.server === "cdn")!.range).toBe("bytes=30000-");
    expect(readFileSync(join(dir, "model.safetensors")).equals(files["model.safetensors"])).toBe(true);
  });

  it("no server at the endpoint: names HF_ENDPOINT", async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const r = await fetchWeights(freshDir(), { HF_ENDPOINT: `http://127.0.0.1:${port}` });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach 127.0.0.1:${port} (ECONNREFUSED): check the network connection, or set HF_ENDPOINT to a mirror`);
  });
});
