import { tf } from '../backend';
import { transposesAreFree } from '../backend/blas';
import { hostTensor } from '../backend/host-tensor';

/**
 * On XNNPACK (tfjs-wasm without BLAS, see backend/blas), tfjs-wasm 4.22's matMul with transposeA/transposeB is
 * 8–15× slower than an explicit transpose followed by a plain matMul (128×1280 operands: 60 ms vs 4 ms), and
 * tfjs's own matMul gradient uses those flags. `mm` makes every transpose explicit there, in the forward pass and
 * in its gradient.
 *
 * A plain product is not free of layout costs either: XNNPACK packs the right operand of a product each time it
 * meets a new tensor (an unrolled student's weights are new at every step), at a few ns per element, and an
 * explicit transpose costs about as much. `a·bᵀ` is therefore computed as `(b·aᵀ)ᵀ` when that moves fewer
 * elements (`abT`): a batch's data gradient `g·W1ᵀ` (32 × 256 by a new 1280 × 256) took 5.0–5.6 ms, now 1.8 ms.
 */
const matMul = (a: tf.Tensor, b: tf.Tensor) => tf.matMul(a as tf.Tensor2D, b as tf.Tensor2D);

/** a·bᵀ in the orientation that transposes and packs fewer elements (2|b| against 2|a| + |a·bᵀ|). */
function abT(a: tf.Tensor, b: tf.Tensor): tf.Tensor2D {
  const [m, k] = a.shape as [number, number];
  const n = b.shape[0]!;
  return (2 * m * k + m * n < 2 * n * k ? tf.transpose(matMul(b, tf.transpose(a))) : matMul(a, tf.transpose(b))) as tf.Tensor2D;
}

// tfjs types customGrad's arguments as a tensor list ending in the save function
type Binary = (a: tf.Tensor2D, b: tf.Tensor2D) => tf.Tensor2D;
const customBinary = (f: (a: tf.Tensor, b: tf.Tensor, save: tf.GradSaveFunc) => { value: tf.Tensor; gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => tf.Tensor[] }) =>
  tf.customGrad(f as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as Binary;

/** a·b; d/da = dy·bᵀ, d/db = aᵀ·dy */
const productAB = customBinary((a, b, save) => {
  save([a, b]);
  return { value: matMul(a, b), gradFunc: (dy, [a, b]) => [abT(dy, b!), matMul(tf.transpose(a!), dy)] };
});

/** a·bᵀ; d/da = dy·b, d/db = dyᵀ·a */
const productABt = customBinary((a, b, save) => {
  save([a, b]);
  return { value: abT(a, b), gradFunc: (dy, [a, b]) => [matMul(dy, b!), matMul(tf.transpose(dy), a!)] };
});

/**
 * a·b with optional transposes, fast on every backend, differentiable (first order). Call inside tf.tidy.
 * Where products run on BLAS (backend/blas) a transpose is a flag of the call, so tfjs's own matMul and gradient
 * are used as they are.
 */
export function mm(a: tf.Tensor2D, b: tf.Tensor2D, transposeA = false, transposeB = false): tf.Tensor2D {
  if (transposesAreFree()) return tf.matMul(a, b, transposeA, transposeB);
  const left = transposeA ? tf.transpose(a) : a;
  return transposeB ? productABt(left, b) : productAB(left, b);
}

/**
 * Column sums of a matrix (a sum over axis 0), differentiable. tfjs-wasm reduces only over the innermost axis, so
 * tf.sum(x, 0) transposes first: 120 µs for a 128 × 256 batch, eight of them in a training step's backward pass.
 * Where products run on BLAS the sums are one product ones·x instead (~10 µs). Call inside tf.tidy.
 */
export function colSum(x: tf.Tensor2D): tf.Tensor1D {
  if (!transposesAreFree()) return tf.sum(x, 0);
  return tf.reshape(tf.matMul(tf.ones([1, x.shape[0]]) as tf.Tensor2D, x), [x.shape[1]]) as tf.Tensor1D;
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

/** Throws unless every entry of `idx` is an integer in 0…n − 1 (checked before any tensor exists). */
function checkIndices(what: string, idx: ArrayLike<number>, n: number): void {
  for (let i = 0; i < idx.length; i++) {
    const r = idx[i]!;
    if (!(r >= 0 && r < n && Number.isInteger(r))) throw new RangeError(`${what}: index ${r} at position ${i} is outside 0…${n - 1}`);
  }
}

/**
 * Rows `idx` of a row-major host matrix (`cols` columns) as a tensor: the same copy as tf.gather, without
 * tfjs-wasm's gather kernel, which costs ~60 ns per element (a 128 × 1280 batch: 10 ms, a sixth of a training
 * step), written straight into the tensor's memory (`hostTensor`). For data that lives on the host anyway
 * (training features, a synthetic set being evaluated).
 */
export function hostRows(values: Float32Array, cols: number, idx: ArrayLike<number>): tf.Tensor2D {
  checkIndices('hostRows', idx, values.length / cols);
  return hostTensor<tf.Rank.R2>([idx.length, cols], (out) => {
    for (let i = 0; i < idx.length; i++) out.set(values.subarray(idx[i]! * cols, (idx[i]! + 1) * cols), i * cols);
  });
}

/** The block M[idx, idx] of a host n × n matrix (or of the identity when `values` is null), as a tensor. */
export function hostBlock(values: Float32Array | null, n: number, idx: ArrayLike<number>): tf.Tensor2D {
  checkIndices('hostBlock', idx, n);
  const b = idx.length;
  // built in a plain array and copied in one piece (entry-by-entry writes to the tensor's memory are slower)
  const block = new Float32Array(b * b);
  for (let i = 0; i < b; i++) {
    const r = idx[i]!;
    for (let j = 0; j < b; j++) block[i * b + j] = values ? values[r * n + idx[j]!]! : r === idx[j] ? 1 : 0;
  }
  return hostTensor<tf.Rank.R2>([b, b], (out) => out.set(block));
}
