/**
 * AMD (SPEC §8, seed 004) beyond asynchronous matching: dynamic start ranges and prototype initialisation.
 *
 * Dynamic ranges. The seed measures how much each tower's parameters change from one epoch to the next (an
 * MMD between consecutive epochs) and gives the towers different sampling ranges by their convergence speed.
 * Here a tower's change at epoch e is ‖θ(e+1) − θ(e)‖ averaged over the experts (the MMD between the two
 * snapshots as point masses under a linear kernel), and its progress P(e) is the share of its total change
 * made before epoch e. The phase's start range [lo, hi] fixes a progress interval — the towers' mean progress
 * at lo and at hi — and each tower gets the epochs where its own progress falls in that interval: a tower
 * that learns early gets earlier starts, one that learns late gets later ones. A tower's range moves at most
 * one range width from [lo, hi] (the seed's guard against excessive asynchronicity) and always leaves room
 * for the target snapshot e + M.
 *
 * Prototype initialisation: the synthetic set starts from the real pairs nearest the k-means centroids (k = the
 * phase's size) of the joint [image ; text] features — the `kmeans` coreset rule, drawn from the phase's seed.
 */
import type { FeatureSet } from '../features/feature-set';
import type { Tower } from '../model/dual';
import type { Trajectory } from '../trajectory/store';
import type { Rng } from '../util/random';
import { jointRows } from '../coreset/joint';
import { kMeansRows } from '../coreset/kmeans';

export type StartRange = readonly [number, number];
export type StartRanges = Readonly<Record<Tower, StartRange>>;

/** Each tower's progress P(e), e = 0 … snapshots − 1 (P(0) = 0, P(last) = 1), averaged change over experts. */
export function towerProgress(trajectories: readonly Trajectory[], tower: Tower): number[] {
  const snapshots = trajectories[0]!.snapshots;
  const change = new Float64Array(Math.max(0, snapshots - 1));
  for (const traj of trajectories) {
    const p = traj[tower].length / traj.snapshots;
    for (let e = 0; e + 1 < snapshots; e++) {
      let s = 0;
      for (let q = 0, a = e * p, b = (e + 1) * p; q < p; q++) s += (traj[tower][b + q]! - traj[tower][a + q]!) ** 2;
      change[e] = change[e]! + Math.sqrt(s) / trajectories.length;
    }
  }
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
export function dynamicStartRanges(trajectories: readonly Trajectory[], start: StartRange, expertStep: number): StartRanges {
  const snapshots = trajectories[0]!.snapshots;
  const last = snapshots - 1 - expertStep; // the latest start with a target
  const [lo, hi] = start;
  const width = hi - lo + 1;
  const progress = { img: towerProgress(trajectories, 'img'), txt: towerProgress(trajectories, 'txt') };
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

/** AMD's prototype pairs: the distinct real pairs nearest the k-means centroids of the joint features (k = size). */
export function prototypePairs(train: FeatureSet, size: number, rand: Rng): Int32Array {
  return kMeansRows(jointRows(train), size, rand).picked;
}
