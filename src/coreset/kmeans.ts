/**
 * k-means coreset: cluster the joint features into k = size clusters (k-means++ seeding, Arthur & Vassilvitskii
 * 2007; Lloyd iterations until the assignments stop changing or 50 iterations), then keep for each centroid the
 * real pair nearest to it (distinct: a pair already kept goes to no other centroid, which takes its next
 * nearest). The seeding draws from `rand`, so the coreset is fixed by the seed (a fresh one per evaluation run).
 *
 * Exactly Lloyd's result, computed fast. The seeding bounds distances with the triangle inequality (Hamerly
 * 2010). Each assignment step measures every pair against every centroid as one float32 matrix product per
 * block of rows (‖x‖² + ‖c‖² − 2 x·c, the backend's GEMM), then settles each pair in float64: every centroid
 * whose float32 distance lies within twice the product's worst-case rounding error (Higham's γ_d bound) of
 * the smallest is measured exactly, and the exact nearest wins (ties → lower index). So the assignment is the
 * float64 one, whatever order the GEMM sums in, at GEMM speed (Flickr8k, k = 500: minutes, not hours).
 */
import { tf } from '../backend';
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

function transpose(c: Float64Array, k: number, d: number): Float32Array {
  const t = new Float32Array(k * d);
  for (let j = 0; j < k; j++) for (let q = 0; q < d; q++) t[q * k + j] = c[j * d + q]!;
  return t;
}

/** rows per GEMM block of the assignment step */
const BLOCK = 2048;
const UNIT_ROUNDOFF = 2 ** -24;

/**
 * Every row's nearest centroid (exact, float64; ties → lower index), its distance, and a lower bound on its
 * distance to every other centroid. Distances are not squared.
 */
export function assignNearest(x: Float32Array, n: number, d: number, c: Float64Array, k: number): { owner: Int32Array; near: Float64Array; second: Float64Array } {
  const owner = new Int32Array(n);
  const near = new Float64Array(n);
  const second = new Float64Array(n);
  const cNorm = new Float64Array(k);
  let cMax = 0;
  for (let j = 0; j < k; j++) {
    let s2 = 0;
    for (let q = 0; q < d; q++) s2 += c[j * d + q]! ** 2;
    cNorm[j] = s2;
    cMax = Math.max(cMax, Math.sqrt(s2));
  }
  const xNorm = new Float64Array(n);
  let xMax = 0;
  for (let i = 0; i < n; i++) {
    let s2 = 0;
    for (let q = 0, o = i * d; q < d; q++) s2 += x[o + q]! ** 2;
    xNorm[i] = s2;
    xMax = Math.max(xMax, Math.sqrt(s2));
  }
  // |float32 − exact| of a squared distance: the dot product's γ_d·|x|·|c| (times 2), the norms' rounding to
  // float32 and the two additions, with a factor 2 to spare
  const err = 2 * (2 * ((d * UNIT_ROUNDOFF) / (1 - d * UNIT_ROUNDOFF)) * xMax * cMax + 4 * UNIT_ROUNDOFF * (xMax + cMax) ** 2) + 1e-30;
  // Cᵀ laid out d × k: tfjs-wasm multiplies by a transposed operand ~13× slower than by a plain one
  const cT = tf.tensor2d(transpose(c, k, d), [d, k]);
  const cN = tf.tensor1d(Float32Array.from(cNorm));
  try {
    for (let from = 0; from < n; from += BLOCK) {
      const rows = Math.min(BLOCK, n - from);
      // ‖c‖² − 2 x·c (‖x‖² is the same for every centroid: added in float64 below)
      const part = tf.tidy(() => {
        const xb = tf.tensor2d(x.subarray(from * d, (from + rows) * d), [rows, d]);
        return tf.sub(cN, tf.mul(2, tf.matMul(xb, cT)));
      });
      const g = part.dataSync() as Float32Array;
      part.dispose();
      for (let r = 0; r < rows; r++) {
        const i = from + r;
        const o = r * k;
        let m = Infinity;
        for (let j = 0; j < k; j++) if (g[o + j]! < m) m = g[o + j]!;
        // exact distances for every centroid that could be the nearest; the rest are bounded below
        let best = -1;
        let bestD = Infinity;
        let other = Infinity;
        for (let j = 0; j < k; j++) {
          const approx = g[o + j]!;
          if (approx <= m + 2 * err) {
            const e = sqDist(x, i, c, j, d);
            if (e < bestD) {
              if (best >= 0) other = Math.min(other, bestD);
              bestD = e;
              best = j;
            } else other = Math.min(other, e);
          } else other = Math.min(other, xNorm[i]! + approx - err);
        }
        owner[i] = best;
        near[i] = Math.sqrt(bestD);
        second[i] = Math.sqrt(Math.max(0, other));
      }
    }
  } finally {
    cT.dispose();
    cN.dispose();
  }
  return { owner, near, second };
}

/** k-means (k-means++ seeding from `rand`, then Lloyd with exact assignments), then the distinct real row nearest each centroid. */
export function kMeansSelect(x: Float32Array, n: number, d: number, k: number, rand: Rng): KMeansResult {
  const seeds = kMeansPlusPlus(x, n, d, k, rand);
  const c = seeds.centres;
  const assignment = seeds.owner;
  const lower = seeds.second;
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
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
    for (let j = 0; j < k; j++) {
      if (counts[j]! === 0) continue;
      for (let q = 0, o = j * d; q < d; q++) c[o + q] = sums[o + q]! / counts[j]!;
    }
    // assignment: every pair's exact nearest centroid
    const next = assignNearest(x, n, d, c, k);
    let changed = 0;
    for (let i = 0; i < n; i++) if (next.owner[i] !== assignment[i]) changed++;
    assignment.set(next.owner);
    lower.set(next.second);
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
