import { Engine } from "../kernels/engine.ts";
import type { Clock } from "../clock/clock.ts";
import { type GPT2Config, GPT2_SMALL, parseConfig } from "../model/config.ts";
import { GPT2_FAMILY, familyMember } from "../model/family.ts";
import { loadCheckpoint, randomModel } from "../model/load.ts";
import type { GPT2Model } from "../model/model.ts";
import { browserPlatform } from "../platform/browser.ts";
import { blobSource, httpSource } from "../io/byte-source.ts";
import { machineIdentity, profileKey } from "../profile/machine-profile.ts";
import { measuredMachine } from "../run/machine.ts";
import { type MachineSelection, generate } from "../run/generate-run.ts";
import { opKind } from "../run/aggregate.ts";
import type { StepRecord } from "../run/record.ts";
import { type Tokenizer, tokenizerFromFiles } from "../tokenizer/tokenizer.ts";
import { simdAvailable } from "../wasm/runtime.ts";
import { storeProfile, storedProfile } from "./profile-store.ts";
import type { FromEngine, LiveOp, LiveStage, RunRequest, ToEngine, WeightsChoice } from "./protocol.ts";

/*
 * The engine in the page: a dedicated worker that holds one model (and its engine), loads,
 * runs, and reports as it goes. The same generate() as the terminal's; only the platform differs.
 */

const scope = self as unknown as { postMessage(message: FromEngine): void; onmessage: ((event: MessageEvent<ToEngine>) => void) | null };
const post = (message: FromEngine) => scope.postMessage(message);

let model: GPT2Model | null = null;
let loadMs = 0;
let tokenizer: Tokenizer | null = null;
let stopRequested = false;
/** Machine profiles for this worker's settings, by key: from IndexedDB, or measured once after a run. */
const profiles = new Map<string, MachineSelection>();

const LIVE_INTERVAL_MS = 250;

/** A turn of the event loop (a message, a stop request) without a timer's clamping. */
function yieldToEvents(): Promise<void> {
  return new Promise((resolve) => {
    const channel = new MessageChannel();
    channel.port1.onmessage = () => resolve();
    channel.port2.postMessage(null);
  });
}

async function fetchText(url: string): Promise<string> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.text();
}

// The vocabulary's files are fetched as soon as the worker starts, while the weights load.
// (URLs from this module's, which sits at build/playground/ in the site: the site may live under any path.)
const siteUrl = (path: string) => new URL(`../../${path}`, import.meta.url).href;
const tokenizerFiles = Promise.all([fetchText(siteUrl("tokenizer/encoder.json")), fetchText(siteUrl("tokenizer/vocab.bpe"))]);
tokenizerFiles.catch(() => {}); // a failure is reported when the tokenizer is asked for

/** GPT-2's vocabulary, as vendored with the project (the server serves it). */
async function gpt2Tokenizer(): Promise<Tokenizer> {
  if (tokenizer === null) {
    const [vocab, merges] = await tokenizerFiles;
    tokenizer = tokenizerFromFiles(vocab, "encoder.json", merges, "vocab.bpe");
  }
  return tokenizer;
}

async function readConfig(text: string, name: string): Promise<GPT2Config> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new Error(`${name}: not valid JSON`);
  }
  return parseConfig(json, name);
}

async function load(weights: WeightsChoice, engine: Engine): Promise<GPT2Model> {
  if (weights.kind === "random") {
    const member = familyMember(weights.size);
    if (member === undefined) throw new Error(`${weights.size} is not a GPT-2 size: choose one of ${GPT2_FAMILY.map((m) => m.name).join(", ")}`);
    post({ type: "status", text: `making ${member.name}'s weights from a seed (the same as generate.ts --random-weights ${member.name})…` });
    return await randomModel(engine, member.config);
  }
  if (weights.kind === "server") {
    post({ type: "status", text: "reading the served model with HTTP Range requests…" });
    const config = await readConfig(await fetchText(siteUrl("model/config.json")), "config.json");
    const source = await httpSource(siteUrl("model/model.safetensors"), "model.safetensors");
    return (await loadCheckpoint(engine, config, source)).model;
  }
  if (!weights.config.name.endsWith(".json")) throw new Error(`${weights.config.name}: choose the model's config.json here`);
  post({ type: "status", text: `reading ${weights.weights.name} slice by slice…` });
  const config = await readConfig(await weights.config.text(), weights.config.name);
  return (await loadCheckpoint(engine, config, blobSource(weights.weights, weights.weights.name))).model;
}

