/**
 * Our versions of some of tfjs-wasm's kernels, registered in their place and switchable back to tfjs's own, so
 * that tests and the bench can compare the two (./blas: products and pointwise convolutions on BLAS; ./wasm-binary:
 * the binary element-wise kernels' lighter call; ./wasm-copy: the copying kernels inside the heap).
 */
import * as tf from '@tensorflow/tfjs';

/**
 * For each of `names`, the wasm backend's registered kernel and ours made from it by `make` (which receives tfjs's
 * kernel as its fallback); a function that registers ours (true) or tfjs's (false) for all of them. Undefined, and
 * nothing changed, when one of the kernels is not registered.
 */
export function kernelSwitch(
  names: readonly string[],
  make: (name: string, tfjsKernel: tf.KernelFunc) => tf.KernelFunc,
): ((ours: boolean) => void) | undefined {
  const pairs: { tfjs: tf.KernelConfig; ours: tf.KernelConfig }[] = [];
  for (const name of names) {
    const tfjs = tf.getKernel(name, 'wasm');
    if (tfjs === undefined) return undefined;
    pairs.push({ tfjs, ours: { ...tfjs, kernelFunc: make(name, tfjs.kernelFunc) } });
  }
  return (ours) => {
    for (const p of pairs) {
      tf.unregisterKernel(p.tfjs.kernelName, 'wasm');
      tf.registerKernel(ours ? p.ours : p.tfjs);
    }
  };
}
