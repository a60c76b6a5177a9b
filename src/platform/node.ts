import { readFileSync } from "node:fs";
import { open } from "node:fs/promises";
import { availableParallelism, cpus } from "node:os";
import { Worker } from "node:worker_threads";
import { enableRelaxedSimdWith, relaxedAvailable } from "../wasm/runtime.ts";
import { type ByteSource, shortRead } from "../io/byte-source.ts";
import type { Platform, PoolThread } from "./platform.ts";

/** Largest single read: a positional read takes at most 2 GiB at once. */
const READ_CHUNK = 1 << 30;

/**
 * This process's peak resident memory in bytes. On Linux it is read from /proc/self/status
 * (VmHWM), because getrusage's ru_maxrss, which process.resourceUsage() reports, survives
 * exec: a child spawned by a large parent would report the parent's peak.
 */
function peakRssBytes(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB/m.exec(readFileSync("/proc/self/status", "utf8"));
    if (match !== null) return Number(match[1]) * 1024;
  } catch {
    // not Linux: fall through
  }
  return process.resourceUsage().maxRSS * 1024;
}

/** Node (and Bun and Deno, which provide the same modules). */
export const nodePlatform: Platform = {
  name: "node",
  cores: () => availableParallelism(),
  cpuName: () => cpus()[0]?.model.trim() || "unknown CPU",
  peakMemoryBytes: peakRssBytes,
  startThread(main: string): PoolThread {
    const source = `const { parentPort } = require("node:worker_threads");\n(${main})((handler) => parentPort.on("message", handler));`;
    const worker = new Worker(source, { eval: true });
    worker.unref();
    return worker;
  },
};

/** A file on disk, read by positional reads (offsets past 4 GiB work). */
export async function fileSource(path: string, name = path): Promise<ByteSource> {
  const handle = await open(path, "r");
  const { size } = await handle.stat();
  return {
    name,
    size,
    async read(position, length) {
      const bytes = new Uint8Array(length);
      for (let done = 0; done < length; ) {
        const { bytesRead } = await handle.read(bytes, done, Math.min(READ_CHUNK, length - done), position + done);
        if (bytesRead === 0) throw shortRead(name, position, length, done);
        done += bytesRead;
      }
      return bytes;
    },
    close: () => handle.close(),
  };
}

/*
 * Relaxed SIMD ships on by default from V8 11.4 on, and later V8s dropped the flag that enabled it
 * (setting an unknown flag prints "Error: unrecognized flag" to stderr). So the flag is set only
 * where validation fails and the runtime is Node on a V8 that still has it (Node 20: V8 11.3).
 * Flags are process-wide: worker threads see it too. It must happen before any kernel compiles,
 * hence here, settled as soon as the Node platform is imported.
 */
enableRelaxedSimdWith(() => {
  const v8 = process.versions.v8 ?? "";
  if (process.versions.bun !== undefined || "Deno" in globalThis || Number(v8.split(".")[0]) >= 12) return false;
  process.getBuiltinModule("node:v8").setFlagsFromString("--experimental-wasm-relaxed-simd");
  return true;
});
relaxedAvailable();
