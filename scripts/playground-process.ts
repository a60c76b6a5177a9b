// `npm run playground` as a child process on a free port, for the tests, the benchmark and the
// screenshot: resolves with its URL once it listens.
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";

export function startPlayground(args: readonly string[] = []): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", "playground", "--port", "0", ...args], { cwd: join(import.meta.dirname, "..") });
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout!.on("data", (chunk) => {
      out += chunk;
      const m = /playground: (http:\/\/\S+)/.exec(out);
      if (m !== null) resolve({ url: m[1], child });
    });
    child.on("exit", (code) => reject(new Error(`the playground exited (${code}) before it listened`)));
  });
}
