// The package as its users meet it: the tarball `npm pack` makes, installed offline into an empty
// project (no tsx, no TypeScript), run as a bin under this Node and Node 24, imported from Node
// ESM, type-checked from a strict consumer, imported in Chromium through an import map, and its
// static site served by a plain server (no isolation headers) running GPT-2 on 2 threads.
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { networkInterfaces, tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Chromium, findChromium } from "../scripts/chromium.ts";
import { type Installed, packAndInstall } from "../scripts/packed.ts";
import { RUNTIME_PACKAGES, ensureRuntime } from "../scripts/runtime-packages.ts";
import { userCacheDir } from "../src/io/cache-dir.ts";
import { FIXTURES } from "./helpers.ts";

const ROOT = join(import.meta.dirname, "..");
const FIXTURE = ["--model", join(FIXTURES, "tiny-hot"), "--input-ids", "5,17,250,3", "--max-new-tokens", "8", "--json"];
const chromium = findChromium();

describe("the package, packed and installed", () => {
  const work = mkdtempSync(join(tmpdir(), "package-"));
  // A profile measured on the tiny ladder, in a cache of the test's own.
  const env = { ...process.env, GPT2_CYCLES_CACHE: join(work, "cache"), GPT2_CYCLES_PROFILE_LADDER: "tiny" };
  let installed: Installed;
  const bin = (node: string, args: string[]) => spawnSync(node, [installed.bin, ...args], { cwd: installed.project, encoding: "utf8", env, timeout: 120_000 });

  beforeAll(() => {
    installed = packAndInstall(work);
  }, 300_000);
  afterAll(() => rmSync(work, { recursive: true, force: true }));

  it("is small, holds the tokenizer, the site and declarations, and no sources or tests", () => {
    expect(statSync(installed.tarball).size).toBeLessThan(15 * 2 ** 20);
    const listing = spawnSync("tar", ["-tzf", installed.tarball], { encoding: "utf8" }).stdout.split("\n");
    for (const f of ["package/dist/cli/main.js", "package/dist/node.d.ts", "package/dist/index.js", "package/dist/tokenizer/gpt2/encoder.json", "package/dist/site/index.html", "package/dist/site/isolate-sw.js"]) {
      expect(listing).toContain(f);
    }
    expect(listing.filter((f) => /\.ts$/.test(f) && !f.endsWith(".d.ts"))).toEqual([]);
    expect(listing.filter((f) => f.startsWith("package/test/") || f.startsWith("package/src/"))).toEqual([]);
    const manifest = JSON.parse(readFileSync(join(installed.project, "node_modules", "gpt2-cycles", "package.json"), "utf8"));
    expect(manifest.dependencies ?? {}).toEqual({});
  });

  it("runs its bin under this Node and Node 24: the repository's CLI's tokens and cycles, commands listed, a bad one refused", () => {
    const reference = JSON.parse(spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", ...FIXTURE], { cwd: ROOT, encoding: "utf8", env }).stdout);
    const node24 = ensureRuntime(RUNTIME_PACKAGES.find((p) => p.label === "node24")!, userCacheDir("runtimes"), () => {}).bin;
    for (const node of [process.execPath, node24]) {
      const run = bin(node, FIXTURE);
      expect(run.status, run.stderr).toBe(0);
      const doc = JSON.parse(run.stdout);
      expect(doc.generatedIds).toEqual(reference.generatedIds);
      expect(doc.totals.cycles).toBe(reference.totals.cycles);
      const help = bin(node, ["help"]);
      expect(help.status).toBe(0);
      for (const command of ["generate", "profile", "sweep", "bench", "fetch-weights", "playground"]) expect(help.stdout).toMatch(new RegExp(`^  ${command} `, "m"));
      const bad = bin(node, ["frobnicate"]);
      expect(bad.status).toBe(2);
      expect(bad.stderr).toBe('gpt2-cycles: unknown command "frobnicate": choose one of generate, profile, sweep, bench, fetch-weights, playground (or gpt2-cycles help)\n');
    }
    // npm linked the bin: node_modules/.bin/gpt2-cycles is what npx runs
    const linked = spawnSync(join(installed.project, "node_modules", ".bin", "gpt2-cycles"), ["--version-of-nothing"], { encoding: "utf8", env });
    expect(linked.status).toBe(2);
    expect(linked.stderr).toMatch(/^generate: .*--version-of-nothing/);
  }, 300_000);

  it("its other commands from the package: playground serves the shipped site, bench measures, an unwritable cache is a notice", async () => {
    const server = spawn(process.execPath, [installed.bin, "playground", "--port", "0", "--no-model"], { cwd: installed.project, env });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        server.stdout!.on("data", (chunk: Buffer) => {
          out += chunk.toString();
          const m = /^playground: (http:\S+)$/m.exec(out);
          if (m !== null) resolve(m[1]);
        });
        server.once("exit", (code) => reject(new Error(`playground exited (${code})`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(page.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
      expect(await page.text()).toContain("build/playground/page.js");
      expect((await fetch(`${url}build/playground/engine-worker.js`)).status).toBe(200);
      expect((await fetch(`${url}tokenizer/vocab.bpe`)).status).toBe(200);
    } finally {
      server.kill();
    }
    // outside a clone, the fixes it names are the package's commands
    const missing = bin(process.execPath, ["--model", "gpt2-large"]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toBe("generate: --model gpt2-large: no weights in weights/gpt2-large: run gpt2-cycles fetch-weights --model gpt2-large (or try --random-weights gpt2-large)\n");
    const bench = bin(process.execPath, ["bench", "--model", "distilgpt2", "--quick", "--threads", "1"]);
    expect(bench.status, bench.stderr).toBe(0);
    expect(bench.stdout).toMatch(/^threads +decode tok\/s +prefill tok\/s +barriers\/token\n1 +\d+\.\d +\d+ \(32 tokens\) +\d+\n$/m);
    // a cache "directory" that is a file: nothing can be written under it
    const noCache = spawnSync(process.execPath, [installed.bin, ...FIXTURE], { cwd: installed.project, encoding: "utf8", env: { ...env, GPT2_CYCLES_CACHE: installed.tarball } });
    expect(noCache.status).toBe(0);
    expect(noCache.stderr).toMatch(/cannot write .*: the profile serves this run only/);
  }, 120_000);

  it("imports from Node ESM: GPT-2's published ids from the shipped tokenizer, the article's 2×2 product", () => {
    writeFileSync(join(installed.project, "consumer.mjs"), [
      `import { loadTokenizer, Tensor, matmul, Clock } from "gpt2-cycles";`,
      `const tokenizer = await loadTokenizer();`,
      `const clock = new Clock();`,
      `const c = clock.run(() => matmul(new Tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]), new Tensor(Float32Array.from([5, 6, 7, 8]), [2, 2])));`,
      `console.log(JSON.stringify({ ids: tokenizer.encode("Hello world"), product: [...c.data], cycles: clock.cycles }));`,
    ].join("\n"));
    const run = spawnSync(process.execPath, ["consumer.mjs"], { cwd: installed.project, encoding: "utf8" });
    expect(run.stderr).toBe("");
    // "Hello world" is [15496, 995] in GPT-2's vocabulary; [[1,2],[3,4]]·[[5,6],[7,8]] = [[19,22],[43,50]] in 8 multiply-accumulates
    expect(JSON.parse(run.stdout)).toEqual({ ids: [15496, 995], product: [19, 22, 43, 50], cycles: 8 });
  });

  it("type-checks a strict nodenext consumer against the shipped declarations, and catches a wrong type", () => {
    const tsc = join(ROOT, "node_modules", "typescript", "bin", "tsc");
    const check = (source: string) => {
      writeFileSync(join(installed.project, "consumer.ts"), source);
      writeFileSync(join(installed.project, "tsconfig.json"), JSON.stringify({
        compilerOptions: { module: "nodenext", moduleResolution: "nodenext", target: "es2022", strict: true, noEmit: true, types: ["node"], typeRoots: [join(ROOT, "node_modules", "@types")] },
        files: ["consumer.ts"],
      }));
      return spawnSync(process.execPath, [tsc, "-p", installed.project], { encoding: "utf8" });
    };
    const good = check([
      `import { type GPT2Config, type Tokenizer, Engine, GPT2_SMALL, loadTokenizer, nodePlatform, randomModel } from "gpt2-cycles";`,
      `const tokenizer: Tokenizer = await loadTokenizer();`,
      `const ids: number[] = tokenizer.encode("Hello world");`,
      `const config: GPT2Config = { ...GPT2_SMALL, nLayer: 2 };`,
      `const model = await randomModel(new Engine(nodePlatform, { threads: 1, dtype: "q8" }), config);`,
      `export const logits: Float32Array = new Float32Array(config.vocabSize);`,
      `model.step(ids, model.newCache(8), 1, logits);`,
    ].join("\n"));
    expect(good.stdout + good.stderr).toBe("");
    expect(good.status).toBe(0);
    const bad = check(`import { loadTokenizer } from "gpt2-cycles";\nexport const ids: string = (await loadTokenizer()).encode("x");\n`);
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toMatch(/consumer\.ts\(2,14\): error TS2322: Type 'number\[\]' is not assignable to type 'string'/);
  });

  it("runs docs/library.md's example as written under Node, Bun and Deno: the CLI's tokens, the report, the files", () => {
    const example = docsExample("node,bun,deno");
    writeFileSync(join(installed.project, "example.mjs"), example);
    const cli = JSON.parse(bin(process.execPath, ["--random-weights", "distilgpt2", "--prompt", "The meaning of life is", "--max-new-tokens", "8", "--json"]).stdout);
    const runtime = (label: string) => ensureRuntime(RUNTIME_PACKAGES.find((p) => p.label === label)!, userCacheDir("runtimes"), () => {}).bin;
    for (const command of [[process.execPath], [runtime("bun")], [runtime("deno"), "run", "-A"]]) {
      rmSync(join(installed.project, "report.html"), { force: true });
      const run = spawnSync(command[0], [...command.slice(1), "example.mjs"], { cwd: installed.project, encoding: "utf8", env, timeout: 180_000 });
      expect(run.status, `${command[0]}: ${run.stderr}`).toBe(0);
      const [ids, ...report] = run.stdout.split("\n");
      expect(JSON.parse(ids)).toEqual(cli.generatedIds);
      expect(report.join("\n")).toMatch(/^distilgpt2 · 6 layers, 12 heads, d=768/m);
      expect(run.stderr).toContain(cli.text.slice(0, 10));
      expect(readFileSync(join(installed.project, "report.html"), "utf8")).toMatch(/^<!doctype html>[\s\S]*<svg[\s\S]*<\/html>\n$/);
      expect(JSON.parse(readFileSync(join(installed.project, "trace.json"), "utf8")).traceEvents.length).toBeGreaterThan(0);
    }
  }, 600_000);

  it("runs docs/library.md's model-directory example as written: the CLI's ids and cycles on a PyTorch fixture", () => {
    writeFileSync(join(installed.project, "directory.mjs"), docsExample("directory"));
    const cli = JSON.parse(bin(process.execPath, ["--model", join(FIXTURES, "tiny-hot"), "--input-ids", "5,17,250,3", "--max-new-tokens", "8", "--json"]).stdout);
    const run = spawnSync(process.execPath, ["directory.mjs", join(FIXTURES, "tiny-hot")], { cwd: installed.project, encoding: "utf8", env });
    expect(run.status, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout)).toEqual({ ids: cli.generatedIds, cycles: cli.totals.cycles });
  });

  describe.skipIf(chromium === undefined)("in Chromium, from a plain static server (python3 -m http.server)", () => {
    let browser: Chromium;
    let server: ChildProcess;
    let port = 0;
    beforeAll(async () => {
      browser = await Chromium.launch(chromium!);
      [server, port] = await staticServer(installed.project);
    }, 60_000);
    afterAll(async () => {
      server?.kill();
      await browser?.close();
    });

    it("imports the browser entry through an import map: the tokenizer's ids and the 2×2 product", async () => {
      writeFileSync(join(installed.project, "browser.html"), `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,">
<script type="importmap">{ "imports": { "gpt2-cycles": "./node_modules/gpt2-cycles/dist/index.js" } }</script>
<script type="module">
  import { Tensor, matmul, tokenizerFromFiles } from "gpt2-cycles";
  const at = (f) => fetch("node_modules/gpt2-cycles/dist/tokenizer/gpt2/" + f).then((r) => r.text());
  const tokenizer = tokenizerFromFiles(await at("encoder.json"), "encoder.json", await at("vocab.bpe"), "vocab.bpe");
  const c = matmul(new Tensor(Float32Array.from([1, 2, 3, 4]), [2, 2]), new Tensor(Float32Array.from([5, 6, 7, 8]), [2, 2]));
  globalThis.result = { ids: tokenizer.encode("Hello world"), product: [...c.data] };
</script>`);
      const page = await browser.open(`http://127.0.0.1:${port}/browser.html`);
      expect(await page.waitFor("globalThis.result", 30_000)).toEqual({ ids: [15496, 995], product: [19, 22, 43, 50] });
      expect(page.errors).toEqual([]);
    });

    it("runs docs/library.md's browser example as written: the CLI's tokens, on one thread without isolation", async () => {
      writeFileSync(join(installed.project, "example.html"), docsExample("browser"));
      const cli = JSON.parse(bin(process.execPath, ["--random-weights", "distilgpt2", "--prompt", "The meaning of life is", "--max-new-tokens", "8", "--json"]).stdout);
      const page = await browser.open(`http://127.0.0.1:${port}/example.html`);
      expect(await page.waitFor("globalThis.generatedIds", 120_000)).toEqual(cli.generatedIds);
      expect(await page.evaluate<string>(`document.getElementById("out").textContent`)).toMatch(/ cycles$/);
      expect(page.errors.filter((e) => !e.includes("favicon.ico"))).toEqual([]);
    }, 180_000);

    it("runs the built site on 2 threads: a service worker isolates it, and its tokens are the CLI's", async () => {
      const ids = "464,3290,318";
      const cli = JSON.parse(bin(process.execPath, ["--random-weights", "distilgpt2", "--input-ids", ids, "--max-new-tokens", "3", "--threads", "1", "--json"]).stdout);
      const page = await browser.open(`http://127.0.0.1:${port}/node_modules/gpt2-cycles/dist/site/?randomSize=distilgpt2&inputIds=${ids}&maxNewTokens=3&threads=2&autorun=1&profileLadder=tiny`);
      expect(await page.waitFor(`["done", "error"].includes(document.body?.dataset.state) && document.body.dataset.state`, 120_000)).toBe("done");
      expect(await page.evaluate<boolean>("crossOriginIsolated")).toBe(true);
      const run = await page.evaluate<{ generatedIds: number[]; threads: number }>("globalThis.lastRun");
      expect(run.generatedIds).toEqual(cli.generatedIds);
      expect(run.threads).toBe(2);
    }, 180_000);

    const external = Object.values(networkInterfaces()).flat().find((a) => a !== undefined && a.family === "IPv4" && !a.internal)?.address;
    it.skipIf(external === undefined)("without isolation or service workers (an insecure origin), runs on one thread and says so", async () => {
      const page = await browser.open(`http://${external}:${port}/node_modules/gpt2-cycles/dist/site/?randomSize=distilgpt2&inputIds=464&maxNewTokens=2&autorun=1&profileLadder=tiny`);
      expect(await page.waitFor(`["done", "error"].includes(document.body?.dataset.state) && document.body.dataset.state`, 120_000)).toBe("done");
      expect(await page.evaluate<boolean>("crossOriginIsolated")).toBe(false);
      expect(await page.evaluate<string>(`document.getElementById("isolation-note").textContent`)).toMatch(/^This page is not cross-origin isolated/);
      expect(await page.evaluate<number>("globalThis.lastRun.threads")).toBe(1);
    }, 180_000);

    it("opened from a file: a note saying how to serve it, never a blank page", async () => {
      const page = await browser.open(`file://${join(installed.project, "node_modules", "gpt2-cycles", "dist", "site", "index.html")}`);
      expect(await page.waitFor(`document.getElementById("isolation-note")?.textContent`, 30_000)).toMatch(/opened from a file.*python3 -m http\.server/);
    });
  });
});

/** The code block of docs/library.md marked `example=<labels>`, as written there. */
function docsExample(labels: string): string {
  const doc = readFileSync(join(ROOT, "docs", "library.md"), "utf8");
  const block = new RegExp("```\\w+ example=" + labels + "\\n([\\s\\S]*?)```").exec(doc);
  if (block === null) throw new Error(`docs/library.md has no example=${labels} block`);
  return block[1];
}

/** python3 -m http.server on any free port of every address, serving `dir`; resolves once it listens. */
function staticServer(dir: string): Promise<[ChildProcess, number]> {
  return new Promise((resolve, reject) => {
    const child = spawn("python3", ["-u", "-m", "http.server", "0", "--bind", "0.0.0.0", "--directory", dir], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      out += chunk.toString();
      const m = /port (\d+)/.exec(out);
      if (m !== null) resolve([child, Number(m[1])]);
    });
    child.once("exit", (code) => reject(new Error(`python3 -m http.server exited (${code}): ${out}`)));
  });
}
