/**
 * k-center greedy (Gonzalez 1985; the core-set of Sener & Savarese 2018): farthest-point traversal of the joint
 * features, so every pair lies near some chosen one. The first centre is the pair nearest the data mean (no
 * randomness: every evaluation run uses the same coreset); ties → lower index.
 */
import { jointFeatures, meanRow, sqDist } from './joint';
import type { CoresetRule } from './types';

/** Greedy farthest-point selection on n rows of width d (squared Euclidean distances): O(size · n · d). */
export function kCenterSelect(x: Float32Array, n: number, d: number, size: number): Int32Array {
  const mu = meanRow({ n, d, x });
  let first = 0;
  let firstDist = Infinity;
  for (let i = 0; i < n; i++) {
    const dist = sqDist(x, i, mu, 0, d);
    if (dist < firstDist) {
      firstDist = dist;
      first = i;
    }
  }
  const picked = new Int32Array(size);
  const taken = new Uint8Array(n);
  /** squared distance of each pair to its nearest chosen centre */
  const near = new Float64Array(n).fill(Infinity);
  let next = first;
  for (let t = 0; t < size; t++) {
    picked[t] = next;
    taken[next] = 1;
    near[next] = 0;
    let far = -1;
    let farDist = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const dist = Math.min(near[i]!, sqDist(x, i, x, next, d));
      near[i] = dist;
      if (dist > farDist) {
        farDist = dist;
        far = i;
      }
    }
    next = far;
  }
  return picked;
}

export const kCenterCoreset: CoresetRule = {
  name: 'kcenter',
  description: 'k-center greedy: farthest-point traversal of the joint (image ; caption) features, starting at the pair nearest the mean',
  needs: [],
  randomised: false,
  select: (ctx, size) => {
    const f = jointFeatures(ctx.train);
    return kCenterSelect(f.x, f.n, f.d, size);
  },
};
