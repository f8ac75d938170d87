/**
 * AMD (SPEC §8, seed 004) beyond asynchronous matching: dynamic start ranges and prototype initialisation.
 *
 * Dynamic ranges. The seed measures how much each tower's parameters change from one epoch to the next with a
 * Maximum Mean Discrepancy between consecutive epochs and gives the towers different sampling ranges by their
 * convergence speed. A tower's change at epoch e is one of two measures (`DynamicMeasure`):
 *   - `mmd-gaussian` (the seed's; the default): the samples at epoch e are the experts' parameter vectors of the
 *     tower at snapshot e (one sample per expert), those at e + 1 the same experts one snapshot later, and the
 *     change is MMD = √MMD² between the two sample sets, with the biased (V-statistic) estimate
 *         MMD² = mean_ij k(a_i, a_j) + mean_ij k(b_i, b_j) − 2 mean_ij k(a_i, b_j)   (diagonals included)
 *     and the Gaussian kernel k(x, y) = exp(−‖x − y‖² / (2σ²)). σ is the median heuristic: the median of the
 *     pairwise Euclidean distances among the 2m pooled samples of the two epochs (the m(2m − 1) pairs i < j; an
 *     even count takes the mean of the two middle values). A zero median (more than half the pooled samples
 *     coincide) falls back to the median of the non-zero distances; if every distance is zero the two sets are
 *     equal and MMD² = 0. The biased estimate is ≥ 0 (a squared RKHS distance) and is defined for one expert,
 *     where the unbiased one is not. With a single expert the two "distributions" are point masses and
 *     MMD² = 2 − 2·k(θe, θe+1); the median heuristic then sets σ = ‖θe+1 − θe‖, so every epoch with any change
 *     gets MMD² = 2 − 2e^{−1/2} ≈ 0.787: one expert makes progress linear in the epochs and the ranges the
 *     phase's own (use several experts, or `l2`, for a tower-specific schedule).
 *   - `l2` (this project's earlier simplification, kept as an option): ‖θ(e+1) − θ(e)‖ averaged over the experts
 *     (the MMD between the two snapshots as point masses under a linear kernel).
 * A tower's progress P(e) is the share of its total change made before epoch e. The phase's start range
 * [lo, hi] fixes a progress interval — the towers' mean progress at lo and at hi — and each tower gets the epochs
 * where its own progress falls in that interval: a tower that learns early gets earlier starts, one that learns
 * late gets later ones. A tower's range moves at most one range width from [lo, hi] (the seed's guard against
 * excessive asynchronicity) and always leaves room for the target snapshot e + M.
 *
 * Prototype initialisation (`init`): the synthetic set starts from the real pairs nearest the k-means centroids
 * (k = the phase's size; the `kmeans` coreset rule, kMeansRows, seeded from the phase's random stream) of a joint
 * space:
 *   - `spm` (the seed's Semantics-aware Prototype Mining): the learned joint space — the trained expert's
 *     embeddings, [u_img ; v_txt] per pair, where u and v are the two heads of the last snapshot of the phase's
 *     first teacher trajectory (for `source: 'experts'`, expert 0 at its final epoch) applied to the training
 *     features; each head's output is already L2-normalised.
 *   - `prototypes` (the earlier simplification, kept): the frozen encoders' joint [image ; text] features, each
 *     half L2-normalised (src/coreset/joint.ts).
 * The synthetic pairs are the real features of the chosen pairs in both cases (the embeddings only choose them).
 */
import { tf } from '../backend';
import type { FeatureSet } from '../features/feature-set';
import { type DualShape, type Tower, unflattenTower } from '../model/dual';
import { type HeadParams, embed } from '../model/head';
import type { Trajectory } from '../trajectory/store';
import type { Rng } from '../util/random';
import { type JointRows, jointRows, sqDist } from '../coreset/joint';
import { kMeansRows } from '../coreset/kmeans';

export type StartRange = readonly [number, number];
export type StartRanges = Readonly<Record<Tower, StartRange>>;

export const DYNAMIC_MEASURES = ['mmd-gaussian', 'l2'] as const;
export type DynamicMeasure = (typeof DYNAMIC_MEASURES)[number];

/** One sample: row `row` (`d` wide) of the flat row-major matrix `data` (a trajectory's snapshot of one tower). */
export interface Sample {
  readonly data: Float32Array;
  readonly row: number;
}

