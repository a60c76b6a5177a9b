/** Index of the first NaN or ±∞ in `values`, or −1. */
export function firstNonFinite(values: Float32Array): number {
  for (let i = 0; i < values.length; i++) {
    // x − x is 0 for every finite x, NaN for NaN and ±∞.
    if (values[i] - values[i] !== 0) return i;
  }
  return -1;
}
