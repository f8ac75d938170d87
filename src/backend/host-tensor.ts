/**
 * Float32 tensors from and to the host without extra copies: `hostTensor` writes values straight into the backend's
 * memory, `withValues` reads them there.
 *
 * `tf.tensor(values)` needs the values in a JavaScript array first, and tfjs-wasm then copies them into its heap:
 * for a training batch (128 × 1280 rows copied out of the feature matrix) that is a 655 KB allocation, a copy and a
 * second copy, ~0.4 ms of a 9 ms step. On the wasm backend `hostTensor` allocates the tensor in the heap (a kernel
 * with no inputs, like tfjs's Fill) and hands `fill` a view of it; on other backends a fresh Float32Array that
 * becomes the tensor. `fill` should write whole rows with `set`: entry-by-entry writes to a heap view measured ~3×
 * slower than to a plain array (a 128 × 256 dropout mask: 0.11 against 0.04 ms).
 */
import * as tf from '@tensorflow/tfjs';
import { type KernelArgs, type WasmBackendInternals, wasmBackendOf } from './wasm-internals';

const KERNEL = 'PtmstHostTensor';

interface HostTensorAttrs {
  readonly shape: number[];
  readonly fill: (values: Float32Array) => void;
}

function hostTensorKernel(args: KernelArgs): tf.TensorInfo {
  const { shape, fill } = args.attrs as unknown as HostTensorAttrs;
  const backend = wasmBackendOf(args);
  const out = backend.makeOutput(shape, 'float32');
  // the view is taken after the allocation (which may grow the heap) and used before any other
  fill(backend.typedArrayFromHeap(out));
  return out;
}

/**
 * A float32 tensor of `shape` whose values `fill` writes, in row-major order, into the array it is given (which
 * starts with unspecified contents on wasm: `fill` must write every entry). `fill` must not run tfjs ops.
 */
export function hostTensor<R extends tf.Rank>(shape: number[], fill: (values: Float32Array) => void): tf.Tensor<R> {
  if (tf.getBackend() !== 'wasm') {
    const values = new Float32Array(tf.util.sizeFromShape(shape));
    fill(values);
    const t: tf.Tensor = tf.tensor(values, shape, 'float32');
    return t as tf.Tensor<R>;
  }
  if (tf.getKernel(KERNEL, 'wasm') === undefined) tf.registerKernel({ kernelName: KERNEL, backendName: 'wasm', kernelFunc: hostTensorKernel });
  const attrs: HostTensorAttrs = { shape, fill };
  return tf.engine().runKernel(KERNEL, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor<R>;
}

/**
 * `f` of a float32 tensor's values, without copying them out where the backend allows it: on wasm `f` gets a view of
 * the tensor's bytes in the heap (reading a 1,000 × 5,000 score matrix back costs a 20 MB copy, ~8% of a retrieval),
 * elsewhere the values read back. The view is valid only while `f` runs: `f` must be synchronous, must not run
 * tfjs ops (an allocation may move the heap) and must not keep or write the array.
 */
export async function withValues<T>(t: tf.Tensor, f: (values: Float32Array) => T): Promise<T> {
  if (tf.getBackend() === 'wasm' && t.dtype === 'float32') {
    return f((tf.backend() as unknown as WasmBackendInternals).typedArrayFromHeap(t));
  }
  return f((await t.data()) as Float32Array);
}
