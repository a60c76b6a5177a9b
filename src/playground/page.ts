import { Clock } from "../clock/clock.ts";
import { KERNELS } from "../kernels/engine.ts";
import { GPT2_FAMILY } from "../model/family.ts";
import type { WeightDtype } from "../kernels/packed-matrix.ts";
import { REPORT_CSS, STAGE_COLORS, htmlReport } from "../report/html.ts";
import { cycles, ms } from "../report/format.ts";
import { escapeXml as esc, legend, lineChart, timeline } from "../report/svg.ts";
import { STAGES, type RunRecord } from "../run/record.ts";
import { add } from "../tensor/add.ts";
import { matmul } from "../tensor/matmul.ts";
import { Tensor } from "../tensor/tensor.ts";
import { simdAvailable } from "../wasm/runtime.ts";
import type { FromEngine, LiveOp, LiveStage, LiveStep, RunRequest, ToEngine, WeightsChoice } from "./protocol.ts";

/*
 * The playground page: a form, a live view of the run, the article's 2×2 widget, and the full
 * report at the end. The engine runs in a worker (engine-worker.ts); this thread only draws.
 * Hooks for automation and the console: query parameters (weights, randomSize, prompt, inputIds,
 * maxNewTokens, threads, kernel, dtype, doSample, seed, temperature, topK, topP, autorun=1),
 * document.body.dataset.state (idle, loading, running, done, error) and globalThis.lastRun
 * (the run record, as generate.ts --json prints it).
 */

interface PageGlobals {
  /** Started by index.html before this module graph loads, so the two load side by side. */
  engineWorker?: Worker;
  /** Set by index.html while a service worker is installed to isolate the page, which then reloads. */
  reloading?: Promise<void>;
  lastRun?: RunRecord;
  lastError?: string;
  /** ms from navigation start to the first generated text of this page's first run. */
  firstTokenMs?: number;
}
const hooks = globalThis as PageGlobals;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const input = (id: string) => $<HTMLInputElement>(id);
const select = (id: string) => $<HTMLSelectElement>(id);

function setState(state: "idle" | "loading" | "running" | "done" | "error"): void {
  document.body.dataset.state = state;
  $<HTMLButtonElement>("run").disabled = state === "loading" || state === "running";
  $<HTMLButtonElement>("stop").disabled = state !== "running";
}

function status(text: string): void {
  $("status").textContent = text;
}

function showError(message: string): void {
  hooks.lastError = message;
  const box = $("error");
  box.textContent = message;
  box.hidden = false;
  status("");
  setState("error");
}

// ---- the form ----------------------------------------------------------------------------------

function fillSelects(params: URLSearchParams): void {
  const cores = navigator.hardwareConcurrency || 1;
  const threads = select("threads");
  for (let t = 1; t <= Math.min(cores, 16); t++) threads.add(new Option(String(t), String(t)));
  threads.value = String(Math.min(cores, 16));
  const size = select("random-size");
  for (const m of GPT2_FAMILY) size.add(new Option(`${m.name} (${m.config.nLayer} layers, d=${m.config.nEmbd})`, m.name));
  const kernel = select("kernel");
  kernel.add(new Option(`auto (${simdAvailable ? "WebAssembly SIMD" : "TypeScript: no WebAssembly SIMD here"})`, "auto"));
  for (const k of KERNELS) kernel.add(new Option(`${k.name}: ${k.about}`, k.name));
  const set = (id: string, key: string) => {
    const v = params.get(key);
    if (v !== null) ($(id) as HTMLInputElement | HTMLSelectElement).value = v;
  };
  set("threads", "threads");
  set("random-size", "randomSize");
  set("kernel", "kernel");
  set("dtype", "dtype");
  set("prompt", "prompt");
  set("input-ids", "inputIds");
  set("max-new-tokens", "maxNewTokens");
  set("temperature", "temperature");
  set("top-k", "topK");
  set("top-p", "topP");
  set("seed", "seed");
  if (params.get("doSample") === "1") select("decoding").value = "sample";
  const weights = params.get("weights");
  if (weights === "random" || weights === "server") document.querySelector<HTMLInputElement>(`input[name=weights][value=${weights}]`)!.checked = true;
}

