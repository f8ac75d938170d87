/**
 * k-center greedy (Gonzalez 1985; the core-set of Sener & Savarese 2018): farthest-point traversal of the joint
 * features, so every pair lies near some chosen one. The first centre is the pair nearest the data mean (no
 * randomness: every evaluation run uses the same coreset); ties → lower index.
 *
 * Each step measures only the new centre against the pairs (‖x‖² + ‖c‖² − 2x·c, float64), and skips every pair
 * the triangle inequality rules out: a pair whose own centre o lies at least twice its distance from the new
 * centre c cannot be nearer to c (‖x − c‖ ≥ ‖o − c‖ − ‖x − o‖ ≥ ‖x − o‖). O(size · n · d) at worst, far less on
 * clustered features; the joint rows are made on demand (never an n × d copy).
 */
import { type JointRows, jointRows, matrixRows } from './joint';
import type { CoresetRule } from './types';

/** relative slack on the pruning bound, so rounding never skips a pair that could get nearer */
const SLACK = 1e-9;

/** Greedy farthest-point selection over joint rows (squared Euclidean distances). */
export function kCenterRows(src: JointRows, size: number): Int32Array {
  const { n, d } = src;
  const sq = src.sqNorms();
  const mu = src.mean();
  let muSq = 0;
  for (let q = 0; q < d; q++) muSq += mu[q]! * mu[q]!;
  const dots = new Float64Array(n);
  src.dotAll(mu, dots);
  let next = 0;
  let firstDist = Infinity;
  for (let i = 0; i < n; i++) {
    const dist = sq[i]! + muSq - 2 * dots[i]!;
    if (dist < firstDist) {
      firstDist = dist;
      next = i;
    }
  }
  const picked = new Int32Array(size);
  const taken = new Uint8Array(n);
  /** squared distance of each pair to its nearest chosen centre, and that centre (its step) */
  const near = new Float64Array(n).fill(Infinity);
  const owner = new Int32Array(n).fill(-1);
  const centres: Float64Array[] = [];
  const apart = new Float64Array(size);
  const todo = new Int32Array(n);
  for (let t = 0; t < size; t++) {
    picked[t] = next;
    taken[next] = 1;
    near[next] = 0;
    owner[next] = t;
    const c = src.row(next);
    const cSq = sq[next]!;
    for (let s = 0; s < t; s++) {
      let e = 0;
      const o = centres[s]!;
      for (let q = 0; q < d; q++) e += (o[q]! - c[q]!) ** 2;
      apart[s] = Math.sqrt(e);
    }
    centres.push(c);
    let count = 0;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      const o = owner[i]!;
      if (o >= 0 && apart[o]! >= 2 * Math.sqrt(near[i]!) * (1 + SLACK) + 1e-12) continue;
      todo[count++] = i;
    }
    src.dotRows(c, todo, count, dots);
    for (let r = 0; r < count; r++) {
      const i = todo[r]!;
      const dist = Math.max(0, sq[i]! + cSq - 2 * dots[r]!);
      if (dist < near[i]!) {
        near[i] = dist;
        owner[i] = t;
      }
    }
    let far = -1;
    let farDist = -Infinity;
    for (let i = 0; i < n; i++) {
      if (taken[i]) continue;
      if (near[i]! > farDist) {
        farDist = near[i]!;
        far = i;
      }
    }
    next = far;
  }
  return picked;
}

/** Greedy farthest-point selection on n rows of width d (a dense matrix). */
export function kCenterSelect(x: Float32Array, n: number, d: number, size: number): Int32Array {
  return kCenterRows(matrixRows(x, n, d), size);
}

export const kCenterCoreset: CoresetRule = {
  name: 'kcenter',
  description: 'k-center greedy: farthest-point traversal of the joint (image ; caption) features, starting at the pair nearest the mean',
  needs: [],
  randomised: false,
  select: (ctx, size) => kCenterRows(jointRows(ctx.train), size),
};
