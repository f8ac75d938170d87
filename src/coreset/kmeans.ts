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
import type { FeatureSet } from '../features/feature-set';
import { type JointRows, jointRows, matrixRows, sqDist } from './joint';
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
  return kMeansPlusPlusRows(matrixRows(x, n, d), k, rand);
}

/** kMeansPlusPlus over joint rows made on demand (one row at a time: a pruned row is never made). */
export function kMeansPlusPlusRows(src: JointRows, k: number, rand: Rng): KMeansSeeds {
  const { n, d } = src;
  const centres = new Float64Array(k * d);
  const owner = new Int32Array(n);
  const near = new Float64Array(n).fill(Infinity);
  const second = new Float64Array(n).fill(Infinity);
  const apart = new Float64Array(k);
  const buf = new Float32Array(d);
  let pick = randInt(rand, n);
  for (let t = 0; t < k; t++) {
    src.fill(pick, 1, buf);
    for (let q = 0; q < d; q++) centres[t * d + q] = buf[q]!;
    for (let j = 0; j < t; j++) apart[j] = Math.sqrt(sqDist(centres, t, centres, j, d));
    for (let i = 0; i < n; i++) {
      const u = Math.sqrt(near[i]!);
      if (t > 0 && apart[owner[i]!]! >= 2 * u) {
        second[i] = Math.min(second[i]!, apart[owner[i]!]! - u);
        continue;
      }
      src.fill(i, 1, buf);
      const e = sqDist(buf, 0, centres, t, d);
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
export const KMEANS_BLOCK_ROWS = 2048;
const UNIT_ROUNDOFF = 2 ** -24;

export interface Assignment {
  readonly owner: Int32Array;
  /** distance (not squared) to the owner */
  readonly near: Float64Array;
  /** lower bound on the distance to every other centroid */
  readonly second: Float64Array;
}

/** Each centroid's `keep` rows of smallest float32 squared distance (see assignRows), unordered. */
export interface Candidates {
  readonly rows: Int32Array;
  /** float32-product squared distances, within `err` of the float64 ones */
  readonly approx: Float64Array;
  readonly keep: number;
  /** bound on |approx − exact| over every row and centroid */
  readonly err: number;
}

/**
 * Every row's nearest centroid (exact, float64; ties → lower index), its distance, and a lower bound on its
 * distance to every other centroid. Distances are not squared. The rows are read `blockRows` at a time, so
 * neither a tensor nor a copy of the whole matrix is ever made.
 */
export function assignNearest(x: Float32Array, n: number, d: number, c: Float64Array, k: number, blockRows = KMEANS_BLOCK_ROWS): Assignment {
  return assignRows(matrixRows(x, n, d), c, k, blockRows).assignment;
}

/** assignNearest over joint rows; with `keep` > 0 also each centroid's `keep` nearest rows by the float32 product. */
export function assignRows(src: JointRows, c: Float64Array, k: number, blockRows = KMEANS_BLOCK_ROWS, keep = 0): { assignment: Assignment; candidates?: Candidates } {
  const { n, d } = src;
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
  const block = Math.max(1, Math.min(blockRows, n));
  const xb32 = new Float32Array(block * d);
  const xNorm = new Float64Array(block);
  const kept = Math.min(keep, n);
  const candRows = new Int32Array(k * kept).fill(-1);
  const candApprox = new Float64Array(k * kept).fill(Infinity);
  /** the largest approx kept per centroid, and where */
  const worst = new Float64Array(k).fill(Infinity);
  const worstAt = new Int32Array(k);
  let errMax = 0;
  // Cᵀ laid out d × k: tfjs-wasm multiplies by a transposed operand ~13× slower than by a plain one
  const cT = tf.tensor2d(transpose(c, k, d), [d, k]);
  const cN = tf.tensor1d(Float32Array.from(cNorm));
  try {
    for (let from = 0; from < n; from += block) {
      const rows = Math.min(block, n - from);
      src.fill(from, rows, xb32);
      let xMax = 0;
      for (let r = 0; r < rows; r++) {
        let s2 = 0;
        for (let q = 0, o = r * d; q < d; q++) s2 += xb32[o + q]! ** 2;
        xNorm[r] = s2;
        xMax = Math.max(xMax, Math.sqrt(s2));
      }
      // |float32 − exact| of a squared distance: the dot product's γ_d·|x|·|c| (times 2), the norms' rounding to
      // float32 and the two additions, with a factor 2 to spare
      const err = 2 * (2 * ((d * UNIT_ROUNDOFF) / (1 - d * UNIT_ROUNDOFF)) * xMax * cMax + 4 * UNIT_ROUNDOFF * (xMax + cMax) ** 2) + 1e-30;
      errMax = Math.max(errMax, err);
      // ‖c‖² − 2 x·c (‖x‖² is the same for every centroid: added in float64 below)
      const part = tf.tidy(() => {
        const xb = tf.tensor2d(xb32.subarray(0, rows * d), [rows, d]);
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
          if (kept > 0 && xNorm[r]! + approx < worst[j]!) {
            // replace the worst kept candidate of centroid j, then find the new worst
            const base = j * kept;
            candRows[base + worstAt[j]!] = i;
            candApprox[base + worstAt[j]!] = xNorm[r]! + approx;
            let w = -Infinity;
            let at = 0;
            for (let s = 0; s < kept; s++) {
              if (candApprox[base + s]! > w) {
                w = candApprox[base + s]!;
                at = s;
              }
            }
            worst[j] = w;
            worstAt[j] = at;
          }
          if (approx <= m + 2 * err) {
            const e = sqDist(xb32, r, c, j, d);
            if (e < bestD) {
              if (best >= 0) other = Math.min(other, bestD);
              bestD = e;
              best = j;
            } else other = Math.min(other, e);
          } else other = Math.min(other, xNorm[r]! + approx - err);
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
  const assignment = { owner, near, second };
  return kept > 0 ? { assignment, candidates: { rows: candRows, approx: candApprox, keep: kept, err: errMax } } : { assignment };
}

/** k-means (k-means++ seeding from `rand`, then Lloyd with exact assignments), then the distinct real row nearest each centroid. */
export function kMeansSelect(x: Float32Array, n: number, d: number, k: number, rand: Rng, blockRows = KMEANS_BLOCK_ROWS): KMeansResult {
  return kMeansRows(matrixRows(x, n, d), k, rand, blockRows);
}

/**
 * kMeansSelect over joint rows made on demand: the update reads them a block at a time and the seeding and the
 * final choice one row at a time, so no n × d copy is made (the same result, bit for bit, as on the dense copy).
 */
export function kMeansRows(src: JointRows, k: number, rand: Rng, blockRows = KMEANS_BLOCK_ROWS): KMeansResult {
  const { n, d } = src;
  const seeds = kMeansPlusPlusRows(src, k, rand);
  const c = seeds.centres;
  const assignment = seeds.owner;
  const lower = seeds.second;
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
  const block = Math.max(1, Math.min(blockRows, n));
  const xb = new Float32Array(block * d);
  let iterations = 0;
  while (iterations < KMEANS_MAX_ITERATIONS) {
    iterations++;
    // update: each centroid the mean of its cluster (an empty cluster keeps its centroid)
    sums.fill(0);
    counts.fill(0);
    for (let from = 0; from < n; from += block) {
      const rows = Math.min(block, n - from);
      src.fill(from, rows, xb);
      for (let r = 0; r < rows; r++) {
        const a = assignment[from + r]!;
        counts[a]!++;
        for (let q = 0, o = a * d, p = r * d; q < d; q++) sums[o + q] = sums[o + q]! + xb[p + q]!;
      }
    }
    for (let j = 0; j < k; j++) {
      if (counts[j]! === 0) continue;
      for (let q = 0, o = j * d; q < d; q++) c[o + q] = sums[o + q]! / counts[j]!;
    }
    // assignment: every pair's exact nearest centroid
    const next = assignRows(src, c, k, blockRows).assignment;
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
  const buf = xb.subarray(0, d);
  for (let j = 0; j < k; j++) {
    let best = -1;
    let bestDist = Infinity;
    const consider = (i: number) => {
      src.fill(i, 1, buf);
      const dist = sqDist(buf, 0, c, j, d);
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

/** Above this many pairs the k-means coreset runs mini-batch k-means (kMeansMiniBatch); up to it, exact Lloyd. */
export const KMEANS_EXACT_MAX_ROWS = 50_000;
/** rows per mini-batch */
export const KMEANS_BATCH_ROWS = 1024;
/** mini-batches drawn (Sculley 2010 draws a fixed number; sklearn batches 1024 rows too) */
export const KMEANS_BATCH_STEPS = 100;

export interface MiniBatchOptions {
  readonly batchRows?: number;
  readonly steps?: number;
  /** rows per GEMM block of the final pass over every row */
  readonly blockRows?: number;
}

/** Copy rows `idx` of `src` into one dense matrix. */
function gather(src: JointRows, idx: Int32Array): Float32Array {
  const out = new Float32Array(idx.length * src.d);
  for (let r = 0; r < idx.length; r++) src.fill(idx[r]!, 1, out.subarray(r * src.d, (r + 1) * src.d));
  return out;
}

/**
 * Mini-batch k-means (Sculley 2010, the update of sklearn's MiniBatchKMeans): k-means++ seeds drawn from a
 * uniform sample of max(3·batch, 3·k) rows, then `steps` batches of `batchRows` rows drawn with replacement, each
 * assigned exactly (assignRows) and moving every centroid to the running mean of all rows it has been given
 * (c ← (w·c + Σ batch members)/(w + count)). A final blockwise pass over every row gives the assignment, and
 * each centroid keeps the distinct real row nearest it, exactly as kMeansSelect chooses it (the candidates are
 * each centroid's k nearest rows by the float32 product, re-measured in float64: a free row is always among
 * them, and any row nearer than it lies within twice the product's error bound). Everything is drawn from
 * `rand`; memory is O(k·d + n) beyond the features, time O((steps·batch + n)·k·d) as GEMMs.
 */
export function kMeansMiniBatch(src: JointRows, k: number, rand: Rng, options: MiniBatchOptions = {}): KMeansResult {
  const { n, d } = src;
  const batchRows = options.batchRows ?? KMEANS_BATCH_ROWS;
  const steps = options.steps ?? KMEANS_BATCH_STEPS;
  const blockRows = options.blockRows ?? KMEANS_BLOCK_ROWS;
  // seeds: k-means++ on a uniform sample without replacement (a partial Fisher–Yates shuffle)
  const m = Math.min(n, Math.max(3 * batchRows, 3 * k));
  const order = Int32Array.from({ length: n }, (_, i) => i);
  for (let i = 0; i < m; i++) {
    const j = i + randInt(rand, n - i);
    const t = order[i]!;
    order[i] = order[j]!;
    order[j] = t;
  }
  const sample = order.slice(0, m).sort();
  const c = kMeansPlusPlus(gather(src, sample), m, d, k, rand).centres;
  const weight = new Float64Array(k);
  const sums = new Float64Array(k * d);
  const counts = new Int32Array(k);
  const idx = new Int32Array(batchRows);
  for (let step = 0; step < steps; step++) {
    for (let r = 0; r < batchRows; r++) idx[r] = randInt(rand, n);
    const xb = gather(src, idx);
    const { owner } = assignNearest(xb, batchRows, d, c, k, blockRows);
    sums.fill(0);
    counts.fill(0);
    for (let r = 0; r < batchRows; r++) {
      const a = owner[r]!;
      counts[a]!++;
      for (let q = 0, o = a * d, p = r * d; q < d; q++) sums[o + q] = sums[o + q]! + xb[p + q]!;
    }
    for (let j = 0; j < k; j++) {
      if (counts[j]! === 0) continue;
      const w = weight[j]!;
      const total = w + counts[j]!;
      for (let q = 0, o = j * d; q < d; q++) c[o + q] = (c[o + q]! * w + sums[o + q]!) / total;
      weight[j] = total;
    }
  }
  // 2k + 16 candidates, so that re-measuring every row (when rows within the limit may have been left out) is rare
  const { assignment, candidates } = assignRows(src, c, k, blockRows, 2 * k + 16);
  return { centroids: c, assignment: assignment.owner, iterations: steps, picked: pickNearest(src, c, k, candidates!, blockRows) };
}

/** For each centroid in turn the nearest row not yet kept (float64; ties → lower index), from the candidates. */
function pickNearest(src: JointRows, c: Float64Array, k: number, cand: Candidates, blockRows: number): Int32Array {
  const { n, d } = src;
  const picked = new Int32Array(k);
  const taken = new Uint8Array(n);
  const buf = new Float32Array(d);
  const exact = (i: number, j: number) => {
    src.fill(i, 1, buf);
    return sqDist(buf, 0, c, j, d);
  };
  for (let j = 0; j < k; j++) {
    const base = j * cand.keep;
    const approx = Array.from(cand.approx.subarray(base, base + cand.keep)).sort((a, b) => a - b);
    // the j-th smallest: at most j rows are taken, so a free one is at or below it
    const limit = approx[Math.min(j, cand.keep - 1)]! + 2 * cand.err;
    let best = -1;
    let bestDist = Infinity;
    const consider = (i: number) => {
      if (taken[i]) return;
      const e = exact(i, j);
      if (e < bestDist || (e === bestDist && i < best)) {
        bestDist = e;
        best = i;
      }
    };
    if (approx[cand.keep - 1]! <= limit || !(limit < Infinity)) {
      // rows may have been left out within the limit: measure every row (blockwise scan)
      const block = new Float32Array(Math.min(blockRows, n) * d);
      for (let from = 0; from < n; from += blockRows) {
        const rows = Math.min(blockRows, n - from);
        src.fill(from, rows, block);
        for (let r = 0; r < rows; r++) {
          const i = from + r;
          if (taken[i]) continue;
          const e = sqDist(block, r, c, j, d);
          if (e < bestDist || (e === bestDist && i < best)) {
            bestDist = e;
            best = i;
          }
        }
      }
    } else {
      for (let s = 0; s < cand.keep; s++) if (cand.approx[base + s]! <= limit) consider(cand.rows[base + s]!);
    }
    picked[j] = best;
    taken[best] = 1;
  }
  return picked;
}

/**
 * The k-means coreset of a training set: exact Lloyd (kMeansSelect) up to KMEANS_EXACT_MAX_ROWS pairs, mini-batch
 * k-means (kMeansMiniBatch, on rows made on demand) above.
 */
export function kMeansCoresetOf(train: FeatureSet, k: number, rand: Rng, exactMaxRows = KMEANS_EXACT_MAX_ROWS, options: MiniBatchOptions = {}): Int32Array {
  const src = jointRows(train);
  return train.numCaptions <= exactMaxRows ? kMeansRows(src, k, rand).picked : kMeansMiniBatch(src, k, rand, options).picked;
}

export const kMeansCoreset: CoresetRule = {
  name: 'kmeans',
  description: 'k-means (k = size, k-means++ seeding) on the joint (image ; caption) features; the pair nearest each centroid',
  needs: [],
  randomised: true,
  select: (ctx, size, rand) => kMeansCoresetOf(ctx.train, size, rand),
};
