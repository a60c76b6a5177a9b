import { afterEach, describe, expect, it, vi } from "vitest";
import { Progress, mb } from "../src/io/progress.ts";

afterEach(() => vi.useRealTimers());

function run(mode: "tty" | "lines" | "quiet"): string {
  vi.useFakeTimers({ now: 0 });
  let out = "";
  const p = new Progress("model.safetensors", 548_105_171, mode, (s) => (out += s));
  p.start(100_000_000); // resuming
  vi.setSystemTime(6_000); // 6 s later: past both redraw intervals
  p.update(220_000_000); // 120 MB in 6 s = 20 MB/s; 328 MB left → ETA 17 s
  p.finish();
  return out;
}

describe("download progress", () => {
  it("draws a bar in place on a terminal: done/total, %, MB/s, ETA", () => {
    const out = run("tty");
    expect(out).toContain("\r");
    expect(out).toMatch(/\[#{10}-{14}\]\s+40%\s+220\.0 MB \/ 548\.1 MB\s+20\.0 MB\/s\s+ETA 17s/);
    expect(out.endsWith("\r\x1b[K")).toBe(true); // cleared for the summary line
  });

  it("prints plain lines elsewhere, saying where a resume starts", () => {
    const lines = run("lines").trim().split("\n");
    expect(lines[0]).toBe("model.safetensors: resuming at 100.0 MB of 548.1 MB");
    expect(lines[1]).toMatch(/^model\.safetensors:\s+40%\s+220\.0 MB \/ 548\.1 MB\s+20\.0 MB\/s\s+ETA 17s$/);
  });

  it("prints nothing when quiet", () => {
    expect(run("quiet")).toBe("");
  });

  it("sizes for humans", () => {
    expect([mb(292), mb(456_318), mb(548_105_171)]).toEqual(["292 B", "456.3 kB", "548.1 MB"]);
  });
});