function weightsChoice(): WeightsChoice {
  const kind = document.querySelector<HTMLInputElement>("input[name=weights]:checked")!.value;
  if (kind === "random") return { kind, size: select("random-size").value };
  if (kind === "server") return { kind };
  const files = [...(input("files").files ?? [])];
  const config = files.find((f) => f.name.endsWith(".json"));
  const weights = files.find((f) => f.name.endsWith(".safetensors"));
  if (config === undefined || weights === undefined) throw new Error("choose both files of the model at once: config.json and model.safetensors");
  return { kind: "files", config, weights };
}

/** What identifies a loaded model: the same key needs no reload. */
function loadKey(w: WeightsChoice, dtype: string, kernel: string): string {
  const file = w.kind === "files" ? `${w.weights.name}/${w.weights.size}/${w.weights.lastModified}/${w.config.name}/${w.config.size}` : w.kind === "random" ? w.size : "";
  return `${w.kind}|${file}|${dtype}|${kernel}`;
}

function runRequest(): RunRequest {
  const idsText = input("input-ids").value.trim();
  let inputIds: number[] | null = null;
  if (idsText !== "") {
    const parts = idsText.split(",").map((s) => s.trim());
    if (parts.some((p) => !/^\d+$/.test(p))) throw new Error(`token ids are comma-separated whole numbers like 464,3290, not "${idsText}"`);
    inputIds = parts.map(Number);
  }
  const number = (id: string, what: string, ok: (v: number) => boolean) => {
    const v = Number(input(id).value);
    if (!Number.isFinite(v) || !ok(v)) throw new Error(`${what}: "${input(id).value}" is not allowed`);
    return v;
  };
  const doSample = select("decoding").value === "sample";
  return {
    prompt: inputIds === null ? $<HTMLTextAreaElement>("prompt").value : null,
    inputIds,
    maxNewTokens: number("max-new-tokens", "max new tokens must be a whole number ≥ 1", (v) => Number.isInteger(v) && v >= 1),
    sampling: {
      doSample,
      temperature: number("temperature", "temperature must be > 0", (v) => v > 0),
      topK: number("top-k", "top-k must be a whole number ≥ 0", (v) => Number.isInteger(v) && v >= 0),
      topP: number("top-p", "top-p must be in (0, 1]", (v) => v > 0 && v <= 1),
    },
    seed: number("seed", "the seed must be a whole number", (v) => Number.isInteger(v)),
    // ?profileLadder=tiny: the machine profile measured on small shapes (the page's tests)
    tinyProfileLadder: new URLSearchParams(location.search).get("profileLadder") === "tiny",
  };
}

// ---- the live view -----------------------------------------------------------------------------

const article = (name: string) => STAGES.find((s) => s.name === name)?.article ?? "";

function drawStages(stages: readonly LiveStage[]): void {
  if (stages.length === 0) return;
  const first = stages[0].startUnixMs;
  $("timeline").innerHTML = timeline(stages.map((s) => ({
    label: `${s.name} (${article(s.name)})`,
    detail: `${ms(s.durationMs)}${s.open ? "…" : ""}, ${cycles(s.cycles)} cycles`,
    startMs: s.startUnixMs - first,
    durationMs: s.durationMs,
    color: STAGE_COLORS[s.name],
  })), "The four stages on a timeline");
  $("stages").innerHTML = `<thead><tr><th>stage</th><th class="text-col">article</th><th>start (Unix ms)</th><th>duration</th><th>cycles</th></tr></thead><tbody>${
    stages.map((s) => `<tr><td>${s.name}</td><td class="text-col">${esc(article(s.name))}</td><td>${s.startUnixMs.toFixed(3)}</td><td>${ms(s.durationMs)}${s.open ? "…" : ""}</td><td>${cycles(s.cycles)}</td></tr>`).join("")}</tbody>`;
}

function drawOps(ops: readonly LiveOp[]): void {
  const total = ops.reduce((s, o) => s + o.ms, 0);
  $("ops").innerHTML = `<thead><tr><th>op</th><th>calls</th><th>cycles</th><th>time</th><th>% time</th><th>ns/cycle</th></tr></thead><tbody>${
    ops.map((o) => `<tr><td>${esc(o.op)}</td><td>${o.calls}</td><td>${cycles(o.cycles)}</td><td>${ms(o.ms)}</td><td>${total > 0 ? ((100 * o.ms) / total).toFixed(1) : "0.0"}%</td><td>${o.cycles > 0 ? ((o.ms * 1e6) / o.cycles).toFixed(3) : "—"}</td></tr>`).join("")}</tbody>`;
}

