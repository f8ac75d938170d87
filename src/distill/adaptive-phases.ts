/**
 * Adaptive phases (beyond the paper). The paper names as its limitation that P, the phases' windows and their
 * endpoints are set by hand (this project's PTM-ST: ST [0,6) with starts {0,1}, then ST [0,8) with starts
 * {1,2}). `adaptivePhases` chooses them from the expert trajectories alone: their parameters and the teachers'
 * validation curve. Its input type holds no test split (a `Trajectory`'s test scores are never read).
 *
 * The rule, with E epochs (E + 1 snapshots) and target step M (`expertStep`):
 * 1. Useful horizon H. v(e) is the experts' mean validation r_mean at snapshot e. H is the first epoch at which
 *    the teachers have made `gainShare` of their best validation gain: v(H) − v(0) ≥ gainShare · (max v − v(0)).
 *    Past H the teachers barely improve on held-out pairs, so matching those epochs teaches the synthetic set
 *    little (or, when the curve peaks early, overfitting). Without a validation curve (or one that never rises)
 *    H is where the experts have moved `gainShare` of their total parameter path. H ≥ M.
 * 2. Regimes. m(e) = ‖θ(e+1) − θ(e)‖ (both towers, averaged over experts), e < H, is the pace of the
 *    trajectory. The epochs 0 … H − 1 are cut into contiguous regimes by the optimal 1-D segmentation of
 *    log m(e) (least squares, dynamic programming; each regime ≥ M epochs): one regime more is taken while it
 *    removes at least `minExplained` of the one-regime spread, up to `maxPhases`. A flat pace is one regime; a
 *    pace that drops from fast to slow is two. The log makes the cut scale-free (a halving counts the same
 *    early and late). The pace is used rather than validation gains because it is averaged over every
 *    parameter of every expert (smooth), while per-epoch validation gains are noisy on a small validation split.
 * 3. Phases. Regime p = epochs [s, e) gives phase p: the shortcut trajectory over [0, e + 1) (as the hand-set
 *    phases, every window starts at the initialisation and ends where its regime ends: the last at H), start
 *    epochs its regime's first `startWidth` epochs, [s, min(s + startWidth − 1, e − M)].
 * 4. Sizes: P = 1 distils the budget; P = 2 splits it as the hand-set PTM (`ptmSizes`, one pair fewer than the
 *    budget, as the reference); P ≥ 3 splits budget − 1 in proportion to the regimes' lengths (largest
 *    remainder, ties to the earlier phase; at least one pair each).
 * 5. DATM (difficulty-aligned trajectory matching, for images) matches small budgets to early trajectory parts
 *    and large budgets to later ones. With `datm`, every start range and window end moves by
 *    δ = round(epochsPerDoubling · log2(budget / referenceBudget)) epochs, clamped to the trajectory (a start
 *    ≥ 0 with its target inside the window, a window inside the trajectory); each bound is a non-decreasing
 *    function of the budget.
 */
import type { AdaptivePhases, PhaseConfig } from '../config/schemas';
import { ConfigError } from '../errors';
import type { Retrieval } from '../model/retrieval';
import { ptmSizes } from './methods';

/** What the rule reads of one expert: its parameters per snapshot and its validation scores, nothing else. */
export interface TeacherTrajectory {
  /** snapshots × parameters, row-major, per tower */
  readonly img: Float32Array;
  readonly txt: Float32Array;
  readonly snapshots: number;
  /** per snapshot, on the validation split; empty when the buffer has none */
  readonly retrievalVal: readonly Pick<Retrieval, 'rMean'>[];
}

/** The rule's choice and what it was made from (printed and recorded with the synthetic set). */
export interface AdaptiveChoice {
  readonly phases: PhaseConfig[];
  /** the useful horizon H (a snapshot index) and what set it */
  readonly horizon: number;
  readonly horizonFrom: 'validation' | 'parameters';
  /** the experts' mean validation r_mean per snapshot (empty without one) */
  readonly validation: number[];
  /** the experts' mean step size ‖θ(e+1) − θ(e)‖ per epoch */
  readonly stepNorms: number[];
  /** the regimes, epochs [s, e) */
  readonly regimes: [number, number][];
  /** DATM's shift in epochs (0 without `datm`) */
  readonly shift: number;
  /** the choice in one line */
  readonly text: string;
}

