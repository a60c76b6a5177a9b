// Headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe): a
// small client for the playground's tests and measurements, with no puppeteer.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Readable, Writable } from "node:stream";

/** Chromium's path, from the usual names on PATH, or undefined. */
export function findChromium(): string | undefined {
  return ["chromium", "chromium-browser", "google-chrome"].map((c) => spawnSync("which", [c], { encoding: "utf8" }).stdout?.trim()).find((p) => p !== undefined && p !== "");
}

/** Flags for a quiet, isolated headless run (no network chatter, a throwaway profile). */
export function headlessFlags(profileDir: string): string[] {
  return ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-extensions", "--disable-dev-shm-usage", `--user-data-dir=${profileDir}`];
}

interface Message {
  id?: number;
  method?: string;
  params?: Record<string, unknown>;
  result?: Record<string, unknown>;
  error?: { message: string };
  sessionId?: string;
}

/** A page in the browser, with everything it logged as an error (page, workers, browser log). */
export class Page {
  readonly errors: string[] = [];

  constructor(private readonly browser: Chromium, readonly sessionId: string) {}

  send(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    return this.browser.send(method, params, this.sessionId);
  }

  /** The value of a JavaScript expression in the page (awaited if it is a promise). */
  async evaluate<T>(expression: string): Promise<T> {
    const r = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    const details = r.exceptionDetails as { text: string; exception?: { description?: string } } | undefined;
    if (details !== undefined) throw new Error(`in the page: ${details.exception?.description ?? details.text}`);
    return (r.result as { value: T }).value;
  }

  /** Polls until `expression` is truthy (an error while the page loads counts as not yet); its value. */
  async waitFor<T>(expression: string, timeoutMs: number): Promise<T> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      const value = await this.evaluate<T>(expression).catch(() => undefined);
      if (value) return value;
      if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${expression}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Sets the files of an <input type=file> (found by id), as if the user had picked them. */
  async setFiles(inputId: string, paths: string[]): Promise<void> {
    const r = await this.send("Runtime.evaluate", { expression: `document.getElementById(${JSON.stringify(inputId)})` });
    await this.send("DOM.setFileInputFiles", { files: paths, objectId: (r.result as { objectId: string }).objectId });
  }

  async screenshot(): Promise<Buffer> {
    const r = await this.send("Page.captureScreenshot", { format: "png" });
    return Buffer.from(r.data as string, "base64");
  }
}

export class Chromium {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: Record<string, unknown>) => void; reject: (e: Error) => void }>();
  private readonly pages = new Map<string, Page>();
  private buffered = "";
  /** Sessions of the workers attached so far (the page's, and theirs), with their URLs. */
  readonly workers: { sessionId: string; url: string }[] = [];

  private constructor(private readonly child: ChildProcess, private readonly profileDir: string) {
    const output = child.stdio[4] as Readable;
    output.setEncoding("utf8");
    output.on("data", (chunk: string) => {
      this.buffered += chunk;
      for (let end; (end = this.buffered.indexOf("\0")) >= 0; ) {
        const text = this.buffered.slice(0, end);
        this.buffered = this.buffered.slice(end + 1);
        this.receive(JSON.parse(text) as Message);
      }
    });
    child.on("exit", () => {
      for (const p of this.pending.values()) p.reject(new Error("Chromium exited"));
      this.pending.clear();
    });
  }

  static async launch(executable: string): Promise<Chromium> {
    const profileDir = mkdtempSync(join(tmpdir(), "chromium-"));
    const child = spawn(executable, [...headlessFlags(profileDir), "--remote-debugging-pipe", "about:blank"], { stdio: ["ignore", "ignore", "ignore", "pipe", "pipe"], detached: true });
    const browser = new Chromium(child, profileDir);
    await browser.send("Browser.getVersion");
    return browser;
  }

  send(method: string, params: Record<string, unknown> = {}, sessionId?: string): Promise<Record<string, unknown>> {
    const id = this.nextId++;
    const message: Message = { id, method, params, ...(sessionId === undefined ? {} : { sessionId }) };
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      (this.child.stdio[3] as Writable).write(`${JSON.stringify(message)}\0`);
    });
  }

  private receive(m: Message): void {
    if (m.id !== undefined) {
      const p = this.pending.get(m.id);
      this.pending.delete(m.id);
      if (m.error !== undefined) p?.reject(new Error(m.error.message));
      else p?.resolve(m.result ?? {});
      return;
    }
    const page = this.pageOf(m.sessionId);
    const params = m.params ?? {};
    if (m.method === "Target.attachedToTarget") {
      // A worker of the page (or of its worker): watch it too, then let it run.
      const child = params.sessionId as string;
      this.workers.push({ sessionId: child, url: (params.targetInfo as { url: string }).url });
      const owner = this.pageOf(m.sessionId);
      if (owner !== undefined) this.pages.set(child, owner);
      // Messages to a session are handled in order, so it is watched before it runs; not awaiting
      // the watch matters for a service worker, which answers nothing until it runs.
      this.watch(child).catch(() => {});
      this.send("Runtime.runIfWaitingForDebugger", {}, child).catch(() => {});
    } else if (page !== undefined && m.method === "Runtime.consoleAPICalled" && params.type === "error") {
      page.errors.push((params.args as { value?: unknown; description?: string }[]).map((a) => String(a.value ?? a.description)).join(" "));
    } else if (page !== undefined && m.method === "Runtime.exceptionThrown") {
      const d = params.exceptionDetails as { text: string; exception?: { description?: string } };
      page.errors.push(d.exception?.description ?? d.text);
    } else if (page !== undefined && m.method === "Log.entryAdded") {
      const entry = params.entry as { level: string; text: string; url?: string };
      if (entry.level === "error") page.errors.push(`${entry.text}${entry.url ? ` (${entry.url})` : ""}`);
    }
  }

  private pageOf(sessionId: string | undefined): Page | undefined {
    return sessionId === undefined ? undefined : this.pages.get(sessionId);
  }

  private async watch(sessionId: string): Promise<void> {
    await Promise.all([
      this.send("Runtime.enable", {}, sessionId),
      this.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: true, flatten: true }, sessionId),
    ]);
  }

  /** Opens `url` in a new tab of the given size, with its console and its workers' watched. */
  async open(url: string, width = 1200, height = 900): Promise<Page> {
    const { targetId } = await this.send("Target.createTarget", { url: "about:blank" });
    const { sessionId } = await this.send("Target.attachToTarget", { targetId, flatten: true });
    const page = new Page(this, sessionId as string);
    this.pages.set(sessionId as string, page);
    await this.watch(sessionId as string);
    await Promise.all([page.send("Page.enable"), page.send("Log.enable"), page.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile: false })]);
    await page.send("Page.navigate", { url });
    return page;
  }

  /** Closes the browser and every process it started, then removes its profile. */
  async close(): Promise<void> {
    const exited = new Promise((resolve) => this.child.once("exit", resolve));
    this.send("Browser.close").catch(() => {});
    const timer = setTimeout(() => this.child.kill("SIGKILL"), 5_000);
    await exited;
    clearTimeout(timer);
    // Its helpers (renderer, GPU, zygote) share its process group: none may outlive it.
    try {
      process.kill(-this.child.pid!, "SIGKILL");
    } catch {
      // the group is gone already
    }
    rmSync(this.profileDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  }
}