function drawSteps(steps: readonly LiveStep[]): void {
  const decode = steps.slice(1);
  if (decode.length < 2) {
    $("per-token").innerHTML = `<p class="muted">The per-token charts start with the second decode step.</p>`;
    return;
  }
  $("per-token").innerHTML =
    `<figure>${lineChart([{ label: "cycles", color: "#4e79a7", points: decode.map((s) => [s.context, s.cycles / 1e6]) }], "context length (positions)", "cycles per token (M)", "Cycles per token against context length")}</figure>` +
    `<figure>${lineChart([{ label: "ms", color: "#f28e2b", points: decode.map((s) => [s.context, s.ms]) }], "context length (positions)", "milliseconds per token", "Milliseconds per token against context length")}${legend([{ label: "the forward pass of each decode step", color: "#f28e2b" }])}</figure>`;
}

function drawRecord(r: RunRecord): void {
  drawStages(r.stages.map((s) => ({ name: s.name, startUnixMs: s.startUnixMs, durationMs: s.durationMs, cycles: s.cycles, open: false })));
  drawOps(r.ops.map((o) => ({ op: o.op, calls: o.calls, cycles: o.cycles, ms: o.ms })));
  drawSteps(r.steps.map((s) => ({ context: s.context, cycles: s.cycles, ms: s.ms })));
  $<HTMLIFrameElement>("report-frame").srcdoc = htmlReport([r]);
  $("report").hidden = false;
}

// ---- the engine --------------------------------------------------------------------------------

const worker = hooks.engineWorker ?? new Worker(new URL("./engine-worker.js", import.meta.url), { type: "module" });
let loadedKey: string | null = null;
let loadedThreads = 0;
let pending: ((message: FromEngine) => void) | null = null;

function send(message: ToEngine): void {
  worker.postMessage(message);
}

/** Resolves on the worker's next "loaded" or "done"; rejects on "error". */
function until(kind: "loaded" | "done"): Promise<FromEngine> {
  return new Promise((resolve, reject) => {
    pending = (m) => {
      if (m.type === "error") reject(new Error(m.message));
      else if (m.type === kind) resolve(m);
      else return;
      pending = null;
    };
  });
}

/**
 * The per-token charts, the live view's costliest part to draw, are redrawn once a second: every
 * redraw is main-thread time taken from the engine's threads (on two threads, interleaved runs:
 * 72–80 tokens/s with the whole view four times a second, 79–84 once a second).
 */
const CHARTS_INTERVAL_MS = 1000;
let chartsDrawn = -Infinity;

worker.onmessage = (event: MessageEvent<FromEngine>) => {
  const m = event.data;
  if (m.type === "status") status(m.text);
  else if (m.type === "text") {
    hooks.firstTokenMs ??= performance.now();
    $("generated").append(m.text); // a text node more: the text so far is not laid out anew
  } else if (m.type === "live") {
    drawStages(m.stages);
    drawOps(m.ops);
    const now = performance.now();
    if (now - chartsDrawn >= CHARTS_INTERVAL_MS) {
      chartsDrawn = now;
      drawSteps(m.steps);
    }
  }
  pending?.(m);
};
worker.onerror = (event) => showError(`the engine's worker failed: ${event.message}`);

