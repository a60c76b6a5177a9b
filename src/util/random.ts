/**
 * A small seeded PRNG (mulberry32): the same seed gives the same stream on every machine,
 * which makes seeded sampling and the random-weights mode reproducible.
 */
const GOLDEN = 0x6d2b79f5;

/** mulberry32's output for a state: the state itself just advances by GOLDEN each step. */
function mix(state: number): number {
  let t = Math.imul(state ^ (state >>> 15), state | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return (t ^ (t >>> 14)) >>> 0;
}

export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + GOLDEN) >>> 0;
    return mix(this.state) / 4294967296;
  }

  /**
   * Fills `out` with values uniform on [−a, a), two per step of the generator (16 bits each):
   * half the generator steps for 124M random weights, at a resolution (a/32768) far below what
   * float32 weights of that size resolve anyway.
   */
  fillUniform(out: Float32Array, a: number): void {
    const step = (2 * a) / 65536;
    let state = this.state;
    let i = 0;
    for (; i + 1 < out.length; i += 2) {
      state = (state + GOLDEN) >>> 0;
      const t = mix(state);
      out[i] = (t & 0xffff) * step - a;
      out[i + 1] = (t >>> 16) * step - a;
    }
    this.state = state;
    if (i < out.length) out[i] = (2 * this.next() - 1) * a;
  }
}