async function onLoad(weights: WeightsChoice, settings: Engine["settings"]): Promise<void> {
  if (!simdAvailable && (settings.kernel === "simd" || settings.dtype !== "f32")) {
    throw new Error(`this browser has no WebAssembly SIMD: ${settings.dtype !== "f32" ? `${settings.dtype} weights need it; choose f32 and` : "choose"} a TypeScript kernel (or kernel auto)`);
  }
  const previous = model;
  model = null;
  await previous?.dispose();
  const t0 = performance.now();
  const engine = new Engine(browserPlatform, settings);
  // The threads start while the weights load (a page's workers take a moment to come up).
  const threads = engine.ready();
  const loaded = await load(weights, engine);
  await threads;
  loadMs = performance.now() - t0;
  model = loaded;
  const c = loaded.config;
  const hasTokenizer = c.vocabSize === GPT2_SMALL.vocabSize;
  if (hasTokenizer) await gpt2Tokenizer();
  post({
    type: "loaded",
    model: {
      nLayer: c.nLayer, nHead: c.nHead, nEmbd: c.nEmbd, nPositions: c.nPositions, vocabSize: c.vocabSize,
      name: loaded.weights.kind === "file" ? loaded.weights.path : "random weights (seed 1234)",
      hasTokenizer, loadMs, settings: engine.settings, simd: engine.usesSimd,
    },
  });
}

/**
 * The run so far, for the page's live view. Op calls are added up as they come: a decode step
 * makes about 230, and a view that summed them all again each time took longer the longer the run.
 */
class LiveView {
  private readonly byOp = new Map<string, LiveOp>();
  private seen = 0;

  message(clock: Clock, steps: readonly StepRecord[]): FromEngine {
    for (; this.seen < clock.entries.length; this.seen++) {
      const e = clock.entries[this.seen];
      const op = opKind(e);
      let row = this.byOp.get(op);
      if (row === undefined) this.byOp.set(op, (row = { op, calls: 0, cycles: 0, ms: 0 }));
      row.calls++;
      row.cycles += e.cycles;
      row.ms += (e.endNs - e.startNs) / 1e6;
    }
    const open = clock.openStage();
    const stages: LiveStage[] = [...clock.stages, ...(open === null ? [] : [open])].map((s) => ({
      name: s.name, startUnixMs: clock.unixMs(s.startNs), durationMs: (s.endNs - s.startNs) / 1e6, cycles: s.cycles, open: s === open,
    }));
    // (posting copies the rows: the sums go on growing here)
    return { type: "live", stages, ops: [...this.byOp.values()].sort((a, b) => b.cycles - a.cycles), steps: steps.map((s) => ({ context: s.context, cycles: s.cycles, ms: s.ms })) };
  }
}

/**
 * Generated text for the page, sent with the live view rather than token by token: each message
 * that changes the page makes its main thread lay out and paint a frame, on a core the engine's
 * threads share (two threads decoded 64–70 tokens/s with text per token and no live view, 87–95
 * with neither). The first piece goes at once: the page times its first token by it.
 */
class PendingText {
  private text = "";
  private sent = false;

  add(piece: string): void {
    this.text += piece;
    if (!this.sent) this.flush();
  }

  flush(): void {
    if (this.text === "") return;
    post({ type: "text", text: this.text });
    this.text = "";
    this.sent = true;
  }
}

