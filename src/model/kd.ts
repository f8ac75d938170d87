/**
 * Knowledge distillation for retrieval students (Hinton et al.; seed 003 for classification: T = 4, α = 0.1),
 * adapted to the dual encoder: the teacher is a trained expert whose image→text and text→image similarity rows
 * on the student's own mini-batch give soft targets, so a student trained on a small set (coreset or synthetic)
 * also learns how the full-data teacher ranks the batch's other pairs. With soft = T² · ½[KL(Q_i2t ‖
 * softmax_row(L/T)) + KL(Q_t2i ‖ softmax_row(Lᵀ/T))]:
 *
 *   'hard-alpha' (seed 003, L_total = α·L_CE + (1 − α)·T²·L_KL):  loss = α · base(L, S) + (1 − α) · soft
 *   'soft-alpha' (this project before issue 26):                  loss = (1 − α) · base(L, S) + α · soft
 *
 * so at α = 0.1 the soft term weighs 0.9 under the seed's weighting and 0.1 under the other. Each KL is the
 * mean over the batch's rows, Q = kdTarget(teacher logits, T). The T² keeps the soft
 * term's gradient on the same scale as the hard one's when T changes. Like the losses of losses.ts, the
 * gradient dLoss/dL is an explicit formula (the student's step needs no autodiff). Call inside tf.tidy.
 */
import { tf } from '../backend';
import { type DualParams, studentLogits } from './dual';
import { headForward } from './head';
import { type LossFn, type LossOut, logSoftmaxRows } from './losses';

/** Which term α weighs in a KD loss (module comment): the hard one (seed 003) or the soft one. */
export const KD_WEIGHTINGS = ['hard-alpha', 'soft-alpha'] as const;
export type KdWeighting = (typeof KD_WEIGHTINGS)[number];

export interface KdOptions {
  /** softening temperature T of both teacher and student distributions */
  readonly temperature: number;
  /** α: the hard term's weight under 'hard-alpha', the soft term's under 'soft-alpha' */
  readonly alpha: number;
  /** which term α weighs (module comment); default 'hard-alpha', the seed's */
  readonly weighting?: KdWeighting;
}

/** The (hard, soft) weights of a KD loss. */
export function kdWeights(o: KdOptions): { hard: number; soft: number } {
  return (o.weighting ?? 'hard-alpha') === 'hard-alpha' ? { hard: o.alpha, soft: 1 - o.alpha } : { hard: 1 - o.alpha, soft: o.alpha };
}

/** The teacher's soft targets: each row sums to 1. */
export interface KdTarget {
  /** softmax over the texts of each image: softmax_row(Lt / T) */
  readonly i2t: tf.Tensor2D;
  /** softmax over the images of each text: softmax_row(Ltᵀ / T) (row j = text j) */
  readonly t2i: tf.Tensor2D;
}

/** Row-wise softmax of the teacher's similarities / T, in both directions. */
export function kdTarget(teacherLogits: tf.Tensor2D, temperature: number): KdTarget {
  const z = tf.div(teacherLogits, temperature) as tf.Tensor2D;
  return { i2t: tf.softmax(z, 1) as tf.Tensor2D, t2i: tf.softmax(tf.transpose(z), 1) as tf.Tensor2D };
}

/**
 * Teacher logits of a batch: the same formula as the students' (cosine of the L2-normalised embeddings /
 * the model temperature), with the teacher in evaluation mode (no dropout).
 */
export function teacherLogits(teacher: DualParams, x: tf.Tensor2D, y: tf.Tensor2D, modelTemperature: number): tf.Tensor2D {
  return studentLogits(headForward(teacher.img, x, null).u, headForward(teacher.txt, y, null).u, modelTemperature);
}

/**
 * Mean over rows of KL(Q ‖ softmax_row(Z/T)) and its gradient w.r.t. Z: (softmax_row(Z/T) − Q) / (T·B).
 * Q log Q is taken as 0 where Q = 0.
 */
function klRows(Z: tf.Tensor2D, Q: tf.Tensor2D, T: number): { value: tf.Scalar; gZ: tf.Tensor2D } {
  const B = Z.shape[0];
  const ZT = tf.div(Z, T) as tf.Tensor2D;
  const P = tf.softmax(ZT, 1) as tf.Tensor2D;
  const qLogQ = tf.where(tf.greater(Q, 0), tf.mul(Q, tf.log(tf.maximum(Q, 1e-30))), tf.zerosLike(Q));
  const value = tf.div(tf.sum(tf.sub(qLogQ, tf.mul(Q, logSoftmaxRows(ZT, P)))), B) as tf.Scalar;
  const gZ = tf.div(tf.sub(P, Q), T * B) as tf.Tensor2D;
  return { value, gZ };
}

/** The soft term α-free: T² · ½[KL rows + KL columns] and its gradient w.r.t. the student logits L. */
export function kdSoftLoss(L: tf.Tensor2D, target: KdTarget, temperature: number): LossOut {
  const T = temperature;
  const row = klRows(L, target.i2t, T);
  const col = klRows(tf.transpose(L) as tf.Tensor2D, target.t2i, T);
  const scale = 0.5 * T * T;
  return {
    loss: tf.mul(tf.add(row.value, col.value), scale) as tf.Scalar,
    gL: tf.mul(tf.add(row.gZ, tf.transpose(col.gZ)), scale) as tf.Tensor2D,
  };
}

/**
 * The KD loss as a LossFn of (student logits, S) for one batch whose teacher logits are `teacher`:
 * w_hard · base + w_soft · soft (kdWeights). With w_soft = 0 it returns exactly base's loss and gradient.
 */
export function kdLoss(base: LossFn, teacher: tf.Tensor2D, o: KdOptions): LossFn {
  const w = kdWeights(o);
  return (L, S) => {
    const hard = base(L, S);
    if (w.soft === 0) return hard;
    const soft = kdSoftLoss(L, kdTarget(teacher, o.temperature), o.temperature);
    return {
      loss: tf.add(tf.mul(hard.loss, w.hard), tf.mul(soft.loss, w.soft)) as tf.Scalar,
      gL: tf.add(tf.mul(hard.gL, w.hard), tf.mul(soft.gL, w.soft)) as tf.Tensor2D,
    };
  };
}
