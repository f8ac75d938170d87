/** Shared by the score-ranked coreset rules: the `size` indices with the highest (or lowest) scores. */

/**
 * Indices of the `size` largest scores (`highest`) or smallest (otherwise); ties go to the lower index.
 * Returned in rank order (best first). NaN scores are an error: a rank over them means nothing.
 */
export function topIndices(scores: ArrayLike<number>, size: number, highest: boolean): Int32Array {
  const n = scores.length;
  for (let j = 0; j < n; j++) if (Number.isNaN(scores[j]!)) throw new Error(`score of pair ${j} is NaN`);
  const order = Array.from({ length: n }, (_, j) => j);
  const sign = highest ? -1 : 1;
  order.sort((a, b) => sign * (scores[a]! - scores[b]!) || a - b);
  return Int32Array.from(order.slice(0, size));
}