async function onRun(request: RunRequest): Promise<void> {
  const m = model;
  if (m === null) throw new Error("no model is loaded");
  const key = profileKey(m.engine.settings, machineIdentity(browserPlatform));
  const id = `${JSON.stringify(key)}${request.tinyProfileLadder ? " tiny" : ""}`;
  if (!profiles.has(id)) {
    // A profile kept from an earlier visit: its kernel choices spare the tuning, and the run's
    // prediction needs no measuring afterwards.
    const stored = await storedProfile(key, request.tinyProfileLadder);
    if (stored !== null) {
      m.engine.adoptKernelWisdom(stored.kernels);
      profiles.set(id, { profile: stored, source: "cache", path: "(this browser's IndexedDB)" });
    }
  }
  const tok = m.config.vocabSize === GPT2_SMALL.vocabSize ? await gpt2Tokenizer() : null;
  if (request.inputIds === null && tok === null) {
    throw new Error(`this model's ${m.config.vocabSize}-token vocabulary is not GPT-2's and it has no tokenizer: give the prompt as token ids`);
  }
  // An empty prompt starts from <|endoftext|>, as GPT-2 (and generate.ts) does.
  const encoded = request.inputIds ?? tok!.encode(request.prompt!);
  const inputIds = encoded.length === 0 ? [tok!.endOfText] : request.inputIds;
  const promptLength = Math.max(1, encoded.length);
  const context = m.config.nPositions;
  if (promptLength + request.maxNewTokens > context) {
    throw new Error(`the prompt (${promptLength} tokens) plus ${request.maxNewTokens} new tokens exceed the model's context of ${context} positions: ask for at most ${Math.max(0, context - promptLength)} new tokens${promptLength >= context ? " after a shorter prompt" : ""}`);
  }
  stopRequested = false;
  let lastLive = 0;
  const view = new LiveView();
  const text = new PendingText();
  const { record } = await generate({
    model: m,
    tokenizer: tok,
    prompt: inputIds === null ? request.prompt : null,
    inputIds,
    maxNewTokens: request.maxNewTokens,
    sampling: request.sampling,
    seed: request.seed,
    stopAtEndOfText: true,
    loadMs,
    machine: async () => {
      text.flush(); // the run's text is all out: measuring the machine may take a while
      const known = profiles.get(id);
      if (known !== undefined) return known;
      post({ type: "status", text: "measuring this machine once for these settings, for every GPT-2 size, to predict the time (~20 s)…" });
      const found = await measuredMachine(m.engine, { ladder: request.tinyProfileLadder ? "tiny" : "family", progress: (line) => post({ type: "status", text: line }) })();
      profiles.set(id, found);
      await storeProfile(found.profile, request.tinyProfileLadder);
      return found;
    },
    // The first token of a fresh page in seconds: a short warm-up (the engine stays warm after).
    warmUp: "short",
    onText: (piece) => text.add(piece),
    onStep: (clock, steps) => {
      // Four updates a second: the page's redraw takes a core's time from the engine's threads
      // (at 30 a second, decode on two threads ran at 26 tokens/s instead of 36).
      const now = performance.now();
      if (now - lastLive < LIVE_INTERVAL_MS) return;
      lastLive = now;
      text.flush();
      post(view.message(clock, steps));
    },
    betweenTokens: yieldToEvents,
    shouldStop: () => stopRequested,
  });
  text.flush();
  post({ type: "done", record });
}

async function setThreads(threads: number): Promise<void> {
  model?.engine.setThreads(threads);
  await model?.engine.ready();
}

scope.onmessage = (event) => {
  const message = event.data;
  if (message.type === "stop") {
    stopRequested = true;
    return;
  }
  const work = message.type === "load" ? onLoad(message.weights, message.settings)
    : message.type === "run" ? onRun(message.request)
    : setThreads(message.threads);
  work.catch((err: unknown) => post({ type: "error", message: err instanceof Error ? err.message : String(err) }));
};
