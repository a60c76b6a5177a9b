/*
 * What differs between a terminal and a web page, behind one small interface: how threads start,
 * how many cores there are, what the CPU is called and how much memory the process peaked at —
 * and, in io/byte-source.ts, how a file's bytes are read. The core (tensor, kernels, wasm, clock,
 * model, tokenizer, run, report) imports nothing from `node:`; Node's implementation is
 * platform/node.ts, the page's platform/browser.ts.
 */

/** One of an engine's worker threads, seen from the thread that started it. */
export interface PoolThread {
  postMessage(message: unknown): void;
  terminate(): Promise<unknown>;
}

export interface Platform {
  readonly name: "node" | "browser";
  /** Logical cores: the default thread count. */
  cores(): number;
  /** The CPU's name as the machine profile keys it ("unknown CPU" where it cannot be read). */
  cpuName(): string;
  /**
   * Starts a thread running `main`, the source of a function `(listen) => void` that receives
   * every message through `listen(handler)`. It must not keep the process alive.
   */
  startThread(main: string): PoolThread;
  /** This process's peak resident memory in bytes; 0 where a page cannot know it. */
  peakMemoryBytes(): number;
}
