/**
 * k-means coreset: cluster the joint features into k = size clusters (k-means++ seeding, Arthur & Vassilvitskii
 * 2007; Lloyd iterations until the assignments stop changing or 50 iterations), then keep for each centroid the
 * real pair nearest to it (distinct: a pair already kept goes to no other centroid, which takes its next
 * nearest). The seeding draws from `rand`, so the coreset is fixed by the seed (a fresh one per evaluation run).
 *
 * Exactly Lloyd's result, computed with fewer of the O(n · k · d) distances: the seeding and the assignments use
 * Hamerly's bounds (2010) — an upper bound on each pair's distance to its centroid and a lower bound on its
 * distance to every other one — so a pair is only measured when its centroid might not be strictly nearest.
 */
import { randInt } from '../util/random';
import type { Rng } from '../util/random';
import { jointFeatures, sqDist } from './joint';
import type { CoresetRule } from './types';

/** at most this many Lloyd iterations (assignment + update) */
export const KMEANS_MAX_ITERATIONS = 50;

/** relative slack on the bounds, so rounding never skips a pair whose cluster could change */
const SLACK = 1e-9;

export interface KMeansResult {
  /** k × d centroids (float64) */
  readonly centroids: Float64Array;
  /** cluster of each row */
  readonly assignment: Int32Array;
  /** Lloyd iterations run */
  readonly iterations: number;
  /** the chosen row per centroid (distinct) */
  readonly picked: Int32Array;
}

/** k-means++ seeds with, for every row, its nearest seed (exact) and a lower bound on its distance to every other seed. */
export interface KMeansSeeds {
  /** k × d seeds (float64 copies of rows) */
  readonly centres: Float64Array;
  readonly owner: Int32Array;
  /** squared distance to the owner */
  readonly near: Float64Array;
  /** lower bound on the distance (not squared) to every seed but the owner */
  readonly second: Float64Array;
}

/**
 * k-means++ seeding: the first centre uniform, each next one a row drawn with probability ∝ its squared
 * distance to the nearest centre so far. A row whose owner is at least twice its own distance away from the new
 * centre cannot be strictly nearer to it (triangle inequality), so its distance is bounded instead of computed.
 */
export function kMeansPlusPlus(x: Float32Array, n: number, d: number, k: number, rand: Rng): KMeansSeeds {
  const centres = new Float64Array(k * d);
  const owner = new Int32Array(n);
  const near = new Float64Array(n).fill(Infinity);
  const second = new Float64Array(n).fill(Infinity);
  const apart = new Float64Array(k);
  let pick = randInt(rand, n);
  for (let t = 0; t < k; t++) {
    for (let q = 0; q < d; q++) centres[t * d + q] = x[pick * d + q]!;
    for (let j = 0; j < t; j++) apart[j] = Math.sqrt(sqDist(centres, t, centres, j, d));
    for (let i = 0; i < n; i++) {
      const u = Math.sqrt(near[i]!);
      if (t > 0 && apart[owner[i]!]! >= 2 * u) {
        second[i] = Math.min(second[i]!, apart[owner[i]!]! - u);
        continue;
      }
      const e = sqDist(x, i, centres, t, d);
      if (e < near[i]!) {
        second[i] = Math.min(second[i]!, u);
        near[i] = e;
        owner[i] = t;
      } else second[i] = Math.min(second[i]!, Math.sqrt(e));
    }
    if (t === k - 1) break;
    let total = 0;
    for (let i = 0; i < n; i++) total += near[i]!;
    if (total > 0) {
      const r = rand.next() * total;
      let acc = 0;
      let last = -1;
      pick = -1;
      for (let i = 0; i < n && pick < 0; i++) {
        if (near[i]! <= 0) continue;
        last = i;
        acc += near[i]!;
        if (acc > r) pick = i;
      }
      if (pick < 0) pick = last; // rounding left r at the very end
    } else {
      pick = randInt(rand, n); // every row coincides with a centre: any row is as good
    }
  }
  return { centres, owner, near, second };
}

