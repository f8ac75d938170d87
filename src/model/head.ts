/**
 * ProjectionHead as a functional module (SPEC §1): parameters are an explicit record of tensors, so the
 * inner loop is `θ − α g` and any snapshot of a trajectory plugs in.
 *
 *   p = x W1 + b1;  a = GELU(p) (erf form);  h = Dropout(a W2 + b2);  out = LayerNorm(h + p)
 *
 * The backward pass is written out by hand (`headBackward`) instead of taken from tfjs's tape: the
 * distiller differentiates *through* these gradients (TESLA's data gradient is a mixed second
 * derivative), and first-order autodiff of explicit formulas is exact where tfjs's nested tapes are not.
 * Tests check it against tfjs autodiff and central finite differences. On the wasm backend, outside tapes (experts,
 * evaluation students, the TESLA unroll), the element-wise parts run as fused kernels (backend/head-kernels) with
 * the same formulas; the ops below are what every tape records.
 */
import { tf } from '../backend';
import { colSum, mm } from './linalg';
import { hostTensor } from '../backend/host-tensor';
import { type HeadNormInputs, dropoutMaskFused, geluBackward, geluForward, headNormBackward, headNormForward } from '../backend/head-kernels';
import type { Rng } from '../util/random';

export const PARAM_NAMES = ['W1', 'b1', 'W2', 'b2', 'gamma', 'beta'] as const;
export type ParamName = (typeof PARAM_NAMES)[number];
export type HeadParams = Readonly<Record<ParamName, tf.Tensor>>;

export const LAYER_NORM_EPS = 1e-5;

export interface HeadShape {
  readonly dIn: number;
  readonly dOut: number;
}

export function paramShapes({ dIn, dOut }: HeadShape): Record<ParamName, number[]> {
  return { W1: [dIn, dOut], b1: [dOut], W2: [dOut, dOut], b2: [dOut], gamma: [dOut], beta: [dOut] };
}

export function paramCount(shape: HeadShape): number {
  return Object.values(paramShapes(shape)).reduce((a, s) => a + s.reduce((x, y) => x * y, 1), 0);
}

/**
 * PyTorch's default initialisation (what the reference's fresh heads get): Linear weights and biases
 * U(−1/√fan_in, 1/√fan_in), LayerNorm γ = 1, β = 0. `rand` is a seeded uniform [0,1) source.
 */
export function initHead(shape: HeadShape, rand: () => number): HeadParams {
  const uniform = (n: number, bound: number) => Float32Array.from({ length: n }, () => (2 * rand() - 1) * bound);
  const { dIn, dOut } = shape;
  const b1 = 1 / Math.sqrt(dIn);
  const b2 = 1 / Math.sqrt(dOut);
  return {
    W1: tf.tensor2d(uniform(dIn * dOut, b1), [dIn, dOut]),
    b1: tf.tensor1d(uniform(dOut, b1)),
    W2: tf.tensor2d(uniform(dOut * dOut, b2), [dOut, dOut]),
    b2: tf.tensor1d(uniform(dOut, b2)),
    gamma: tf.ones([dOut]),
    beta: tf.zeros([dOut]),
  };
}

/**
 * `initHead(shape, () => rand.next())` bit for bit (the same draws, in the same order, the same arithmetic), with the
 * draws taken in bulk (`nextUint32`): ~10× faster, for callers that initialise a head per iteration (distribution
 * matching's random heads).
 */
export function initHeadFromStream(shape: HeadShape, rand: Rng): HeadParams {
  const { dIn, dOut } = shape;
  const uniform = (n: number, bound: number) => {
    const draws = new Uint32Array(n);
    rand.nextUint32(draws);
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * (draws[i]! / 4294967296) - 1) * bound;
    return out;
  };
  const b1 = 1 / Math.sqrt(dIn);
  const b2 = 1 / Math.sqrt(dOut);
  // the object literal's order is initHead's: W1, b1, W2, b2
  const W1 = tf.tensor2d(uniform(dIn * dOut, b1), [dIn, dOut]);
  const bias1 = tf.tensor1d(uniform(dOut, b1));
  const W2 = tf.tensor2d(uniform(dOut * dOut, b2), [dOut, dOut]);
  const bias2 = tf.tensor1d(uniform(dOut, b2));
  return { W1, b1: bias1, W2, b2: bias2, gamma: tf.ones([dOut]), beta: tf.zeros([dOut]) };
}

