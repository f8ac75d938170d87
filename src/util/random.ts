/**
 * Seeded randomness. Every function that draws random numbers takes an `Rng` argument; there is no
 * module-global random state. mulberry32: small, fast, and its whole state is one 32-bit integer, so a
 * checkpoint can store it and a resumed run continues the same stream.
 */
export interface Rng {
  /** uniform in [0, 1) */
  next(): number;
  /**
   * The next `out.length` draws as 32-bit integers, `next()` × 2^32 each: the same stream, at ~4.5 ns a draw instead of
   * ~6–10 through `next()` (a training step's two dropout masks take 65,536 draws).
   */
  nextUint32(out: Uint32Array): void;
  /** the current state (store it in a checkpoint) */
  state(): number;
  /**
   * Advance the stream by `n` draws without computing them. Present where the stream is mulberry32's from `state()`
   * (its state is a counter), so a kernel may compute the next draws itself and skip them here (the dropout masks of
   * backend/head-kernels); absent on other streams, such as a test's fake.
   */
  readonly skip?: (n: number) => void;
}

/** mulberry32's increment: its state is a counter, and each draw hashes the next value */
const STEP = 0x6d2b79f5;

export function rng(seed: number): Rng {
  let a = seed | 0; // int32 arithmetic throughout: the same bits as uint32, without doubles
  // one mulberry32 output as an unsigned 32-bit integer
  const draw = () => {
    a = (a + STEP) | 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= (t + Math.imul(t ^ (t >>> 7), t | 61)) | 0;
    return (t ^ (t >>> 14)) >>> 0;
  };
  return {
    next: () => draw() / 4294967296,
    nextUint32(out) {
      for (let i = 0; i < out.length; i++) out[i] = draw();
    },
    state: () => a >>> 0,
    skip: (n) => {
      a = (a + Math.imul(n, STEP)) | 0;
    },
  };
}

/** An integer in [0, n). */
export const randInt = (r: Rng, n: number): number => Math.floor(r.next() * n);

/** Fisher–Yates permutation of 0..n−1. */
export function permutation(r: Rng, n: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = randInt(r, i + 1);
    const t = p[i]!;
    p[i] = p[j]!;
    p[j] = t;
  }
  return p;
}

/** k distinct indices from 0..n−1 (k ≤ n), in random order. */
export function sampleWithoutReplacement(r: Rng, n: number, k: number): Int32Array {
  return permutation(r, n).subarray(0, k);
}

/** Standard normal (Box–Muller). */
export function normal(r: Rng): number {
  const u = 1 - r.next();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next());
}

/** A seed for a named sub-stream (e.g. `deriveSeed(seed, 'expert', 3)`), stable across runs and machines. */
export function deriveSeed(seed: number, ...parts: (string | number)[]): number {
  let h = 0x811c9dc5 ^ (seed >>> 0);
  for (const ch of parts.join('/')) {
    h ^= ch.charCodeAt(0);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  // final avalanche (murmur3 fmix32)
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b) >>> 0;
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}
