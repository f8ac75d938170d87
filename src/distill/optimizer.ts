/**
 * SGD with momentum over the synthetic state (SPEC §5.5), PyTorch's convention:
 * v ← μ v + g;  p ← p − η v, with one step size η per group of tensors.
 */
import { tf } from '../backend';
import type { SyntheticState } from './synthetic';

export interface MomentumSgd {
  readonly momentum: number;
  /** step size of each state tensor */
  readonly lr: Readonly<Record<string, number>>;
}

export function sgdMomentumStep(
  state: SyntheticState,
  velocity: SyntheticState,
  grads: Readonly<Record<string, tf.Tensor>>,
  opt: MomentumSgd,
): { state: SyntheticState; velocity: SyntheticState } {
  return tf.tidy(() => {
    const v: Record<string, tf.Tensor> = {};
    const s: Record<string, tf.Tensor> = {};
    for (const [k, p] of Object.entries(state)) {
      const g = grads[k];
      const lr = opt.lr[k];
      // a tensor with a gradient must have a step size: never drop a gradient silently
      if (g !== undefined && lr === undefined) throw new Error(`optimizer: no step size for state tensor "${k}" (a bug: please report it)`);
      if (g === undefined || lr === undefined) {
        s[k] = tf.clone(p);
        v[k] = tf.clone(velocity[k]!);
        continue;
      }
      v[k] = tf.add(tf.mul(velocity[k]!, opt.momentum), g);
      s[k] = tf.sub(p, tf.mul(v[k]!, lr));
    }
    return { state: s, velocity: v };
  });
}
