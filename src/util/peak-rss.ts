import { readFileSync } from "node:fs";

/**
 * This process's peak resident memory in bytes. On Linux it is read from /proc/self/status
 * (VmHWM), because getrusage's ru_maxrss, which process.resourceUsage() reports, survives
 * exec: a child spawned by a large parent would report the parent's peak.
 */
export function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match !== null) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}
