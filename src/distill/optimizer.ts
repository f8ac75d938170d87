/**
 * The distiller's optimizer (SPEC §5.5): the project's one SGD (model/sgd.ts) over the synthetic state,
 * with momentum, no weight decay, and one step size per group of state tensors (X, Y, S, α).
 */
import { tf } from '../backend';
import { sgd } from '../model/sgd';
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
    const r = sgd(state, grads, velocity, (k) => opt.lr[k], { momentum: opt.momentum, weightDecay: 0 });
    return { state: r.params, velocity: r.velocity! };
  });
}
