/**
 * Summary statistics of repeated timings: median and spread (min, max, quartiles) over the repetitions that
 * followed the warm-up. Pure functions, no I/O; the harness (main.ts) and the report (report.ts) use them.
 */

export interface Summary {
  /** repetitions summarised */
  readonly n: number;
  readonly median: number;
  readonly min: number;
  readonly max: number;
  /** first and third quartiles (linear interpolation between order statistics) */
  readonly q1: number;
  readonly q3: number;
}

/**
 * The q-quantile (0 ≤ q ≤ 1) of `values` with linear interpolation between order statistics (R's type 7,
 * numpy's default): position q·(n − 1) in the sorted values. Throws on an empty list or a non-finite value.
 */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  if (!(q >= 0 && q <= 1)) throw new Error(`quantile: q = ${q} is outside [0, 1]`);
  if (!values.every(Number.isFinite)) throw new Error('quantile: a value is NaN or infinite');
  const s = [...values].sort((a, b) => a - b);
  const at = q * (s.length - 1);
  const lo = Math.floor(at);
  const hi = Math.ceil(at);
  return s[lo]! + (s[hi]! - s[lo]!) * (at - lo);
}

export const median = (values: readonly number[]): number => quantile(values, 0.5);

export function summarise(values: readonly number[]): Summary {
  return {
    n: values.length,
    median: median(values),
    min: quantile(values, 0),
    max: quantile(values, 1),
    q1: quantile(values, 0.25),
    q3: quantile(values, 0.75),
  };
}

/** Every value scaled by `k` (seconds per 16 images → per 100 images, KiB → MiB). */
export function scaleSummary(s: Summary, k: number): Summary {
  return { n: s.n, median: s.median * k, min: s.min * k, max: s.max * k, q1: s.q1 * k, q3: s.q3 * k };
}
