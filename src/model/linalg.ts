import { tf } from '../backend';

/**
 * tfjs-wasm 4.22's matMul with transposeA/transposeB is 8–15× slower than an explicit transpose followed by
 * a plain matMul (128×1280 operands: 60 ms vs 4 ms), and tfjs's own matMul gradient uses those flags. `mm`
 * makes every transpose explicit, in the forward pass and in its gradient.
 */
// tfjs types customGrad's arguments as a tensor list ending in the save function
const plainMatMul = tf.customGrad(((a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => {
  save([a, b]);
  return {
    value: tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [
      tf.matMul(dy as tf.Tensor2D, tf.transpose(saved[1]!) as tf.Tensor2D),
      tf.matMul(tf.transpose(saved[0]!) as tf.Tensor2D, dy as tf.Tensor2D),
    ],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;

/** a·b with optional transposes, fast on every backend, differentiable (first order). Call inside tf.tidy. */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  return plainMatMul(transposeA ? tf.transpose(a) : a, transposeB ? tf.transpose(b) : b);
}

// gather forward; backward a scatter-add of the rows' cotangents into zeros (ScatterNd sums repeated indices)
const gatherRowsOp = tf.customGrad(((t: tf.Tensor, idx: tf.Tensor, save: tf.GradSaveFunc) => {
  save([idx]);
  const rows = t.shape[0]!;
  const cols = t.shape[1]!;
  return {
    value: tf.gather(t, idx as tf.Tensor1D),
    gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => [tf.scatterND(tf.reshape(saved[0]!, [-1, 1]), dy, [rows, cols]), tf.zerosLike(saved[0]!)],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (t: tf.Tensor2D, idx: tf.Tensor1D) => tf.Tensor2D;

/**
 * Rows `idx` of `t`, differentiable on every backend. tfjs-wasm lacks UnsortedSegmentSum, the kernel of
 * gather's own gradient, so the gradient is a ScatterNd of the cotangent rows (wasm has it). Both directions
 * are copies: the same numbers as the one-hot product this replaced (1·x + 0·…), without its
 * batch × rows × width multiply-adds (61 of the 133 MFLOP of a TESLA step at N = 500). Call inside tf.tidy.
 */
export function gatherRows(t: tf.Tensor2D, idx: tf.Tensor1D): tf.Tensor2D {
  // callers pass int32 indices: a cast of those would be one more (Identity) kernel per call on the hot path
  return gatherRowsOp(t, idx.dtype === 'int32' ? idx : (tf.cast(idx, 'int32') as tf.Tensor1D));
}

/** Entries `idx` of a vector, differentiable on every backend (see gatherRows). */
export function gatherVector(v: tf.Tensor1D, idx: tf.Tensor1D): tf.Tensor1D {
  return tf.reshape(gatherRows(tf.reshape(v, [-1, 1]) as tf.Tensor2D, idx), [-1]) as tf.Tensor1D;
}

/**
 * Rows `idx` of a row-major host matrix (`cols` columns) as a tensor: the same copy as tf.gather, without
 * tfjs-wasm's gather kernel, which costs ~60 ns per element (a 128 × 1280 batch: 10 ms, a sixth of a training
 * step). For data that lives on the host anyway (training features, a synthetic set being evaluated).
 */
export function hostRows(values: Float32Array, cols: number, idx: ArrayLike<number>): tf.Tensor2D {
  const rows = values.length / cols;
  const out = new Float32Array(idx.length * cols);
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    if (!(r >= 0 && r < rows && Number.isInteger(r))) throw new RangeError(`hostRows: index ${r} at position ${i} is outside 0…${rows - 1}`);
    out.set(values.subarray(r * cols, (r + 1) * cols), i * cols);
  }
  return tf.tensor2d(out, [idx.length, cols]);
}

/** The block M[idx, idx] of a host n × n matrix (or of the identity when `values` is null), as a tensor. */
export function hostBlock(values: Float32Array | null, n: number, idx: ArrayLike<number>): tf.Tensor2D {
  const b = idx.length;
  const out = new Float32Array(b * b);
  for (let i = 0; i < b; i++) {
    const r = idx[i]!;
    if (!(r >= 0 && r < n && Number.isInteger(r))) throw new RangeError(`hostBlock: index ${r} at position ${i} is outside 0…${n - 1}`);
    for (let j = 0; j < b; j++) out[i * b + j] = values ? values[r * n + idx[j]!]! : r === idx[j] ? 1 : 0;
  }
  return tf.tensor2d(out, [b, b]);
}