/** Mean step size per epoch over the experts, both towers as one vector (float64 sums). */
function stepNorms(teachers: readonly TeacherTrajectory[]): number[] {
  const epochs = teachers[0]!.snapshots - 1;
  const out = new Array<number>(epochs).fill(0);
  for (const t of teachers) {
    for (let e = 0; e < epochs; e++) {
      let s = 0;
      for (const flat of [t.img, t.txt]) {
        const p = flat.length / t.snapshots;
        for (let q = 0, a = e * p, b = (e + 1) * p; q < p; q++) s += (flat[b + q]! - flat[a + q]!) ** 2;
      }
      out[e] = out[e]! + Math.sqrt(s) / teachers.length;
    }
  }
  return out;
}

/** The experts' mean validation r_mean per snapshot, or [] if any expert lacks a full curve. */
function validationCurve(teachers: readonly TeacherTrajectory[]): number[] {
  const n = teachers[0]!.snapshots;
  if (teachers.some((t) => t.retrievalVal.length !== n)) return [];
  return Array.from({ length: n }, (_, e) => teachers.reduce((a, t) => a + t.retrievalVal[e]!.rMean, 0) / teachers.length);
}

/** The first epoch e ≥ 1 at which `progress(e)` ≥ share (of the curve's rise from epoch 0 to its maximum), or undefined if it never rises. */
function firstReaching(curve: readonly number[], share: number): number | undefined {
  const rise = Math.max(...curve) - curve[0]!;
  if (!(rise > 0)) return undefined;
  for (let e = 1; e < curve.length; e++) if (curve[e]! - curve[0]! >= share * rise - 1e-12 * rise) return e;
  return curve.length - 1;
}

/**
 * Optimal segmentations of x into k = 1 … kMax contiguous segments of at least `minLen` (least squares):
 * sse[k − 1] and each one's cut points. Ties go to the earlier cut.
 */
export function segmentations(x: readonly number[], kMax: number, minLen: number): { sse: number[]; cuts: number[][] } {
  const n = x.length;
  const pre = [0];
  const pre2 = [0];
  for (const v of x) {
    pre.push(pre[pre.length - 1]! + v);
    pre2.push(pre2[pre2.length - 1]! + v * v);
  }
  const cost = (a: number, b: number) => {
    const s = pre[b]! - pre[a]!;
    return Math.max(0, pre2[b]! - pre2[a]! - (s * s) / (b - a));
  };
  // best[k][j]: the least cost of x[0, j) in k + 1 segments; from[k][j]: where the last one starts
  const best: number[][] = [];
  const from: number[][] = [];
  const sse: number[] = [];
  const cuts: number[][] = [];
  for (let k = 0; k < kMax && (k + 1) * minLen <= n; k++) {
    best.push(new Array<number>(n + 1).fill(Infinity));
    from.push(new Array<number>(n + 1).fill(-1));
    for (let j = (k + 1) * minLen; j <= n; j++) {
      if (k === 0) {
        best[0]![j] = cost(0, j);
        from[0]![j] = 0;
        continue;
      }
      for (let i = k * minLen; i + minLen <= j; i++) {
        const c = best[k - 1]![i]! + cost(i, j);
        if (c < best[k]![j]! - 1e-12) {
          best[k]![j] = c;
          from[k]![j] = i;
        }
      }
    }
    sse.push(best[k]![n]!);
    const cut: number[] = [];
    for (let kk = k, j = n; kk > 0; kk--) {
      j = from[kk]![j]!;
      cut.unshift(j);
    }
    cuts.push(cut);
  }
  return { sse, cuts };
}

