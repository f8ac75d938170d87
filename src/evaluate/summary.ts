/**
 * From evaluation checkpoints to reported numbers, under three labelled selection rules:
 *  - `final`: the last checkpoint;
 *  - `val`: the checkpoint with the best validation r_mean (its test scores are reported);
 *  - `test`: the checkpoint with the best test r_mean — the reference's rule, selection on the test split,
 *    reported only under this label.
 * Runs are summarised as mean and sample standard deviation.
 */
import { RECALL_KEYS, type Retrieval } from '../model/retrieval';
import type { Checkpoint } from './student';

export const SELECTIONS = ['final', 'val', 'test'] as const;
export type Selection = (typeof SELECTIONS)[number];
export const SELECTION_LABELS: Readonly<Record<Selection, string>> = {
  final: 'final epoch',
  val: 'best on validation',
  test: 'best on test (reference rule; selected on the test split)',
};

/** The checkpoint a rule selects (the first of equals): the last one, or the best on validation or on test r_mean. */
export function selectCheckpoint(checkpoints: readonly Checkpoint[], rule: Selection): Checkpoint {
  if (checkpoints.length === 0) throw new Error('no checkpoints to select from');
  if (rule === 'final') return checkpoints[checkpoints.length - 1]!;
  const key = rule === 'val' ? 'val' : 'test';
  let best = checkpoints[0]!;
  for (const c of checkpoints) if (c[key].rMean > best[key].rMean) best = c;
  return best;
}

/** The test scores a rule reports: those of the checkpoint it selects. */
export const select = (checkpoints: readonly Checkpoint[], rule: Selection): Retrieval => selectCheckpoint(checkpoints, rule).test;

export const METRIC_KEYS = [...RECALL_KEYS, 'rMean'] as const;
export type MetricKey = (typeof METRIC_KEYS)[number];

export interface MeanStd {
  readonly mean: number;
  readonly std: number;
}
export type MetricSummary = Readonly<Record<MetricKey, MeanStd>>;

export function meanStd(xs: readonly number[]): MeanStd {
  const n = xs.length;
  const mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { mean, std };
}

/** How far row a lies above row b: the difference of means, the pooled std √((s_a² + s_b²)/2), and their ratio. */
export interface Gap {
  readonly diff: number;
  readonly pooledStd: number;
  /** diff / pooledStd (±Infinity when both stds are 0 and the means differ; 0 when they agree) */
  readonly inStd: number;
}

export function gap(a: MeanStd, b: MeanStd): Gap {
  const diff = a.mean - b.mean;
  const pooledStd = Math.sqrt((a.std ** 2 + b.std ** 2) / 2);
  return { diff, pooledStd, inStd: pooledStd > 0 ? diff / pooledStd : diff === 0 ? 0 : Math.sign(diff) * Infinity };
}

export function summarise(results: readonly Retrieval[]): MetricSummary {
  return Object.fromEntries(METRIC_KEYS.map((k) => [k, meanStd(results.map((r) => r[k]))])) as MetricSummary;
}

/** Summaries under every selection rule for a set of runs. */
export function summariseRuns(runs: readonly (readonly Checkpoint[])[]): Readonly<Record<Selection, MetricSummary>> {
  return Object.fromEntries(SELECTIONS.map((s) => [s, summarise(runs.map((c) => select(c, s)))])) as Record<
    Selection,
    MetricSummary
  >;
}

/** One point of a method's learning curve: a checkpoint's r_mean over runs, on validation and test. */
export interface CurvePoint {
  readonly subset: number;
  readonly epoch: number;
  readonly val: MeanStd;
  readonly test: MeanStd;
}

/**
 * The students' r_mean at every checkpoint, mean ± std over runs (every run shares the checkpoint
 * schedule; a run with another schedule is an error, not a silently misaligned curve).
 */
export function checkpointCurve(runs: readonly (readonly Checkpoint[])[]): CurvePoint[] {
  const first = runs[0] ?? [];
  for (const [r, c] of runs.entries()) {
    if (c.length !== first.length || c.some((p, i) => p.subset !== first[i]!.subset || p.epoch !== first[i]!.epoch)) {
      throw new Error(`run ${r} has another checkpoint schedule than run 0`);
    }
  }
  return first.map((p, i) => ({
    subset: p.subset,
    epoch: p.epoch,
    val: meanStd(runs.map((c) => c[i]!.val.rMean)),
    test: meanStd(runs.map((c) => c[i]!.test.rMean)),
  }));
}
