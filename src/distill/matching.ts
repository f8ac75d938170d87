/**
 * The trajectory-matching loss (SPEC §5.3), per tower:
 *   ℓ = ‖θ_0 − α G − θ*‖² / ‖θ_0 − θ*‖²,   G = Σ_i g_i (the student's summed gradients)
 * and the two derivatives the TESLA step needs, with G held fixed:
 *   ∂ℓ/∂g_i = 2 (α (θ* − θ_0) + α² G) / ‖θ_0 − θ*‖²     (the same for every step i)
 *   ∂ℓ/∂α   = −2 (θ_0 − α G − θ*) · G / ‖θ_0 − θ*‖²
 * All arguments are flat per-tower vectors (hundreds of thousands of values: the dot products and squared
 * norms are `blockedSum`s, see model/reduce.ts). Call inside tf.tidy.
 */
import { tf } from '../backend';
import { blockedSum } from '../model/reduce';

/** ‖v‖² of a long vector. */
const sqNorm = (v: tf.Tensor1D): tf.Scalar => blockedSum(tf.square(v));

export function matchingLoss(theta0: tf.Tensor1D, thetaStar: tf.Tensor1D, G: tf.Tensor1D, lr: tf.Scalar): tf.Scalar {
  const denom = sqNorm(tf.sub(theta0, thetaStar));
  return tf.div(sqNorm(tf.sub(tf.sub(theta0, tf.mul(lr, G)), thetaStar)), denom) as tf.Scalar;
}

/** ∂ℓ/∂g_i with G fixed: the vector that TESLA contracts with each step's gradient. */
export function stepCotangent(theta0: tf.Tensor1D, thetaStar: tf.Tensor1D, G: tf.Tensor1D, lr: tf.Scalar): tf.Tensor1D {
  const denom = sqNorm(tf.sub(theta0, thetaStar));
  return tf.div(tf.mul(tf.add(tf.mul(lr, tf.sub(thetaStar, theta0)), tf.mul(tf.square(lr), G)), 2), denom) as tf.Tensor1D;
}

/** ∂ℓ/∂α with G fixed. */
export function lrGradient(theta0: tf.Tensor1D, thetaStar: tf.Tensor1D, G: tf.Tensor1D, lr: tf.Scalar): tf.Scalar {
  const denom = sqNorm(tf.sub(theta0, thetaStar));
  const resid = tf.sub(tf.sub(theta0, tf.mul(lr, G)), thetaStar);
  return tf.div(tf.mul(blockedSum(tf.mul(resid, G)), -2), denom) as tf.Scalar;
}
