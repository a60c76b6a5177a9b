// The Chrome trace and the HTML report of a generation run, through the real command.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { cycles, fitColumn, nsPerCycle, table } from "../src/report/format.ts";
import { roofline } from "../src/report/svg.ts";
import { FIXTURES } from "./helpers.ts";
import { readPng } from "./png.ts";
import { findChromium, headlessFlags } from "../scripts/chromium.ts";

const ROOT = join(import.meta.dirname, "..");
const dir = mkdtempSync(join(tmpdir(), "report-"));
const tracePath = join(dir, "run.trace.json");
const reportPath = join(dir, "report.html");
const run = spawnSync(process.execPath, ["--import", "tsx", "src/generate.ts", "--model", join(FIXTURES, "tiny-hot"), "--input-ids", "5,17,250,3", "--max-new-tokens", "12", "--json", "--trace", tracePath, "--report", reportPath], { cwd: ROOT, encoding: "utf8" });
const doc = JSON.parse(run.stdout);

interface Event { name: string; ph: string; ts: number; dur: number; tid: number; cat: string; args: Record<string, number> }

describe("the terminal tables' units", () => {
  it("ns per cycle: hand-worked values, never wider than five characters up to 9 s a cycle (a call stalled on a busy machine)", () => {
    // (ms × 10⁶) ÷ cycles: 1 ms over 1000 cycles is 1000 ns each; 0.1 ms on one cycle, 100,000 ns.
    expect([nsPerCycle(1, 1000), nsPerCycle(0.0123, 1), nsPerCycle(0.1, 1), nsPerCycle(1.5, 1), nsPerCycle(200, 1)]).toEqual(["1000", "12.3k", "100k", "1.5M", "200M"]);
    expect([nsPerCycle(0.0099996, 1000), nsPerCycle(0.00042, 1000), nsPerCycle(1, 0)]).toEqual(["10.00", "0.420", "—"]);
    for (let x = 1e-7; x < 9000; x *= 1.0007) expect(nsPerCycle(x, 1).length, String(x)).toBeLessThanOrEqual(5);
  });

  it("a kernel column too wide for 100 columns is cut with …, the rest of the table kept whole", () => {
    // A kernel label longer than the room the other columns leave. The other columns take
    // 16 + 5 + 8 + 9 + 5 + 8 + 6 characters and 7 gaps of 2: 71, leaving 29 for the kernel.
    const header = ["op", "kernel", "calls", "cycles", "bytes", "cyc/B", "time", "ns/cyc"];
    const rows = [
      ["matmul(mlp down)", "simd matmul·fma + matmul + matvec·fma + matvec", "12", "165.89 k", "459.65 kB", "0.36", "2.6 ms", "15.54"],
      ["gelu", "simd + joined", "12", "31.10 k", "27.65 kB", "1.1", "0.040 ms", "1.279"],
    ];
    expect(fitColumn(header, rows, 1, 100)).toBe(true);
    expect(rows.map((r) => r[1])).toEqual(["simd matmul·fma + matmul + m…", "simd + joined"]);
    expect(Math.max(...table(header, rows, 2).split("\n").map((l) => l.length))).toBe(100);
    expect(fitColumn(header, rows, 1, 100)).toBe(false); // already fits: nothing more cut
  });
});

describe("the roofline chart", () => {
  const point = { label: "qkv · decode", color: "#000", x: 0.25, y: 5e9 };
  it("spans the decades around its roofs and points: 10 GB/s and 50 Gcycles/s, ridge at 5 cycles per byte", () => {
    const svg = roofline({ bytesPerSec: 10e9, cyclesPerSec: 50e9 }, [point], "t");
    // x from 0.1 (below the point's 0.25, and ridge/10 = 0.5) to 100 (ridge×10 = 50); y from 1G to 100G (2 × 50G)
    expect(svg).toContain(">0.1<");
    expect(svg).toContain(">100<");
    expect(svg).toContain(">1G<");
    expect(svg).toContain(">100G<");
  });

  it("refuses roofs it cannot draw on a log axis, where its axis had looped until memory ran out", () => {
    expect(() => roofline({ bytesPerSec: 10e9, cyclesPerSec: Infinity }, [point], "t")).toThrow(RangeError);
    expect(() => roofline({ bytesPerSec: Infinity, cyclesPerSec: 50e9 }, [point], "t")).toThrow(RangeError);
  });
});