/** The median of `values` (sorted in place; an even count → the mean of the two middle values). */
function median(values: number[]): number {
  values.sort((a, b) => a - b);
  const h = values.length >> 1;
  return values.length % 2 === 1 ? values[h]! : (values[h - 1]! + values[h]!) / 2;
}

/**
 * The median heuristic's σ from the pooled samples' pairwise squared distances (`sq`, the i < j pairs): the
 * median Euclidean distance, or, when that is 0, the median of the non-zero distances; 0 when all are zero.
 */
export function medianBandwidth(sq: readonly number[]): number {
  const dist = sq.map((s) => Math.sqrt(s));
  const m = dist.length === 0 ? 0 : median(dist);
  if (m > 0) return m;
  const positive = dist.filter((x) => x > 0);
  return positive.length === 0 ? 0 : median(positive);
}

/** Squared distances between every pair of samples of `a` (i < j, row-major order) and from each of `a` to each of `b`. */
const within = (a: readonly Sample[], d: number): number[] =>
  a.flatMap((x, i) => a.slice(i + 1).map((y) => sqDist(x.data, x.row, y.data, y.row, d)));
const across = (a: readonly Sample[], b: readonly Sample[], d: number): number[] =>
  a.flatMap((x) => b.map((y) => sqDist(x.data, x.row, y.data, y.row, d)));

/**
 * Biased MMD² under k(x, y) = exp(−‖x − y‖²/(2σ²)) from the squared distances within `a` (i < j), within `b`
 * (i < j) and across (a_i, b_j), with σ by the median heuristic over the pooled samples (module comment).
 */
function mmd2FromDistances(m: number, n: number, wa: readonly number[], wb: readonly number[], ab: readonly number[]): number {
  const sigma = medianBandwidth([...wa, ...wb, ...ab]);
  if (sigma === 0) return 0; // every pooled sample equal
  const k = (s: number) => Math.exp(-s / (2 * sigma * sigma));
  const sum = (xs: readonly number[]) => xs.reduce((acc, s) => acc + k(s), 0);
  // diagonal terms k(x, x) = 1; off-diagonal pairs counted twice
  const kaa = (m + 2 * sum(wa)) / (m * m);
  const kbb = (n + 2 * sum(wb)) / (n * n);
  const kab = sum(ab) / (m * n);
  return Math.max(0, kaa + kbb - 2 * kab);
}

/** Biased Gaussian-kernel MMD² between sample sets `a` and `b` (vectors `d` wide), σ by the median heuristic. */
export function gaussianMmd2(a: readonly Sample[], b: readonly Sample[], d: number): number {
  if (a.length === 0 || b.length === 0) throw new RangeError('gaussianMmd2: both sample sets need at least one sample');
  return mmd2FromDistances(a.length, b.length, within(a, d), within(b, d), across(a, b, d));
}

/** A tower's change from snapshot e to e + 1, e = 0 … snapshots − 2, by `measure` (module comment). */
export function towerChange(trajectories: readonly Trajectory[], tower: Tower, measure: DynamicMeasure): Float64Array {
  const snapshots = trajectories[0]!.snapshots;
  const p = trajectories[0]![tower].length / snapshots;
  const change = new Float64Array(Math.max(0, snapshots - 1));
  if (measure === 'l2') {
    for (const traj of trajectories) {
      for (let e = 0; e + 1 < snapshots; e++) change[e] = change[e]! + Math.sqrt(sqDist(traj[tower], e, traj[tower], e + 1, p)) / trajectories.length;
    }
    return change;
  }
  const at = (e: number): Sample[] => trajectories.map((t) => ({ data: t[tower], row: e }));
  const m = trajectories.length;
  let prev = within(at(0), p); // each epoch's within-distances serve both of its neighbours
  for (let e = 0; e + 1 < snapshots; e++) {
    const next = within(at(e + 1), p);
    change[e] = Math.sqrt(mmd2FromDistances(m, m, prev, next, across(at(e), at(e + 1), p)));
    prev = next;
  }
  return change;
}

/** Each tower's progress P(e), e = 0 … snapshots − 1 (P(0) = 0, P(last) = 1), from its change by `measure`. */
export function towerProgress(trajectories: readonly Trajectory[], tower: Tower, measure: DynamicMeasure): number[] {
  const change = towerChange(trajectories, tower, measure);
  const total = change.reduce((a, b) => a + b, 0);
  const progress = [0];
  for (let e = 0; e < change.length; e++) progress.push(total > 0 ? progress[e]! + change[e]! / total : (e + 1) / change.length);
  progress[progress.length - 1] = 1;
  return progress;
}

