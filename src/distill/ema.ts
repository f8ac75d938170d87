/**
 * Exponential moving average of the synthetic state (SPEC §5.6): after every optimizer step
 * ema ← d·ema + (1 − d)·state, starting from the initial state. What a phase returns is the EMA.
 * After n steps: ema_n = dⁿ·s_0 + (1 − d) Σ_{k=1..n} d^{n−k} s_k.
 */
import { tf } from '../backend';
import type { SyntheticState } from './synthetic';

export function emaUpdate(ema: SyntheticState, state: SyntheticState, decay: number): SyntheticState {
  return tf.tidy(() =>
    Object.fromEntries(Object.entries(ema).map(([k, e]) => [k, tf.add(tf.mul(e, decay), tf.mul(state[k]!, 1 - decay))])),
  );
}
