/**
 * Herding (Welling 2009; Chen, Welling & Smola 2010; the herding coreset baseline of dataset-distillation
 * papers since Zhao et al. 2021): greedily add the pair that brings the running mean of the chosen joint features closest to the
 * mean of all joint features. Deterministic (ties → lower index), so every evaluation run uses the same coreset.
 */
import { type JointRows, jointRows, matrixRows } from './joint';
import type { CoresetRule } from './types';

/**
 * With t−1 pairs chosen (sum S), adding x gives the mean (S + x)/t, whose squared distance to the data mean μ
 * is ‖x − (tμ − S)‖²/t²; so pick the unpicked x minimising ‖x‖² − 2t·x·μ + 2·x·S. x·μ is computed once and
 * x·S is kept up to date with one matrix-vector product per step (the new pair's Gram column, float64, the rows
 * made on demand): O(size · n · d), memory O(n).
 */
export function herdingRows(src: JointRows, size: number): Int32Array {
  const { n } = src;
  const sq = src.sqNorms();
  const xMu = new Float64Array(n);
  src.dotAll(src.mean(), xMu);
  const xS = new Float64Array(n);
  const column = new Float64Array(n);
  const taken = new Uint8Array(n);
  const picked = new Int32Array(size);
  for (let t = 1; t <= size; t++) {
    let best = -1;
    let bestScore = Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const score = sq[i]! - 2 * t * xMu[i]! + 2 * xS[i]!;
      if (score < bestScore) {
        bestScore = score;
        best = i;
      }
    }
    picked[t - 1] = best;
    taken[best] = 1;
    if (t === size) break;
    src.dotAll(src.row(best), column);
    for (let i = 0; i < n; i++) xS[i] = xS[i]! + column[i]!;
  }
  return picked;
}

/** Herding on n rows of width d (a dense matrix). */
export function herdingSelect(x: Float32Array, n: number, d: number, size: number): Int32Array {
  return herdingRows(matrixRows(x, n, d), size);
}

export const herdingCoreset: CoresetRule = {
  name: 'herding',
  description: 'herding: greedily keep the running mean of the chosen joint (image ; caption) features closest to the data mean',
  needs: [],
  randomised: false,
  select: (ctx, size) => herdingRows(jointRows(ctx.train), size),
};
