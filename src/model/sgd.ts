/**
 * The one SGD of the project, PyTorch's convention (torch.optim.SGD):
 *   g ← g + wd·θ (when wd > 0);  v ← μ v + g (when μ > 0);  θ ← θ − η v   (η = the step size of θ's group)
 * Without a velocity buffer and with wd = 0 this is θ − η g exactly (experts, SPEC §3); μ = 0.9, wd = 5e-4 is the evaluator's
 * student (SPEC §6); μ = 0.5 over the synthetic state is the distiller's (SPEC §5.5).
 */
import { tf } from '../backend';
import { sgdStepKernel } from '../backend/blas';
import { scaleByScalar } from './reduce';

export interface SgdOptions {
  readonly momentum: number;
  readonly weightDecay: number;
}

export type Params = Readonly<Record<string, tf.Tensor>>;

/**
 * One step over a flat record of tensors. `lr(k)` is tensor k's step size (a number, or a scalar tensor such
 * as a learned rate); a tensor with a gradient but no step size is a bug and throws; one without a gradient
 * is carried over unchanged. Without `velocity` there is no momentum buffer (plain SGD, μ ignored); with it,
 * the new velocity is returned beside the parameters. Returns new tensors (call inside tf.tidy).
 */
export function sgd(
  params: Params,
  grads: Readonly<Record<string, tf.Tensor | undefined>>,
  velocity: Params | undefined,
  lr: (key: string) => number | tf.Scalar | undefined,
  o: SgdOptions,
): { params: Record<string, tf.Tensor>; velocity: Record<string, tf.Tensor> | undefined } {
  const next: Record<string, tf.Tensor> = {};
  const nextV: Record<string, tf.Tensor> | undefined = velocity ? {} : undefined;
  for (const [k, p] of Object.entries(params)) {
    const g = grads[k];
    const eta = lr(k);
    if (g !== undefined && eta === undefined) throw new Error(`sgd: no step size for "${k}" (a bug: please report it)`);
    if (g === undefined || eta === undefined) {
      next[k] = tf.clone(p);
      if (nextV) nextV[k] = tf.clone(velocity![k]!);
      continue;
    }
    // a number step size outside a tape: one BLAS kernel where it applies (backend/blas), else the ops below
    const fused = typeof eta === 'number' ? sgdStepKernel(p, g, nextV && velocity![k], { lr: eta, momentum: o.momentum, weightDecay: o.weightDecay }) : undefined;
    if (fused) {
      next[k] = fused.param;
      if (nextV) nextV[k] = fused.velocity!;
      continue;
    }
    const gw = o.weightDecay > 0 ? tf.add(g, tf.mul(p, o.weightDecay)) : g;
    const v = nextV ? tf.add(tf.mul(velocity![k]!, o.momentum), gw) : gw;
    if (nextV) nextV[k] = v;
    // a learned (tensor) step size may be differentiated through this step: its gradient is a long sum
    next[k] = tf.sub(p, typeof eta === 'number' ? tf.mul(v, eta) : scaleByScalar(v, eta));
  }
  return { params: next, velocity: nextV };
}
