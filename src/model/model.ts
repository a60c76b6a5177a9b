import type { Engine } from "../kernels/engine.ts";
import type { Repeat } from "../kernels/replay.ts";
import { contextRoom } from "../tensor/alloc.ts";
import { F32_BYTES, Tensor } from "../tensor/tensor.ts";
import type { GPT2Config } from "./config.ts";
import { embedTokens, gpt2 } from "./gpt2.ts";
import { KVCache } from "./kv-cache.ts";
import type { GPT2Params } from "./params.ts";

/** Where the weights came from: a checkpoint file, or seeded random numbers. */
export type WeightSource = { kind: "file"; path: string } | { kind: "random"; seed: number };

/**
 * A loaded GPT-2: config, parameters, the engine its products run on (which it owns), and the
 * checks that keep bad ids out of the forward pass.
 */
export class GPT2Model {
  private held: GPT2Params | null;

  constructor(
    readonly config: GPT2Config,
    params: GPT2Params,
    readonly weights: WeightSource,
    readonly engine: Engine,
  ) {
    this.held = params;
  }

  get params(): GPT2Params {
    if (this.held === null) throw new Error("this model was disposed: load it again");
    return this.held;
  }

  /** Gives back the weights, the engine's WebAssembly memory and its threads. */
  async dispose(): Promise<void> {
    this.held = null;
    await this.engine.dispose();
  }

  /** An empty KV cache for up to `capacity` positions. */
  newCache(capacity = this.config.nPositions): KVCache {
    return new KVCache(this.engine, this.config.nLayer, Math.min(capacity, this.config.nPositions), this.config.nEmbd);
  }

  /**
   * Makes room for `count` caches of up to `capacity` positions now, so creating them later
   * does not grow the kernels' memory (a timed run reserves before it starts).
   */
  reserveCaches(count: number, capacity = this.config.nPositions): void {
    this.engine.reserveCaches(2 * this.config.nLayer * count, Math.min(capacity, this.config.nPositions) * this.config.nEmbd);
  }

  /**
   * How many sequences of up to `capacity` positions a run can decode side by side in the memory
   * the engine has left. Each holds its KV cache, and in every decode step a row of each block's
   * activations (about 16·d floats, and its heads' scores and weights over `capacity` positions)
   * and of logits; besides them the run holds a warm-up cache of `warmUpCapacity` positions and
   * the pass arena's slabs.
   */
  sequencesThatFit(capacity: number, warmUpCapacity: number): number {
    const { nLayer, nHead, nEmbd, nPositions, vocabSize } = this.config;
    const cache = (positions: number) => 2 * nLayer * Math.min(positions, nPositions) * nEmbd * F32_BYTES;
    const row = (16 * nEmbd + 2 * nHead * capacity + vocabSize) * F32_BYTES;
    const left = this.engine.memoryLeft() - this.engine.arenaBytesToCome() - cache(warmUpCapacity);
    return Math.max(0, Math.floor(left / (cache(capacity) + row)));
  }

  /** Logits of the last position for `ids`, from a fresh pass with no cache. */
  forward(ids: readonly number[]): Float32Array {
    return this.step(ids, this.newCache(ids.length)).data;
  }

  /**
   * Feeds the next tokens through the model, extending `cache`; logits [logitRows, V] of the last
   * positions. `into`: where the logits go (at least logitRows·V floats), reused from step to
   * step — a fresh 200 KB array per step cost 0.4–0.6 ms of page faults (Node 24, this VM).
   */
  step(ids: readonly number[], cache: KVCache, logitRows = 1, into?: Float32Array): Tensor {
    this.checkIds(ids, cache.length);
    if (!Number.isInteger(logitRows) || logitRows < 1 || logitRows > ids.length) throw new Error(`logitRows must be 1..${ids.length}, got ${logitRows}`);
    this.checkInto(into, logitRows);
    const params = this.params;
    const past = [cache.length];
    const pass = () => gpt2(params, this.config, ids, [cache], logitRows);
    const logits = this.engine.pass(pass, false, this.repeat(ids, [cache], logitRows));
    this.checkFinite(logits, [cache], past, pass, false);
    // The pass's arena is reused by the next one: the logits leave it.
    return copyOut(logits, into);
  }