/** Everything the backward pass needs from the forward pass. */
export interface HeadCache {
  readonly x: tf.Tensor2D;
  readonly p: tf.Tensor2D;
  /** Φ(p), the standard normal CDF (GELU(p) = p Φ(p)), reused by the backward pass */
  readonly cdf: tf.Tensor2D;
  readonly a: tf.Tensor2D;
  readonly mask: tf.Tensor2D | null;
  readonly zhat: tf.Tensor2D;
  readonly invSigma: tf.Tensor2D;
  /** L2-normalised output (what the dual encoder compares) */
  readonly u: tf.Tensor2D;
  readonly norm: tf.Tensor2D;
}

const SQRT1_2 = Math.SQRT1_2;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * e^(−p²/2), i.e. √(2π) φ(p), which GELU's derivative needs, as σ(−t) / σ(t) with t = p²/2 (exact: σ(−t)/σ(t) = e^−t).
 * tfjs-wasm's Exp is scalar code, ~12 ns per entry; its Sigmoid is XNNPACK's vectorised kernel, ~1.8 ns: 0.5 ms of
 * a 9 ms expert step. Within float32 rounding of exp (test/model/gradients.test.ts). The gradient −p e^(−p²/2) is
 * given directly, so a tape through the head's backward (the distiller's) records one op instead of five.
 */
