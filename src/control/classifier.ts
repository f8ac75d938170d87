/**
 * The unimodal student/teacher network of the control experiment: a small softmax classifier on raw pixels
 * — linear (`hidden: 0`) or one ReLU hidden layer of width `hidden` — trained with mean cross-entropy.
 * It plays the role the dual-encoder heads play in the multimodal distiller (SPEC §1).
 *
 * Its parameters live in one flat vector θ (the unit the matching loss compares, like `flattenTower`):
 *   linear:  [W (inputs×classes, row-major), b (classes)]
 *   hidden:  [W1 (inputs×h), b1 (h), W2 (h×classes), b2 (classes)]
 * `classifierGrads` is the analytic backward pass (softmax cross-entropy, ReLU), written with ordinary
 * differentiable tfjs ops, so the distiller can backpropagate through an unrolled sequence of SGD steps
 * (MTT's full backprop) with one outer tf.grads. Matrix products go through `mm` (fast transposes on wasm).
 */
import { tf } from '../backend';
import { mm } from '../model/linalg';
import { type Rng, rng as makeRng } from '../util/random';
import type { LabelledImages } from './mnist';

export interface ClassifierShape {
  readonly inputs: number;
  /** width of the one ReLU hidden layer; 0: a linear classifier */
  readonly hidden: number;
  readonly classes: number;
}

interface LayerShape {
  readonly fanIn: number;
  readonly fanOut: number;
}

function layers(s: ClassifierShape): LayerShape[] {
  return s.hidden > 0
    ? [{ fanIn: s.inputs, fanOut: s.hidden }, { fanIn: s.hidden, fanOut: s.classes }]
    : [{ fanIn: s.inputs, fanOut: s.classes }];
}

/** Length of the flat parameter vector θ. */
export function parameterCount(s: ClassifierShape): number {
  return layers(s).reduce((a, l) => a + l.fanIn * l.fanOut + l.fanOut, 0);
}

/** A fresh θ: PyTorch's nn.Linear default, W and b ~ U(−1/√fan_in, 1/√fan_in), drawn from `r` (or a seed). */
export function initClassifier(s: ClassifierShape, r: Rng | number): Float32Array {
  const g = typeof r === 'number' ? makeRng(r) : r;
  const theta = new Float32Array(parameterCount(s));
  let at = 0;
  for (const l of layers(s)) {
    const bound = 1 / Math.sqrt(l.fanIn);
    const n = l.fanIn * l.fanOut + l.fanOut;
    for (let i = 0; i < n; i++) theta[at + i] = (2 * g.next() - 1) * bound;
    at += n;
  }
  return theta;
}

interface Layer {
  readonly w: tf.Tensor2D;
  readonly b: tf.Tensor1D;
}

/** θ as weight matrices and bias vectors (slices of θ: differentiable). Call inside tf.tidy. */
function unflatten(theta: tf.Tensor1D, s: ClassifierShape): Layer[] {
  let at = 0;
  return layers(s).map((l) => {
    const w = tf.reshape(tf.slice(theta, [at], [l.fanIn * l.fanOut]), [l.fanIn, l.fanOut]) as tf.Tensor2D;
    at += l.fanIn * l.fanOut;
    const b = tf.slice(theta, [at], [l.fanOut]) as tf.Tensor1D;
    at += l.fanOut;
    return { w, b };
  });
}

const affine = (x: tf.Tensor2D, l: Layer) => tf.add(mm(x, l.w), l.b) as tf.Tensor2D;

/** Class scores (n × classes) of the images `x` (n × inputs). Call inside tf.tidy. */
export function classifierLogits(theta: tf.Tensor1D, x: tf.Tensor2D, s: ClassifierShape): tf.Tensor2D {
  const ls = unflatten(theta, s);
  return s.hidden > 0 ? affine(tf.relu(affine(x, ls[0]!)) as tf.Tensor2D, ls[1]!) : affine(x, ls[0]!);
}

/** Mean cross-entropy −(1/n) Σ_i Σ_c y_ic log softmax(z_i)_c against (one-hot or soft) targets. Call inside tf.tidy. */
export function crossEntropy(logits: tf.Tensor2D, targets: tf.Tensor2D): tf.Scalar {
  return tf.neg(tf.div(tf.sum(tf.mul(targets, tf.logSoftmax(logits))), logits.shape[0])) as tf.Scalar;
}

/**
 * The loss and its gradient ∇_θ (flat, θ's layout) on one batch, by the analytic backward pass:
 *   δ = (softmax(z) − y)/n;  ∂W = aᵀδ;  ∂b = Σ_rows δ;  through ReLU: δ_h = δ W2ᵀ ⊙ 1[pre > 0].
 * Every op is differentiable, so the result can itself be differentiated with respect to x, targets and θ
 * (what the distiller's unroll needs). Call inside tf.tidy.
 */
export function classifierGrads(
  theta: tf.Tensor1D,
  x: tf.Tensor2D,
  targets: tf.Tensor2D,
  s: ClassifierShape,
): { loss: tf.Scalar; grad: tf.Tensor1D } {
  const ls = unflatten(theta, s);
  const n = x.shape[0];
  const flat = (l: { w: tf.Tensor; b: tf.Tensor }) => [tf.reshape(l.w, [-1]), l.b];
  if (s.hidden === 0) {
    const z = affine(x, ls[0]!);
    const delta = tf.div(tf.sub(tf.softmax(z), targets), n) as tf.Tensor2D;
    const grad = tf.concat(flat({ w: mm(x, delta, true, false), b: tf.sum(delta, 0) })) as tf.Tensor1D;
    return { loss: crossEntropy(z, targets), grad };
  }
  const pre = affine(x, ls[0]!);
  const h = tf.relu(pre) as tf.Tensor2D;
  const z = affine(h, ls[1]!);
  const delta = tf.div(tf.sub(tf.softmax(z), targets), n) as tf.Tensor2D;
  const deltaH = tf.mul(mm(delta, ls[1]!.w, false, true), tf.step(pre)) as tf.Tensor2D;
  const grad = tf.concat([
    ...flat({ w: mm(x, deltaH, true, false), b: tf.sum(deltaH, 0) }),
    ...flat({ w: mm(h, delta, true, false), b: tf.sum(delta, 0) }),
  ]) as tf.Tensor1D;
  return { loss: crossEntropy(z, targets), grad };
}

/** One-hot targets (n × classes) of class ids. Call inside tf.tidy. */
export function oneHotTargets(labels: Int32Array, classes: number): tf.Tensor2D {
  return tf.oneHot(tf.tensor1d(labels, 'int32'), classes).toFloat() as tf.Tensor2D;
}

/** Fraction of `split` whose arg-max class under θ is its label (in chunks of 2,048 images). */
export function accuracy(theta: Float32Array, split: LabelledImages, s: ClassifierShape): number {
  if (split.n === 0) return Number.NaN;
  let correct = 0;
  const chunk = 2048;
  for (let at = 0; at < split.n; at += chunk) {
    const m = Math.min(chunk, split.n - at);
    const pred = tf.tidy(() => {
      const x = tf.tensor2d(split.pixels.subarray(at * s.inputs, (at + m) * s.inputs), [m, s.inputs]);
      return tf.argMax(classifierLogits(tf.tensor1d(theta), x, s), 1);
    });
    const p = pred.dataSync();
    pred.dispose();
    for (let i = 0; i < m; i++) if (p[i] === split.labels[at + i]) correct++;
  }
  return correct / split.n;
}