/** The epoch whose progress is nearest `p` (ties → the earlier epoch). */
function epochAt(progress: readonly number[], p: number): number {
  let best = 0;
  for (let e = 1; e < progress.length; e++) if (Math.abs(progress[e]! - p) < Math.abs(progress[best]! - p)) best = e;
  return best;
}

/** AMD's per-tower start ranges for a phase whose start range is `start` (see the module comment). */
export function dynamicStartRanges(trajectories: readonly Trajectory[], start: StartRange, expertStep: number, measure: DynamicMeasure): StartRanges {
  const snapshots = trajectories[0]!.snapshots;
  const last = snapshots - 1 - expertStep; // the latest start with a target
  const [lo, hi] = start;
  const width = hi - lo + 1;
  const progress = { img: towerProgress(trajectories, 'img', measure), txt: towerProgress(trajectories, 'txt', measure) };
  const pLo = (progress.img[lo]! + progress.txt[lo]!) / 2;
  const pHi = (progress.img[hi]! + progress.txt[hi]!) / 2;
  const range = (tower: Tower): StartRange => {
    const clamp = (e: number, base: number) => Math.min(last, Math.max(0, base - width, Math.min(base + width, e)));
    const a = clamp(epochAt(progress[tower], pLo), lo);
    const b = clamp(epochAt(progress[tower], pHi), hi);
    return [Math.min(a, b), Math.max(a, b)];
  };
  return { img: range('img'), txt: range('txt') };
}

/** AMD's prototype pairs in the frozen encoders' joint space (`init: 'prototypes'`): k-means pairs of the joint features. */
export function prototypePairs(train: FeatureSet, size: number, rand: Rng): Int32Array {
  return kMeansRows(jointRows(train), size, rand).picked;
}

/** rows embedded per tfjs call (bounds the tensors' memory: 4096 × 2304 floats in, 4096 × dOut out) */
const EMBED_BLOCK = 4096;

/** `embed` of a head over the rows of `x` (rows × dIn), in blocks; float32, rows × dOut. */
function embedRows(params: HeadParams, x: Float32Array, rows: number, dIn: number, dOut: number): Float32Array {
  const out = new Float32Array(rows * dOut);
  for (let from = 0; from < rows; from += EMBED_BLOCK) {
    const n = Math.min(EMBED_BLOCK, rows - from);
    const u = tf.tidy(() => embed(params, tf.tensor2d(x.subarray(from * dIn, (from + n) * dIn), [n, dIn])));
    out.set(u.dataSync(), from * dOut);
    u.dispose();
  }
  return out;
}

/**
 * The trained expert's joint embedding space as JointRows (SPM): row j = [u(image of caption j) ; v(caption j)]
 * under the heads of `trajectory`'s last snapshot. The halves are the heads' L2-normalised outputs.
 */
export function embeddingRows(train: FeatureSet, trajectory: Trajectory, shape: DualShape): JointRows {
  if (train.dImg !== shape.img.dIn || train.dTxt !== shape.txt.dIn) {
    throw new RangeError(`embeddingRows: features are ${train.dImg}/${train.dTxt} wide, the heads take ${shape.img.dIn}/${shape.txt.dIn}`);
  }
  const last = trajectory.snapshots - 1;
  const head = (tower: Tower) => {
    const p = trajectory[tower].length / trajectory.snapshots;
    return tf.tidy(() => unflattenTower(tf.tensor1d(trajectory[tower].subarray(last * p, (last + 1) * p)), shape[tower]));
  };
  const img = head('img');
  const txt = head('txt');
  try {
    const u = embedRows(img, train.img, train.numImages, train.dImg, shape.img.dOut);
    const v = embedRows(txt, train.txt, train.numCaptions, train.dTxt, shape.txt.dOut);
    return jointRows({ ...train, img: u, txt: v, dImg: shape.img.dOut, dTxt: shape.txt.dOut });
  } finally {
    for (const t of [...Object.values(img), ...Object.values(txt)]) t.dispose();
  }
}

/** SPM's prototype pairs (`init: 'spm'`): the k-means pairs of the trained expert's joint embeddings. */
export function spmPairs(train: FeatureSet, size: number, rand: Rng, trajectory: Trajectory, shape: DualShape): Int32Array {
  return kMeansRows(embeddingRows(train, trajectory, shape), size, rand).picked;
}
