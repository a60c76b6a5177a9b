import type { Platform, PoolThread } from "./platform.ts";

/*
 * A web page: the engine runs in a dedicated worker (the page's main thread may not block in
 * Atomics.wait, which a pass.s barriers need), and the engine.s threads are workers it starts
 * from a Blob. SharedArrayBuffer needs the page to be cross-origin isolated (COOP + COEP).
 */
/** One Blob URL per thread source, kept: a worker may fetch it after the constructor returns. */
const threadUrls = new Map<string, string>();

export const browserPlatform: Platform = {
  name: "browser",
  cores: () => navigator.hardwareConcurrency || 1,
  // A page is not told the CPU's name; the cores and the browser still key the profile.
  cpuName: () => "unknown CPU",
  peakMemoryBytes: () => 0,
  startThread(main: string): PoolThread {
    let url = threadUrls.get(main);
    if (url === undefined) {
      const source = `(${main})((handler) => { self.onmessage = (event) => handler(event.data); });`;
      url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
      threadUrls.set(main, url);
    }
    const worker = new Worker(url);
    return {
      postMessage: (message) => worker.postMessage(message),
      terminate: async () => worker.terminate(),
    };
  },
};