/** Split `total` pairs in proportion to `weights` (largest remainder, ties to the earlier; ≥ 1 each). */
function proportional(total: number, weights: readonly number[]): number[] {
  const sum = weights.reduce((a, b) => a + b, 0);
  const free = total - weights.length;
  const exact = weights.map((w) => (free * w) / sum);
  const out = exact.map((v) => Math.floor(v));
  const order = exact.map((v, i) => ({ i, r: v - Math.floor(v) })).sort((a, b) => b.r - a.r || a.i - b.i);
  for (let k = 0, left = free - out.reduce((a, b) => a + b, 0); k < left; k++) out[order[k]!.i]!++;
  return out.map((v) => v + 1);
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** Choose P, the phases' shortcut windows, start ranges and sizes from the teachers (see the module comment). */
export function adaptivePhases(teachers: readonly TeacherTrajectory[], spec: AdaptivePhases, expertStep: number): AdaptiveChoice {
  if (teachers.length === 0) throw new ConfigError('phases (adaptive): the expert buffer holds no trajectories');
  const snapshots = teachers[0]!.snapshots;
  const epochs = snapshots - 1;
  if (teachers.some((t) => t.snapshots !== snapshots)) throw new ConfigError('phases (adaptive): the experts have different numbers of snapshots');
  if (epochs < expertStep + 1) {
    throw new ConfigError(`phases (adaptive): the experts' ${snapshots} snapshots leave no window for expertStep ${expertStep} (at least ${expertStep + 2} needed)`);
  }
  const norms = stepNorms(teachers);
  const validation = validationCurve(teachers);
  // 1. the useful horizon
  const fromVal = validation.length > 0 ? firstReaching(validation, spec.gainShare) : undefined;
  const path = [0];
  for (const m of norms) path.push(path[path.length - 1]! + m);
  const horizonFrom = fromVal !== undefined ? 'validation' : 'parameters';
  const horizon = Math.max(expertStep, fromVal ?? firstReaching(path, spec.gainShare) ?? epochs);
  // 2. regimes of the pace over epochs [0, H)
  const top = Math.max(...norms.slice(0, horizon));
  const logs = norms.slice(0, horizon).map((m) => Math.log(Math.max(m, 1e-12 * top)));
  const { sse, cuts } = top > 0 ? segmentations(logs, Math.min(spec.maxPhases, horizon), expertStep) : { sse: [0], cuts: [[]] };
  let k = 0;
  // a spread below 1e-9 per epoch (rounding of equal steps) is a flat pace: one regime
  while (k + 1 < sse.length && sse[0]! > 1e-9 * logs.length && sse[k]! - sse[k + 1]! >= spec.minExplained * sse[0]!) k++;
  const bounds = [0, ...cuts[k]!, horizon];
  const regimes = bounds.slice(0, -1).map((s, p): [number, number] => [s, bounds[p + 1]!]);
  // 3. + 5. windows and start ranges, moved by DATM's shift
  const shift = spec.datm ? Math.round(spec.datm.epochsPerDoubling * Math.log2(spec.budget / spec.datm.referenceBudget)) : 0;
  const last = epochs - expertStep; // the latest start with a target
  const P = regimes.length;
  if (spec.budget < (P === 1 ? 1 : P + 1)) throw new ConfigError(`phases.budget: ${spec.budget} pairs cannot fill ${P} phases`);
  // 4. sizes
  const sizes = P === 1 ? [spec.budget] : P === 2 ? ptmSizes(spec.budget) : proportional(spec.budget - 1, regimes.map(([s, e]) => e - s));
  const phases = regimes.map(([s, e], p): PhaseConfig => {
    const lo = clamp(s + shift, 0, last);
    const hi = clamp(Math.min(s + spec.startWidth - 1, e - expertStep) + shift, lo, last);
    const end = clamp(e + 1 + shift, hi + expertStep + 1, snapshots);
    return { source: [0, end], start: [lo, hi], size: sizes[p]!, iterations: spec.iterations };
  });
  const shown = (v: number[]) => v.map((x) => x.toFixed(2)).join(' ');
  const text =
    `adaptive phases: horizon epoch ${horizon} (${horizonFrom === 'validation' ? `${Math.round(spec.gainShare * 100)}% of the teachers' validation gain; val r_mean ${shown(validation)}` : `${Math.round(spec.gainShare * 100)}% of the parameter path`}); ` +
    `step sizes ${shown(norms)}; ${P} regime${P > 1 ? 's' : ''} ${regimes.map(([s, e]) => `[${s}, ${e})`).join(' ')}` +
    `${spec.datm ? `; DATM shift ${shift} (budget ${spec.budget}, reference ${spec.datm.referenceBudget})` : ''} → ` +
    phases.map((ph) => `ST [0, ${(ph.source as [number, number])[1]}) starts ${ph.start[0]}–${ph.start[1]} × ${ph.size} pairs`).join(', ');
  return { phases, horizon, horizonFrom, validation, stepNorms: norms, regimes, shift, text };
}
