/**
 * Where a forward pass's op outputs live: slabs of memory reused pass after pass, in two
 * generations that alternate block by block. A browser allocates, faults in and accounts for
 * every ArrayBuffer (10–200 µs each, measured in Chromium, against about 1 µs in Node), and
 * memory touched for the first time costs a page fault per 4 KiB: a 128-token prefill of GPT-2
 * small makes about 100 MB of outputs, and faulting fresh pages for them took longer than all
 * its matmuls (measured on this project's 2-core VM). Outputs carved from slabs already mapped
 * cost neither.
 *
 * Generations: in a residual stack only x crosses from one block to the next, so when block i
 * starts, nothing made during block i−2 or before is still needed — block i reuses that
 * generation's slabs. Whatever must outlive the pass is copied out (model.step copies the logits).
 */

/** Outputs are carved from slabs of this size; a larger output gets a slab of its own size. */
const SLAB_BYTES = 1 << 22;
/**
 * Per generation; past this, outputs are plain arrays the collector takes back, which every SIMD
 * kernel after them must copy in or leave to TypeScript. A block of GPT-2 small's prefill of
 * 1000 tokens makes about 160 MB of outputs (the attention scores alone 48 MB): at 64 MiB here
 * its prefill took 17.9 s on one thread, at 256 MiB 5.9 s (generate.ts --threads 1, 1000 ids).
 */
const GENERATION_BYTES = 256 * 2 ** 20;
/** The most an arena holds of its memory, both generations. */
export const ARENA_BYTES = 2 * GENERATION_BYTES;

/** Zeroed floats for a slab, and how to give a replaced one back. */
export interface SlabMemory {
  take(floats: number): Float32Array;
  give(slab: Float32Array): void;
}

class Generation {
  readonly slabs: Float32Array[] = [];
  index = -1;
  used = 0;
  total = 0;

  reset(): void {
    this.index = -1;
    this.used = 0;
    this.total = 0;
  }
}

export class PassArena {
  private readonly generations = [new Generation(), new Generation()];
  private current = 0;
  /** Slabs made or replaced so far: while it stands, passes that ask alike get the same addresses. */
  slabsPlaced = 0;

  /** `memory`: where slabs come from (the engine's WebAssembly memory, so kernels read outputs in place). */
  constructor(private readonly memory: SlabMemory) {}

  /** Bytes of the slabs made so far. */
  get bytes(): number {
    let total = 0;
    for (const g of this.generations) for (const slab of g.slabs) total += slab.byteLength;
    return total;
  }

  /** A new pass: everything the last one carved may be overwritten. */
  begin(): void {
    for (const g of this.generations) g.reset();
    this.current = 0;
  }

  /** A new block: its outputs go where those of the block before last were. */
  nextBlock(): void {
    this.current ^= 1;
    this.generations[this.current].reset();
  }

  /** Room for n floats, zeroed unless `zero` is false. */
  floats(n: number, zero = true): Float32Array {
    const g = this.generations[this.current];
    const bytes = (4 * n + 15) & ~15;
    if (g.index < 0 || g.used + bytes > g.slabs[g.index].byteLength) {
      const size = Math.max(SLAB_BYTES, bytes);
      if (g.total + size > GENERATION_BYTES) return new Float32Array(n);
      g.index++;
      // Passes ask in the same order, so slab i usually fits again; one too small is replaced.
      if (g.index === g.slabs.length) {
        g.slabs.push(this.memory.take(size / 4));
        this.slabsPlaced++;
      } else if (g.slabs[g.index].byteLength < bytes) {
        this.memory.give(g.slabs[g.index]);
        g.slabs[g.index] = this.memory.take(size / 4);
        this.slabsPlaced++;
      }
      g.total += g.slabs[g.index].byteLength;
      g.used = 0;
    }
    const view = g.slabs[g.index].subarray(g.used / 4, g.used / 4 + n);
    g.used += bytes;
    return zero ? view.fill(0) : view;
  }
}