  /**
   * Records the pass `step(ids, cache, logitRows)` would run, and runs none of it (see
   * Engine.rehearse): that step, run next, finds its memory made and its kernels tuned. The cache
   * is left as it was.
   */
  rehearse(ids: readonly number[], cache: KVCache, logitRows = 1): void {
    this.checkIds(ids, cache.length);
    const past = cache.length;
    try {
      this.engine.rehearse(() => gpt2(this.params, this.config, ids, [cache], logitRows));
    } finally {
      cache.length = past;
    }
  }

  /**
   * One decode step for a batch: the next token of each sequence, each extending its own cache.
   * Every weight is streamed once for all of them. Logits [N, V], row s for sequence s — bit for
   * bit what `step([ids[s]], caches[s])` gives (see Engine.pass). `into`: as for step.
   */
  stepBatch(ids: readonly number[], caches: readonly KVCache[], into?: Float32Array): Tensor {
    if (ids.length !== caches.length || ids.length === 0) throw new Error(`stepBatch: ${ids.length} tokens for ${caches.length} caches`);
    ids.forEach((id, s) => this.checkIds([id], caches[s].length));
    this.checkInto(into, ids.length);
    const params = this.params;
    const past = caches.map((cache) => cache.length);
    const pass = () => gpt2(params, this.config, ids, caches, ids.length);
    const logits = this.engine.pass(pass, true, this.repeat(ids, caches, ids.length));
    this.checkFinite(logits, caches, past, pass, true);
    return copyOut(logits, into);
  }

  /**
   * A decode step (one new token per cache) is the step before it moved on by a position, and
   * the engine may restore it rather than record it (kernels/replay.ts): alike are steps on the
   * same caches, with the same logit rows, whose contexts are in the same buckets.
   */
  private repeat(ids: readonly number[], caches: readonly KVCache[], logitRows: number): Repeat | undefined {
    if (ids.length !== caches.length) return undefined;
    const first = caches[0].length;
    const contexts = caches.map((cache) => `${contextRoom(cache.length + 1)}:${cache.length - first}`).join(",");
    return {
      objects: [this.params, ...caches], signature: `${logitRows}/${contexts}`, position: first,
      first: () => embedTokens(this.params, ids, caches),
      skipped: () => caches.forEach((cache) => cache.length++),
    };
  }

  /**
   * Returns if the logits are all finite. Otherwise the pass is run again op by op from where it
   * started to name the first op whose output went non-finite, the caches are left as they were
   * before it, and the step throws: a NaN or ∞ would otherwise be sampled as token 0, silently.
   */
  private checkFinite(logits: Tensor, caches: readonly KVCache[], past: number[], pass: () => unknown, sequences: boolean): void {
    const at = this.engine.firstNonFinite(logits.data);
    if (at < 0) return;
    // (read now: the pass run again below reuses the logits' memory)
    const value = logits.data[at];
    const rewind = () => caches.forEach((cache, s) => (cache.length = past[s]));
    rewind();
    const op = this.engine.firstNonFiniteOp(pass, sequences);
    rewind();
    const where = op === null ? "" : ` first in ${op.op}${op.role === "" ? "" : ` (${op.role})`} ${op.layer >= 0 ? `of layer ${op.layer}` : "outside the blocks"}`;
    throw new Error(`the forward pass produced ${value}${where}: the weights or config.json hold values GPT-2 cannot compute with`);
  }

  private checkInto(into: Float32Array | undefined, rows: number): void {
    const floats = rows * this.config.vocabSize;
    if (into !== undefined && into.length < floats) throw new Error(`the logits need ${floats} floats, and the array given for them holds ${into.length}`);
  }

  private checkIds(ids: readonly number[], past: number): void {
    const { vocabSize, nPositions } = this.config;
    if (ids.length === 0) throw new Error("no tokens to run: the input is empty");
    if (past + ids.length > nPositions) {
      throw new Error(`a sequence of ${past + ids.length} tokens is longer than the model's context of ${nPositions} positions`);
    }
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new Error(`token id ${id} is outside the vocabulary (0..${vocabSize - 1})`);
    }
  }
}

/** `logits` copied into `into` (checked before the pass), or into a new array. */
function copyOut(logits: Tensor, into: Float32Array | undefined): Tensor {
  const to = into === undefined ? new Float32Array(logits.size) : into.subarray(0, logits.size);
  to.set(logits.data);
  return new Tensor(to, logits.shape);
}
