/*
 * Which JavaScript runtime this is. Bun and Deno both provide Node's `process`, so they are told
 * apart by what only they define; a page has no `process` at all.
 */

export type RuntimeName = "node" | "bun" | "deno" | "browser";

export interface RuntimeInfo {
  name: RuntimeName;
  version: string;
  /** The V8 version where the engine is V8 (Node, Deno, Chromium), else "". */
  v8: string;
}

interface Globals {
  process?: { versions?: Record<string, string | undefined> };
  Deno?: { version: { deno: string; v8: string } };
  navigator?: { userAgent: string };
}

export function runtimeInfo(): RuntimeInfo {
  const g = globalThis as Globals;
  if (g.Deno !== undefined) return { name: "deno", version: g.Deno.version.deno, v8: g.Deno.version.v8 };
  const versions = g.process?.versions;
  if (versions?.bun !== undefined) return { name: "bun", version: versions.bun, v8: "" };
  if (versions?.node !== undefined) return { name: "node", version: versions.node, v8: versions.v8 ?? "" };
  return { name: "browser", version: g.navigator?.userAgent ?? "", v8: "" };
}