export const expHalfSquare = tf.customGrad(((p: tf.Tensor, save: tf.GradSaveFunc) => {
  const t = tf.mul(tf.square(p), 0.5);
  const e = tf.div(tf.sigmoid(tf.neg(t)), tf.sigmoid(t));
  save([p, e]);
  return {
    value: e,
    gradFunc: (dy: tf.Tensor, [q, f]: tf.Tensor[]) => [tf.mul(dy, tf.neg(tf.mul(q!, f!)))],
  };
}) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (p: tf.Tensor) => tf.Tensor;

/**
 * Forward pass to the L2-normalised embedding. `mask` is an inverted-dropout mask (entries 0 or
 * 1/(1−rate)) of shape [batch, dOut], or null for no dropout. Call inside tf.tidy.
 */
export function headForward(params: HeadParams, x: tf.Tensor2D, mask: tf.Tensor2D | null): HeadCache {
  // the element-wise work: fused kernels outside tapes on wasm (backend/head-kernels), else the ops
  const xW1 = mm(x, params.W1 as tf.Tensor2D);
  const { p, cdf, a } = geluForward(xW1, params.b1) ?? gelu(xW1, params.b1);
  const aW2 = mm(a, params.W2 as tf.Tensor2D);
  const inputs = { q: aW2, b2: params.b2, mask, p, gamma: params.gamma, beta: params.beta };
  const normed = headNormForward(inputs, LAYER_NORM_EPS) ?? normForward(inputs);
  return { x, p, cdf, a, mask, ...normed };
}

/** p = xW1 + b1, Φ(p) and GELU(p) = p Φ(p) as tfjs ops */
function gelu(xW1: tf.Tensor2D, b1: tf.Tensor) {
  const p = tf.add(xW1, b1) as tf.Tensor2D;
  const cdf = tf.mul(tf.add(tf.erf(tf.mul(p, SQRT1_2)), 1), 0.5) as tf.Tensor2D;
  return { p, cdf, a: tf.mul(p, cdf) as tf.Tensor2D };
}

/** From aW2 to u (dropout, the residual, LayerNorm, L2 normalisation) as tfjs ops */
function normForward({ q: aW2, b2, mask, p, gamma, beta }: HeadNormInputs) {
  let q = tf.add(aW2, b2) as tf.Tensor2D;
  if (mask) q = tf.mul(q, mask);
  const z = tf.add(q, p);
  const mu = tf.mean(z, 1, true);
  const centred = tf.sub(z, mu);
  const variance = tf.mean(tf.square(centred), 1, true);
  const invSigma = tf.rsqrt(tf.add(variance, LAYER_NORM_EPS)) as tf.Tensor2D;
  const zhat = tf.mul(centred, invSigma) as tf.Tensor2D;
  const out = tf.add(tf.mul(zhat, gamma), beta);
  // ‖o‖ as √(Σ o²): tf.norm computes |o|^2 and s^0.5 with tfjs-wasm's Pow kernel, ~25 ns per element (a training
  // step's 128 × 256: 0.8 ms per tower); the same numbers here bit for bit (test/model/gradients.test.ts)
  const norm = tf.sqrt(tf.sum(tf.square(out), 1, true)) as tf.Tensor2D;
  const u = tf.div(out, norm) as tf.Tensor2D;
  return { zhat, invSigma, u, norm };
}

/** Embedding only (evaluation): no dropout. Disposes its intermediates. */
export function embed(params: HeadParams, x: tf.Tensor2D): tf.Tensor2D {
  return tf.tidy(() => headForward(params, x, null).u);
}

/** Gradients of the parameters given dLoss/du. Call inside tf.tidy. */
export function headBackward(params: HeadParams, c: HeadCache, gu: tf.Tensor2D): Record<ParamName, tf.Tensor> {
  // from u back to z and q: one fused kernel outside tapes on wasm (backend/head-kernels), else the ops
  const { gGamma, gBeta, gz, gq } = headNormBackward(gu, c, params.gamma) ?? normBackward(params, c, gu);
  // second linear (through dropout)
  const gW2 = mm(c.a, gq, true, false);
  const gb2 = colSum(gq);
  const ga = mm(gq, params.W2 as tf.Tensor2D, false, true);
  // GELU'(p) = Φ(p) + p φ(p), plus the residual path
  const gp = geluBackward(gz, ga, c.cdf, c.p) ?? geluBackwardOps(gz, ga, c);
  const gW1 = mm(c.x, gp, true, false);
  const gb1 = colSum(gp);
  return { W1: gW1, b1: gb1, W2: gW2, b2: gb2, gamma: gGamma, beta: gBeta };
}

/** dLoss/dp = g_z + g_a · GELU'(p), GELU'(p) = Φ(p) + p φ(p), as tfjs ops */
function geluBackwardOps(gz: tf.Tensor2D, ga: tf.Tensor2D, c: HeadCache): tf.Tensor2D {
  const dgelu = tf.add(c.cdf, tf.mul(c.p, tf.mul(expHalfSquare(c.p), INV_SQRT_2PI)));
  return tf.add(gz, tf.mul(ga, dgelu)) as tf.Tensor2D;
}

/** dLoss/du back through the L2 normalisation and LayerNorm (and dropout, for q) as tfjs ops. */
function normBackward(params: HeadParams, c: HeadCache, gu: tf.Tensor2D) {
  // u = o / ‖o‖
  const go = tf.div(tf.sub(gu, tf.mul(c.u, tf.sum(tf.mul(c.u, gu), 1, true))), c.norm);
  // LayerNorm
  const gGamma = colSum(tf.mul(go, c.zhat) as tf.Tensor2D);
  const gBeta = colSum(go as tf.Tensor2D);
  const gzhat = tf.mul(go, params.gamma);
  const gz = tf.mul(
    tf.sub(tf.sub(gzhat, tf.mean(gzhat, 1, true)), tf.mul(c.zhat, tf.mean(tf.mul(gzhat, c.zhat), 1, true))),
    c.invSigma,
  ) as tf.Tensor2D;
  const gq = (c.mask ? tf.mul(gz, c.mask) : gz) as tf.Tensor2D;
  return { gGamma, gBeta, gz, gq };
}

/** scratch arrays of dropoutMask, grown as needed (each worker thread has its own) */
let scratch = { draws: new Uint32Array(0), mask: new Float32Array(0) };

/**
 * An inverted-dropout mask (entries 0 or 1/(1 − rate), kept where the uniform draw is ≥ rate) from a seeded
 * stream, kept explicit so a re-pass can reuse it. On wasm a kernel draws it (backend/head-kernels: the same stream in
 * four lanes, into the tensor); elsewhere the draws come in bulk (`nextUint32`) into reused arrays, and the mask is
 * copied into the tensor in one piece (`hostTensor`; writing a wasm heap view entry by entry measured ~3× slower than
 * a plain array). Both give the same mask and leave the stream in the same place.
 */
export function dropoutMask(rows: number, cols: number, rate: number, rand: Rng): tf.Tensor2D | null {
  if (rate <= 0) return null;
  const keep = 1 / (1 - rate);
  // u ≥ rate with u = draw / 2^32 is draw ≥ rate · 2^32, exactly (both sides are scaled by a power of two), and for
  // an integer draw that is draw ≥ ⌈rate · 2^32⌉
  const threshold = Math.ceil(rate * 4294967296);
  const fused = dropoutMaskFused(rows, cols, threshold, keep, rand);
  if (fused) return fused;
  const n = rows * cols;
  if (scratch.mask.length < n) scratch = { draws: new Uint32Array(n), mask: new Float32Array(n) };
  const draws = scratch.draws.subarray(0, n);
  const mask = scratch.mask.subarray(0, n);
  rand.nextUint32(draws);
  for (let i = 0; i < n; i++) mask[i] = draws[i]! >= threshold ? keep : 0;
  return hostTensor<tf.Rank.R2>([rows, cols], (m) => m.set(mask));
}