async function run(): Promise<void> {
  $("error").hidden = true;
  let request: RunRequest;
  let weights: WeightsChoice;
  try {
    request = runRequest();
    weights = weightsChoice();
  } catch (err) {
    showError((err as Error).message);
    return;
  }
  const threads = Number(select("threads").value);
  const kernel = select("kernel").value;
  const dtype = select("dtype").value as WeightDtype;
  try {
    const key = loadKey(weights, dtype, kernel);
    if (key !== loadedKey) {
      setState("loading");
      loadedKey = null;
      const loaded = until("loaded");
      send({ type: "load", weights, settings: { kernel, threads, dtype } });
      const m = await loaded;
      if (m.type === "loaded") status(`loaded ${m.model.name} in ${ms(m.model.loadMs)}: ${m.model.nLayer} layers, d=${m.model.nEmbd}, ${m.model.simd ? "WebAssembly SIMD" : "TypeScript"} kernels`);
      loadedKey = key;
      loadedThreads = threads;
    } else if (threads !== loadedThreads) {
      send({ type: "threads", threads });
      loadedThreads = threads;
    }
    setState("running");
    $("report").hidden = true;
    $("prompt-shown").textContent = request.prompt ?? `[${request.inputIds!.join(", ")}] `;
    $("generated").textContent = "";
    const done = until("done");
    send({ type: "run", request });
    const m = await done;
    if (m.type !== "done") return;
    hooks.lastRun = m.record;
    const t = m.record.totals;
    status(`${m.record.generatedIds.length} tokens: prefill ${t.prefillTokensPerSec.toFixed(1)} tokens/s, decode ${t.decodeTokensPerSec.toFixed(1)} tokens/s · ${cycles(t.cycles)} cycles`);
    drawRecord(m.record);
    setState("done");
  } catch (err) {
    showError((err as Error).message);
  }
}

// ---- the article's 2×2 widget -----------------------------------------------------------------

function matrixWidget(): void {
  const cells = (id: string, values: number[]) => {
    $(id).innerHTML = values.map((v, i) => `<input type="number" step="any" value="${v}" aria-label="${id.toUpperCase()}[${i >> 1},${i & 1}]">`).join("");
  };
  cells("a", [1, 2, 3, 4]);
  cells("b", [5, 6, 7, 8]);
  const read = (id: string) => {
    const v = [...$(id).querySelectorAll("input")].map((el) => Number(el.value));
    return Tensor.from([[v[0], v[1]], [v[2], v[3]]]);
  };
  const show = (id: string, t: Tensor) => {
    $(id).innerHTML = Array.from(t.data, (v) => `<output>${Number(v.toPrecision(7))}</output>`).join("");
  };
  const update = () => {
    const a = read("a");
    const b = read("b");
    const clock = new Clock();
    const product = clock.run(() => matmul(a, b));
    const productCycles = clock.cycles;
    const sum = clock.run(() => add(a, b));
    show("ab", product);
    show("a-plus-b", sum);
    $("ab-cycles").textContent = `${productCycles} cycles: 2·2·2 multiply-accumulates`;
    $("add-cycles").textContent = `${clock.cycles - productCycles} cycles: one add per element`;
  };
  $("matrix").addEventListener("input", update);
  update();
}

/**
 * Without cross-origin isolation there is no SharedArrayBuffer: no worker threads and no shared
 * WebAssembly memory, so the engine runs on one thread with the TypeScript kernels (float32).
 */
function singleThreaded(): void {
  for (const [id, keep] of [["threads", "1"], ["dtype", "f32"]]) {
    const s = select(id);
    for (const option of [...s.options]) option.disabled = option.value !== keep;
    s.value = keep;
  }
  const note = document.createElement("p");
  note.id = "isolation-note";
  note.className = "note";
  note.textContent = "This page is not cross-origin isolated (its host sends no COOP/COEP headers and no service worker could add them), " +
    "so it has no SharedArrayBuffer: it runs on one thread with the TypeScript kernels and float32 weights. " +
    "Serve it over http(s) — any static host works — or run gpt2-cycles playground for threads and SIMD.";
  $("controls").before(note);
}

// ---- start -------------------------------------------------------------------------------------

function start(): void {
  if (hooks.reloading !== undefined) return;
  const style = document.createElement("style");
  style.textContent = REPORT_CSS;
  document.head.prepend(style);
  const params = new URLSearchParams(location.search);
  fillSelects(params);
  matrixWidget();
  $("controls").addEventListener("submit", (event) => {
    event.preventDefault();
    void run();
  });
  $("stop").addEventListener("click", () => send({ type: "stop" }));
  void fetch("info.json").then((r) => r.json()).then((info: { model: string | null }) => {
    $("served-note").textContent = info.model === null ? "(none: start the server with --model DIR)" : `(${info.model}, the server's --model)`;
  }, () => { $("served-note").textContent = "(none here)"; });
  setState("idle");
  if (!crossOriginIsolated) singleThreaded();
  if (params.get("autorun") === "1") void run();
}

start();
