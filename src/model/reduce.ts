/**
 * Long sums, accurate in float32 on every backend.
 *
 * tfjs-wasm 4.22's Sum kernel adds a reduction's values one after another in one float32 accumulator, so
 * once the running total dwarfs each new term every addition rounds the same way and the relative error
 * grows with the count. Against a float64 sum of the same float32 values (squared differences, as in the
 * matching loss's norms / signed values, as in its dot product): 43k values 2.8e-6 / 1.9e-7, 394k (one
 * tower at d = 256, the default) 7.4e-5 / 1.6e-6, 920k (d = 512) 3.0e-4 / 3.6e-5, 8.9M (the paper's
 * 2048-wide heads) 8.6e-3 / 1.0e-4 (issue 11 measured up to 3.6e-4 at 394k). Every gradient of the distiller
 * is divided by ‖θ_0 − θ*‖², so the error reaches all of them: one iteration's gradients were 1.6e-4
 * (d = 256) and 4.9e-4 (d = 512) off a float64 reference on wasm. tfjs's plain-JS `cpu` backend accumulates
 * in a JS number (float64) and has no such error.
 *
 * `blockedSum` sums blocks of SUM_BLOCK values, then blocks of those block sums, and so on (pairwise
 * summation with a wide base): no accumulator takes more than SUM_BLOCK terms, so the worst-case error is
 * (stages × SUM_BLOCK) roundings instead of n. Measured on wasm at the sizes above: at most 3e-7 (two
 * stages up to 1M values, three up to 1G), at the plain sum's speed; the iteration's gradients come within
 * 4e-6 of float64 (test/distill/iteration-float64.test.ts). It is built of reshape, pad and sum, whose
 * gradients tfjs knows, so callers may differentiate through it (the full-unroll loss does); where only a
 * sum's gradient is used, one tf.sum is as exact (a sum's gradient is a broadcast) and its backward cheaper.
 *
 * tfjs's autodiff hides one more long sum: the gradient of `v · s` with respect to a scalar tensor s is
 * Σ dy·v, one tf.sum over all of v. `scaleByScalar` is that product with a blockedSum gradient; the full
 * unroll differentiates the learned learning rates through every θ − α g of the student with it (one
 * tf.sum per parameter tensor left them up to 1.9e-5 off float64 at d = 512).
 */
import { tf } from '../backend';

/** the most values one tf.sum adds in `blockedSum` (1,024: every stage's error at rounding level; 512 to 2,048 measure alike) */
export const SUM_BLOCK = 1024;

/** The sum of every value of `x` (any shape), accurate for long tensors (see the module comment). Call inside tf.tidy. */
export function blockedSum(x: tf.Tensor): tf.Scalar {
  let v = tf.reshape(x, [-1]) as tf.Tensor1D;
  while (v.size > SUM_BLOCK) {
    const rows = Math.ceil(v.size / SUM_BLOCK);
    const padded = rows * SUM_BLOCK === v.size ? v : tf.pad(v, [[0, rows * SUM_BLOCK - v.size]]);
    v = tf.sum(tf.reshape(padded, [rows, SUM_BLOCK]), 1) as tf.Tensor1D;
  }
  return tf.sum(v) as tf.Scalar;
}

// tfjs types customGrad's arguments as a tensor list ending in the save function
const scaled = tf.customGrad(((v: tf.Tensor, s: tf.Tensor, save: tf.GradSaveFunc) => {
  save([v, s]);
  return {
    value: tf.mul(v, s),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.mul(dy, saved[1]!), blockedSum(tf.mul(dy, saved[0]!))],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (v: tf.Tensor, s: tf.Scalar) => tf.Tensor;

/**
 * v · s for a scalar tensor s: tf.mul's value, and first-order gradients whose one reduction, ∂/∂s = Σ dy·v,
 * is a blockedSum (see the module comment). Call inside tf.tidy.
 */
export function scaleByScalar(v: tf.Tensor, s: tf.Scalar): tf.Tensor {
  return scaled(v, s);
}
