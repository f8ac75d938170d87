/**
 * The dual encoder (SPEC §1): u = head_img(x), v = head_txt(y), both L2-normalised, logits L = u vᵀ / T.
 * `dualGrads` is the functional student's one step: loss and the gradients of both heads.
 */
import { tf } from '../backend';
import { mm } from './linalg';
import { type HeadParams, type HeadShape, type ParamName, PARAM_NAMES, headBackward, headForward, initHead, paramShapes } from './head';
import { LOSSES, type LossFn, type LossName } from './losses';
import { sgd } from './sgd';

export const TOWERS = ['img', 'txt'] as const;
export type Tower = (typeof TOWERS)[number];

export type DualParams = Readonly<Record<Tower, HeadParams>>;
export type DualGrads = Readonly<Record<Tower, Readonly<Record<ParamName, tf.Tensor>>>>;

export interface DualShape {
  readonly img: HeadShape;
  readonly txt: HeadShape;
}

export function dualShape(dImg: number, dTxt: number, dOut: number): DualShape {
  return { img: { dIn: dImg, dOut }, txt: { dIn: dTxt, dOut } };
}

export function initDual(shape: DualShape, rand: () => number): DualParams {
  return { img: initHead(shape.img, rand), txt: initHead(shape.txt, rand) };
}

export interface StepInput {
  readonly x: tf.Tensor2D;
  readonly y: tf.Tensor2D;
  /** target similarity (B×B) */
  readonly s: tf.Tensor2D;
  readonly maskImg: tf.Tensor2D | null;
  readonly maskTxt: tf.Tensor2D | null;
}

/** Logits L = u vᵀ / T of L2-normalised image (u) and text (v) embeddings (students, teachers alike). */
export function studentLogits(u: tf.Tensor2D, v: tf.Tensor2D, temperature: number): tf.Tensor2D {
  return tf.div(mm(u, v, false, true), temperature) as tf.Tensor2D;
}

/**
 * Loss and parameter gradients of one batch, and the logits L = u vᵀ / T they came from (rows images,
 * columns captions; returned so that a caller can read them without a second forward pass). `loss` is a
 * named loss or any LossFn (e.g. the KD loss of kd.ts, which closes over the batch's teacher logits). Call
 * inside tf.tidy.
 */
export function dualGrads(
  theta: DualParams,
  input: StepInput,
  loss: LossName | LossFn,
  temperature: number,
): { loss: tf.Scalar; grads: DualGrads; logits: tf.Tensor2D } {
  const ci = headForward(theta.img, input.x, input.maskImg);
  const ct = headForward(theta.txt, input.y, input.maskTxt);
  const L = studentLogits(ci.u, ct.u, temperature);
  const out = (typeof loss === 'string' ? LOSSES[loss] : loss)(L, input.s);
  const gU = tf.div(mm(out.gL, ct.u), temperature) as tf.Tensor2D;
  const gV = tf.div(mm(out.gL, ci.u, true, false), temperature) as tf.Tensor2D;
  return { loss: out.loss, grads: { img: headBackward(theta.img, ci, gU), txt: headBackward(theta.txt, ct, gV) }, logits: L };
}

/** θ − lr·g per tower (lr may be a scalar tensor, e.g. a learned learning rate): the unrolled student's step. */
export function sgdStep(theta: DualParams, grads: DualGrads, lr: Readonly<Record<Tower, tf.Scalar | number>>): DualParams {
  const step = (t: Tower) => sgd(theta[t], grads[t], undefined, () => lr[t], { momentum: 0, weightDecay: 0 }).params as HeadParams;
  return { img: step('img'), txt: step('txt') };
}

export function disposeDual(theta: DualParams): void {
  for (const t of TOWERS) for (const n of PARAM_NAMES) theta[t][n].dispose();
}

export function keepDual(theta: DualParams): DualParams {
  for (const t of TOWERS) for (const n of PARAM_NAMES) tf.keep(theta[t][n]);
  return theta;
}

/** One flat vector per tower, parameters in PARAM_NAMES order (what the matching loss compares). */
export function flattenTower(params: Readonly<Record<ParamName, tf.Tensor>>): tf.Tensor1D {
  return tf.concat(PARAM_NAMES.map((n) => tf.reshape(params[n], [-1]))) as tf.Tensor1D;
}

export function unflattenTower(flat: tf.Tensor1D, shape: HeadShape): HeadParams {
  const shapes = paramShapes(shape);
  const sizes = PARAM_NAMES.map((n) => shapes[n].reduce((a, b) => a * b, 1));
  const parts = tf.split(flat, sizes);
  return Object.fromEntries(PARAM_NAMES.map((n, i) => [n, tf.reshape(parts[i]!, shapes[n])])) as HeadParams;
}
