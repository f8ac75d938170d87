/**
 * The control experiment itself (SPEC §9.1, issue 10): under one trajectory-matching framework, how does the
 * student's score depend on the teacher window? For each start epoch t the distiller matches only the window
 * [t, t] (θ_t → θ_{t+M}); each (t, seed) distils one synthetic set and scores it with fresh students on the
 * real test split. The paper's claim is that this unimodal task keeps gaining from later windows, while the
 * multimodal task gains only from the first 20–30% of the expert's epochs.
 *
 * Beside the rows it reports, per start, the mean ± std over seeds; the experts' own test accuracy per epoch
 * (the teacher curve); and the real-data baseline: students trained on the synthetic set's real-digit
 * initialisation (the same images before distillation) at the experts' step size.
 */
import { ready } from '../backend';
import { ConfigError } from '../errors';
import { type MeanStd, meanStd } from '../evaluate/summary';
import { parseConfig } from '../config/parse';
import { ControlDistillConfig, distillDigits, initialDigits } from './distill';
import type { ClassifierExperts } from './experts';
import type { MnistData } from './mnist';
import { type ControlEvalConfig, evaluateDigits } from './student';

export interface WindowSweepInput {
  readonly data: MnistData;
  readonly experts: ClassifierExperts;
  /** start epochs t; each is distilled with the window [t, t] */
  readonly starts: readonly number[];
  /** distillation (and student) seeds; one row per (start, seed) */
  readonly seeds: readonly number[];
  /** distiller settings (startRange and seed are set by the sweep) */
  readonly distill?: Partial<Omit<ControlDistillConfig, 'startRange' | 'seed'>>;
  /** student settings (seed is set by the sweep) */
  readonly evaluation?: Partial<Omit<ControlEvalConfig, 'seed'>>;
  /** called after each row (progress) */
  readonly onRow?: (row: WindowRow, done: number, total: number) => void;
}

export interface WindowRow {
  readonly start: number;
  readonly seed: number;
  /** mean test accuracy of the row's students */
  readonly accuracy: number;
  /** the learned step size α */
  readonly lr: number;
  /** mean matching loss of the last 10% of iterations */
  readonly finalLoss: number;
}

export interface WindowSweepResult {
  readonly rows: readonly WindowRow[];
  /** per start epoch, over seeds */
  readonly byStart: readonly { readonly start: number; readonly accuracy: MeanStd; readonly lr: MeanStd }[];
  /** the experts' test accuracy at each epoch 0..E, over experts */
  readonly expertAccuracy: readonly MeanStd[];
  /** students trained on the undistilled real-digit initialisation, over seeds */
  readonly realBaseline: MeanStd;
  /** seconds the sweep took */
  readonly seconds: number;
}

/** Distil and evaluate every (start, seed) (module comment). */
export async function windowSweep(input: WindowSweepInput): Promise<WindowSweepResult> {
  await ready();
  const t0 = Date.now();
  const { data, experts, starts, seeds } = input;
  if (starts.length === 0 || seeds.length === 0) throw new ConfigError('windowSweep: give at least one start and one seed');
  const rows: WindowRow[] = [];
  const total = starts.length * seeds.length;
  for (const start of starts) {
    for (const seed of seeds) {
      const set = await distillDigits(data.train, experts, { ...input.distill, startRange: [start, start], seed });
      const { accuracy } = evaluateDigits(set, set.lr, data.test, experts.shape, { ...input.evaluation, seed });
      const tail = set.losses.slice(-Math.max(1, Math.ceil(set.losses.length / 10)));
      const row = { start, seed, accuracy, lr: set.lr, finalLoss: tail.reduce((a, b) => a + b, 0) / tail.length };
      rows.push(row);
      input.onRow?.(row, rows.length, total);
    }
  }
  const byStart = starts.map((start) => {
    const mine = rows.filter((r) => r.start === start);
    return { start, accuracy: meanStd(mine.map((r) => r.accuracy)), lr: meanStd(mine.map((r) => r.lr)) };
  });
  const expertAccuracy = Array.from({ length: experts.epochs + 1 }, (_, e) => meanStd(experts.testAccuracy.map((a) => a[e]!)));
  const { imagesPerClass } = parseConfig(ControlDistillConfig, input.distill ?? {}, 'control distill config');
  const realBaseline = meanStd(
    seeds.map((seed) => {
      const init = initialDigits(data.train, experts.shape.classes, imagesPerClass, seed);
      return evaluateDigits(init, experts.lr, data.test, experts.shape, { ...input.evaluation, seed }).accuracy;
    }),
  );
  return { rows, byStart, expertAccuracy, realBaseline, seconds: (Date.now() - t0) / 1000 };
}
