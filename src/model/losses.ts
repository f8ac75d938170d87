/**
 * Contrastive losses of SPEC §2 on logits L (B×B) against a soft target similarity S (B×B; the identity
 * for real pairs). Each returns the loss and dLoss/dL as explicit formulas in tf ops, so that the
 * distiller can differentiate the gradient itself with respect to S and the data (first-order autodiff
 * only). Call inside tf.tidy.
 */
import { tf } from '../backend';

export interface LossOut {
  readonly loss: tf.Scalar;
  /** dLoss/dL, same shape as L */
  readonly gL: tf.Tensor2D;
}
export type LossFn = (L: tf.Tensor2D, S: tf.Tensor2D) => LossOut;

const EPS = 1e-6;

/** 1 where S > 0.5, else 0, with a zero gradient (tfjs has no gradient for comparisons). */
const positives = tf.customGrad(((S: tf.Tensor, save: tf.GradSaveFunc) => {
  save([S]);
  return {
    value: tf.cast(tf.greater(S, 0.5), 'float32'),
    gradFunc: (_dy: tf.Tensor, saved: tf.Tensor[]) => [tf.zerosLike(saved[0]!)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (S: tf.Tensor) => tf.Tensor;

const softmaxRows = (L: tf.Tensor2D) => tf.softmax(L, 1) as tf.Tensor2D;
const softmaxCols = (L: tf.Tensor2D) => tf.transpose(tf.softmax(tf.transpose(L), 1)) as tf.Tensor2D;
/**
 * Log-sum-exp along `axis` from the softmax P along it: lse = L_j − log P_j for every j, taken at the largest entry,
 * where P ≥ 1/B cannot underflow. Its gradient is P itself (given directly: through tf.max a tie of the largest
 * logits would count twice). tf.logSoftmax would run tfjs-wasm's scalar Exp (~12 ns per entry) a second time next
 * to XNNPACK's softmax (~1.4 ns), half a millisecond of a 9 ms expert step.
 */
const lseFromSoftmax = (axis: 0 | 1) =>
  tf.customGrad(((L: tf.Tensor, P: tf.Tensor, save: tf.GradSaveFunc) => {
    save([P]);
    return {
      value: tf.sub(tf.max(L, axis, true), tf.log(tf.max(P, axis, true))),
      gradFunc: (dy: tf.Tensor, [p]: tf.Tensor[]) => [tf.mul(dy, p!), tf.zerosLike(p!)],
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (L: tf.Tensor2D, P: tf.Tensor2D) => tf.Tensor2D;
const lseRows = lseFromSoftmax(1);
const lseCols = lseFromSoftmax(0);

/** log softmax over rows (columns) of L, given the softmax P over rows (columns) that the gradient needs anyway */
export const logSoftmaxRows = (L: tf.Tensor2D, P: tf.Tensor2D) => tf.sub(L, lseRows(L, P)) as tf.Tensor2D;
const logSoftmaxCols = (L: tf.Tensor2D, P: tf.Tensor2D) => tf.sub(L, lseCols(L, P)) as tf.Tensor2D;
const half = (a: tf.Tensor, b: tf.Tensor) => tf.mul(tf.add(a, b), 0.5);

/** ½[−mean_i Σ_j S_ij log softmax_row(L)_ij + the same over columns]. */
export const infonce: LossFn = (L, S) => {
  const B = L.shape[0];
  const [Pr, Pc] = [softmaxRows(L), softmaxCols(L)];
  const row = tf.div(tf.neg(tf.sum(tf.mul(S, logSoftmaxRows(L, Pr)))), B);
  const col = tf.div(tf.neg(tf.sum(tf.mul(S, logSoftmaxCols(L, Pc)))), B);
  const gRow = tf.sub(tf.mul(Pr, tf.sum(S, 1, true)), S);
  const gCol = tf.sub(tf.mul(Pc, tf.sum(S, 0, true)), S);
  return { loss: half(row, col) as tf.Scalar, gL: tf.div(half(gRow, gCol), B) as tf.Tensor2D };
};

/**
 * Weighted BCE (the reference's distillation loss): E = −S log(σ(L)+ε) − (1−S) log(1−σ(L)+ε),
 * averaged separately over positives (S > 0.5) and negatives, then halved. The positive/negative
 * split is a step function of S and is held constant in the gradient.
 */
export const wbce: LossFn = (L, S) => {
  const P = tf.sigmoid(L);
  const E = tf.neg(tf.add(tf.mul(S, tf.log(tf.add(P, EPS))), tf.mul(tf.sub(1, S), tf.log(tf.add(tf.sub(1, P), EPS)))));
  const pos = positives(S);
  const neg = tf.sub(1, pos);
  const w = tf.add(tf.div(pos, tf.maximum(tf.sum(pos), 1)), tf.div(neg, tf.maximum(tf.sum(neg), 1)));
  const dEdP = tf.add(tf.div(tf.neg(S), tf.add(P, EPS)), tf.div(tf.sub(1, S), tf.add(tf.sub(1, P), EPS)));
  const gL = tf.mul(tf.mul(w, 0.5), tf.mul(dEdP, tf.mul(P, tf.sub(1, P))));
  return { loss: tf.mul(tf.sum(tf.mul(w, E)), 0.5) as tf.Scalar, gL: gL as tf.Tensor2D };
};

/** ½[KL(softmax(10 S) ‖ softmax(L)) over rows + over columns], mean over all B² entries. */
export const kl: LossFn = (L, S) => {
  const n = L.shape[0] * L.shape[1];
  const S10 = tf.mul(S, 10) as tf.Tensor2D;
  const [Qr, Qc, Pr, Pc] = [softmaxRows(S10), softmaxCols(S10), softmaxRows(L), softmaxCols(L)];
  const term = (Q: tf.Tensor, logQ: tf.Tensor, logP: tf.Tensor) => tf.div(tf.sum(tf.mul(Q, tf.sub(logQ, logP))), n);
  const row = term(Qr, logSoftmaxRows(S10, Qr), logSoftmaxRows(L, Pr));
  const col = term(Qc, logSoftmaxCols(S10, Qc), logSoftmaxCols(L, Pc));
  const gL = tf.div(half(tf.sub(Pr, Qr), tf.sub(Pc, Qc)), n);
  return { loss: half(row, col) as tf.Scalar, gL: gL as tf.Tensor2D };
};

/** Binary cross-entropy of σ(L) against S, mean over entries. */
export const bce: LossFn = (L, S) => {
  const n = L.shape[0] * L.shape[1];
  const loss = tf.div(tf.sum(tf.sub(tf.softplus(L), tf.mul(S, L))), n);
  return { loss: loss as tf.Scalar, gL: tf.div(tf.sub(tf.sigmoid(L), S), n) as tf.Tensor2D };
};

/** Mean squared error between σ(L) and S. */
export const mse: LossFn = (L, S) => {
  const n = L.shape[0] * L.shape[1];
  const P = tf.sigmoid(L);
  const d = tf.sub(P, S);
  const gL = tf.div(tf.mul(tf.mul(d, 2), tf.mul(P, tf.sub(1, P))), n);
  return { loss: tf.div(tf.sum(tf.square(d)), n) as tf.Scalar, gL: gL as tf.Tensor2D };
};

/**
 * Continuously weighted contrastive loss (CWCL): InfoNCE whose targets are S normalised per row
 * (per column for the transposed term), so soft positives weigh in proportion to their similarity.
 */
export const cwcl: LossFn = (L, S) => {
  const B = L.shape[0];
  const Wr = tf.div(S, tf.maximum(tf.sum(S, 1, true), 1e-8));
  const Wc = tf.div(S, tf.maximum(tf.sum(S, 0, true), 1e-8));
  const [Pr, Pc] = [softmaxRows(L), softmaxCols(L)];
  const row = tf.div(tf.neg(tf.sum(tf.mul(Wr, logSoftmaxRows(L, Pr)))), B);
  const col = tf.div(tf.neg(tf.sum(tf.mul(Wc, logSoftmaxCols(L, Pc)))), B);
  const gRow = tf.sub(tf.mul(Pr, tf.sum(Wr, 1, true)), Wr);
  const gCol = tf.sub(tf.mul(Pc, tf.sum(Wc, 0, true)), Wc);
  return { loss: half(row, col) as tf.Scalar, gL: tf.div(half(gRow, gCol), B) as tf.Tensor2D };
};

export const LOSSES = Object.freeze({ infonce, wbce, kl, bce, mse, cwcl });
export type LossName = keyof typeof LOSSES;
export const LOSS_NAMES = Object.keys(LOSSES) as LossName[];