describe("--trace", () => {
  const trace = JSON.parse(readFileSync(tracePath, "utf8")) as { traceEvents: Event[] };
  const spans = trace.traceEvents.filter((e) => e.ph === "X");
  const ops = spans.filter((e) => e.cat === "op");

  it("has stage, token, layer and op spans, every child inside its parent", () => {
    for (const cat of ["stage", "token", "layer", "op"]) expect(spans.some((e) => e.cat === cat), cat).toBe(true);
    const sorted = [...spans].sort((a, b) => a.ts - b.ts || b.dur - a.dur);
    const end = (e: Event) => e.ts + e.dur;
    const eps = 1e-3; // µs: float rounding of ns/1000
    const stack: Event[] = [];
    for (const e of sorted) {
      while (stack.length > 0 && e.ts >= end(stack[stack.length - 1]) - eps) stack.pop(); // ended before e began
      const parent = stack[stack.length - 1];
      if (parent !== undefined) expect(end(e), `${e.name} must end inside ${parent.name}`).toBeLessThanOrEqual(end(parent) + eps);
      stack.push(e);
    }
    // Each op lies inside its stage's span, and each layer span inside a token span.
    const stageOf = (name: string) => spans.find((s) => s.cat === "stage" && s.name.startsWith(name))!;
    for (const op of ops) {
      const stage = stageOf(String(op.args.stage));
      expect(op.ts).toBeGreaterThanOrEqual(stage.ts - eps);
      expect(op.ts + op.dur).toBeLessThanOrEqual(stage.ts + stage.dur + eps);
    }
  });

  it("op cycles add up to the run's total, and matmul events match the --json calls", () => {
    expect(ops.reduce((s, e) => s + e.args.cycles, 0)).toBe(doc.totals.cycles);
    const matmulCalls = doc.ops.filter((o: { op: string }) => o.op.startsWith("matmul")).reduce((s: number, o: { calls: number }) => s + o.calls, 0);
    expect(ops.filter((e) => e.name.startsWith("matmul")).length).toBe(matmulCalls);
    const counter = trace.traceEvents.filter((e) => e.ph === "C");
    expect(counter[counter.length - 1].args.cycles).toBe(doc.totals.cycles);
    expect(spans.filter((e) => e.cat === "token")).toHaveLength(doc.generatedIds.length);
  });
});

describe("--report", () => {
  const html = readFileSync(reportPath, "utf8");

  it("is self-contained: no http:// or https:// reference, no script", () => {
    expect(html).not.toMatch(/https?:\/\//);
    expect(html).not.toMatch(/<script|<link|@import|url\(/i);
    expect(html).toContain("<svg");
  });

  it("shows the stages, the totals and the op table", () => {
    for (const s of ["preprocess", "prefill", "decode", "postprocess", '"encoder"', '"decoder"', cycles(doc.totals.cycles), "matmul(qkv)", "The article's formula"]) {
      expect(html).toContain(s);
    }
  });

  const chromium = findChromium();
  if (chromium === undefined && process.env.CI) throw new Error("CI must have Chromium for the report test: .ci/run installs Debian's chromium package");
  it.skipIf(chromium === undefined)("renders in headless Chromium to a non-blank page whose DOM has the stages and total cycles", () => {
    const flags = headlessFlags(mkdtempSync(join(tmpdir(), "chromium-")));
    const png = join(dir, "report.png");
    spawnSync(chromium!, [...flags, "--window-size=1100,1400", `--screenshot=${png}`, `file://${reportPath}`], { timeout: 60_000 });
    expect(existsSync(png)).toBe(true);
    const { pixels, channels, width, height } = readPng(readFileSync(png));
    expect(width).toBe(1100);
    let ink = 0;
    const colours = new Set<number>();
    for (let i = 0; i < pixels.length; i += channels) {
      if (pixels[i] < 200 || pixels[i + 1] < 200 || pixels[i + 2] < 200) ink++;
      colours.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
    }
    expect(ink / (width * height)).toBeGreaterThan(0.02); // text and charts, not a blank page
    expect(colours.size).toBeGreaterThan(20); // the charts' colours
    const dom = spawnSync(chromium!, [...flags, "--dump-dom", `file://${reportPath}`], { encoding: "utf8", timeout: 60_000 }).stdout;
    for (const s of ["preprocess", "prefill", "decode", "postprocess", cycles(doc.totals.cycles)]) expect(dom).toContain(s);
    // The roofline: both roofs drawn, one labelled point per op kind per stage that does counted work.
    const roofline = /<svg[^>]*aria-label="Roofline: each op kind per stage, as measured"[^]*?<\/svg>/.exec(dom)?.[0] ?? "";
    expect(roofline).toMatch(/memory roof [\d.]+ GB\/s/);
    expect(roofline).toMatch(/compute roof [\d.]+ Gcycles\/s/);
    // (Not the kinds whose every call joined a product's chunks: they take no time of their own —
    // a decode step's adds, GELU, softmax, values and query scale.)
    const kinds = ["prefill", "decode"].reduce((n, stage) => n + doc.opsByStage[stage].filter((o: { cycles: number; bytes: number; ms: number }) => o.cycles > 0 && o.bytes > 0 && o.ms > 0).length, 0);
    expect(kinds).toBeGreaterThanOrEqual(18);
    expect(roofline.match(/<circle/g)?.length).toBe(kinds);
    expect(roofline).toContain("qkv · decode");
    expect(dom).toContain('aria-label="Predicted and measured milliseconds per token against context length"');
  });
  if (chromium === undefined) it.skip("renders in headless Chromium (skipped: no chromium on PATH; apt-get install chromium)", () => {});
});