/** Nearest and second-nearest centroid of row i (distances, not squared); ties → lower index. */
function nearestTwo(x: Float32Array, i: number, c: Float64Array, k: number, d: number): [number, number, number] {
  let a = 0;
  let u = Infinity;
  let l = Infinity;
  for (let j = 0; j < k; j++) {
    const dist = sqDist(x, i, c, j, d);
    if (dist < u) {
      l = u;
      u = dist;
      a = j;
    } else if (dist < l) l = dist;
  }
  return [a, Math.sqrt(u), Math.sqrt(l)];
}

/** k-means (k-means++ seeding from `rand`, Lloyd with Hamerly's bounds), then the distinct real row nearest each centroid. */
export function kMeansSelect(x: Float32Array, n: number, d: number, k: number, rand: Rng): KMeansResult {
  const seeds = kMeansPlusPlus(x, n, d, k, rand);
  const c = seeds.centres;
  const assignment = seeds.owner;
  const upper = seeds.near.map(Math.sqrt);
  const lower = seeds.second;
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
  const moved = new Float64Array(k);
  const old = new Float64Array(d);
  let iterations = 0;
  while (iterations < KMEANS_MAX_ITERATIONS) {
    iterations++;
    // update: each centroid the mean of its cluster (an empty cluster keeps its centroid)
    sums.fill(0);
    counts.fill(0);
    for (let i = 0; i < n; i++) {
      const a = assignment[i]!;
      counts[a]!++;
      for (let q = 0, o = a * d, p = i * d; q < d; q++) sums[o + q] = sums[o + q]! + x[p + q]!;
    }
    let maxMove = 0;
    let maxAt = -1;
    let secondMove = 0;
    for (let j = 0; j < k; j++) {
      const o = j * d;
      let m = 0;
      if (counts[j]! > 0) {
        for (let q = 0; q < d; q++) old[q] = c[o + q]!;
        for (let q = 0; q < d; q++) c[o + q] = sums[o + q]! / counts[j]!;
        for (let q = 0; q < d; q++) m += (c[o + q]! - old[q]!) ** 2;
      }
      m = Math.sqrt(m);
      moved[j] = m;
      if (m > maxMove) {
        secondMove = maxMove;
        maxMove = m;
        maxAt = j;
      } else if (m > secondMove) secondMove = m;
    }
    // assignment, with the bounds moved by how far the centroids moved: a row whose centroid is strictly
    // nearer than any other could be keeps it without a scan
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const a = assignment[i]!;
      upper[i] = (upper[i]! + moved[a]!) * (1 + SLACK);
      lower[i] = (lower[i]! - (a === maxAt ? secondMove : maxMove)) * (1 - SLACK);
      if (upper[i]! < lower[i]!) continue;
      upper[i] = Math.sqrt(sqDist(x, i, c, a, d)) * (1 + SLACK);
      if (upper[i]! < lower[i]!) continue;
      const [b, u, l] = nearestTwo(x, i, c, k, d);
      assignment[i] = b;
      upper[i] = u;
      lower[i] = l;
      if (b !== a) changed++;
    }
    if (changed === 0) break;
  }
  // for each centroid in turn, the nearest row not yet kept (ties → lower index); a row of another cluster is
  // at least its lower bound away, so it is only measured when that bound does not rule it out
  const picked = new Int32Array(k);
  const taken = new Uint8Array(n);
  const members: number[][] = Array.from({ length: k }, () => []);
  for (let i = 0; i < n; i++) members[assignment[i]!]!.push(i);
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bestDist = Infinity;
    const consider = (i: number) => {
      const dist = sqDist(x, i, c, j, d);
      if (dist < bestDist || (dist === bestDist && i < best)) {
        bestDist = dist;
        best = i;
      }
    };
    for (const i of members[j]!) if (!taken[i]) consider(i);
    for (let i = 0; i < n; i++) {
      if (taken[i] || assignment[i] === j || lower[i]! > Math.sqrt(bestDist) * (1 + SLACK)) continue;
      consider(i);
    }
    picked[j] = best;
    taken[best] = 1;
  }
  return { centroids: c, assignment, iterations, picked };
}

export const kMeansCoreset: CoresetRule = {
  name: 'kmeans',
  description: 'k-means (k = size, k-means++ seeding) on the joint (image ; caption) features; the pair nearest each centroid',
  needs: [],
  randomised: true,
  select: (ctx, size, rand) => {
    const f = jointFeatures(ctx.train);
    return kMeansSelect(f.x, f.n, f.d, size, rand).picked;
  },
};
