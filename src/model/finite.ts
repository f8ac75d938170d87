/** Finite-value checks for long loops: one scalar read per check, whatever the number of tensors. */
import { tf } from '../backend';
import { TOWERS, type DualParams } from './dual';
import { PARAM_NAMES } from './head';

/** Whether every value of `tensors` is finite (x·0 is NaN exactly when x is NaN or ±Infinity). */
export async function allFinite(tensors: readonly tf.Tensor[]): Promise<boolean> {
  if (tensors.length === 0) return true;
  const flag = tf.tidy(() => tf.addN(tensors.map((t) => tf.sum(tf.mul(t, 0)))));
  const v = (await flag.data())[0];
  flag.dispose();
  return v === 0;
}

/** Every parameter tensor of both heads. */
export const dualTensors = (theta: DualParams): tf.Tensor[] => TOWERS.flatMap((t) => PARAM_NAMES.map((n) => theta[t][n]));

/** Whether every entry of a host array is finite (a plain loop: TypedArray.every with a callback is ~5× slower). */
export function finiteArray(a: ArrayLike<number>): boolean {
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k])) return false;
  return true;
}
