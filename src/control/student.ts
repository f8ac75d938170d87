/**
 * Evaluation of a distilled digit set (SPEC §6 for the unimodal task): a fresh classifier — a new seeded
 * initialisation, the experts' architecture — trained on the synthetic images only, with SGD at the learned
 * step size α (momentum 0.9 and weight decay 5e-4 as the multimodal students; α × 0.1 from the middle epoch
 * on), then scored by accuracy on the real test split at the final epoch (no selection on the test set).
 */
import { z } from 'zod';
import { tf } from '../backend';
import { parseConfig } from '../config/parse';
import { NonFiniteError } from '../errors';
import { sgd } from '../model/sgd';
import { deriveSeed, permutation, rng } from '../util/random';
import { type ClassifierShape, accuracy, classifierGrads, initClassifier, oneHotTargets } from './classifier';
import type { LabelledImages } from './mnist';
import { finiteArray } from '../model/finite';

export const ControlEvalConfig = z
  .object({
    /** fresh students per distilled set (their test accuracies are averaged into one row) */
    students: z.number().int().positive().default(2),
    /** epochs over the synthetic set */
    epochs: z.number().int().positive().default(300),
    /** mini-batch size (a set smaller than this is one full batch per epoch) */
    batchSize: z.number().int().positive().default(256),
    momentum: z.number().min(0).max(0.99).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    /** the step size is multiplied by 0.1 from this fraction of the epochs on (1: never) */
    decayAt: z.number().min(0).max(1).default(0.5),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();
export type ControlEvalConfig = z.infer<typeof ControlEvalConfig>;

/**
 * Train one fresh student on `set` with step size `lr` and return its final θ. `student` picks the seed
 * of its initialisation and batch order.
 */
export function trainDigitStudent(
  set: LabelledImages,
  lr: number,
  shape: ClassifierShape,
  input: Partial<ControlEvalConfig> = {},
  student = 0,
): Float32Array {
  const c = parseConfig(ControlEvalConfig, input, 'control evaluation config');
  if (!(Number.isFinite(lr) && lr > 0)) throw new NonFiniteError(`student step size ${lr} is not a positive number (the learned α diverged: lower lrLr)`);
  const r = rng(deriveSeed(c.seed, 'control-student', student, 'batches'));
  const x = tf.tensor2d(set.pixels, [set.n, shape.inputs]);
  const y = tf.tidy(() => oneHotTargets(set.labels, shape.classes));
  let params: Record<string, tf.Tensor> = { theta: tf.tensor1d(initClassifier(shape, deriveSeed(c.seed, 'control-student', student, 'init'))) };
  let velocity: Record<string, tf.Tensor> = { theta: tf.zerosLike(params.theta!) };
  const decayEpoch = Math.floor(c.decayAt * c.epochs);
  for (let e = 0; e < c.epochs; e++) {
    const eta = e >= decayEpoch && c.decayAt < 1 ? lr * 0.1 : lr;
    const order = permutation(r, set.n);
    for (let at = 0; at < set.n; at += c.batchSize) {
      const idx = order.subarray(at, Math.min(set.n, at + c.batchSize));
      const next = tf.tidy(() => {
        const b = tf.tensor1d(idx, 'int32');
        const { grad } = classifierGrads(params.theta as tf.Tensor1D, tf.gather(x, b) as tf.Tensor2D, tf.gather(y, b) as tf.Tensor2D, shape);
        return sgd(params, { theta: grad }, velocity, () => eta, { momentum: c.momentum, weightDecay: c.weightDecay });
      });
      params.theta!.dispose();
      velocity.theta!.dispose();
      params = next.params;
      velocity = next.velocity!;
    }
  }
  const theta = params.theta!.dataSync().slice() as Float32Array;
  for (const t of [params.theta!, velocity.theta!, x, y]) t.dispose();
  if (!finiteArray(theta)) throw new NonFiniteError(`a student trained on the synthetic digits diverged (step size ${lr})`);
  return theta;
}

/** Mean test accuracy of `students` fresh students trained on `set` (module comment). */
export function evaluateDigits(
  set: LabelledImages,
  lr: number,
  test: LabelledImages,
  shape: ClassifierShape,
  input: Partial<ControlEvalConfig> = {},
): { accuracy: number; students: number[] } {
  const c = parseConfig(ControlEvalConfig, input, 'control evaluation config');
  const students = Array.from({ length: c.students }, (_, s) => accuracy(trainDigitStudent(set, lr, shape, c, s), test, shape));
  return { accuracy: students.reduce((a, b) => a + b, 0) / students.length, students };
}
