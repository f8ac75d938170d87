/**
 * The synthetic set being learned (SPEC §5): image vectors X (N×d_img), text vectors Y (N×d_txt), the
 * target similarity S and per-tower learning rates. S is one of
 *   - `full`: an N×N matrix, initialised to I;
 *   - `lowrank`: S = diag(a) + (α/r) L Rᵀ with a = 1, L ~ N(0,1), R = 0 (LoRS);
 *   - `none`: S = I, not learned (MTT-VL).
 * The state is a flat record of named tensors, so the optimizer, the EMA, checkpoints and the output
 * file treat every learned quantity alike.
 */
import { prototypePairs, spmPairs } from './amd';
import { tf } from '../backend';
import { ConfigError } from '../errors';
import { gatherRows, gatherVector, mm } from '../model/linalg';
import type { DualShape } from '../model/dual';
import type { FeatureSet } from '../features/feature-set';
import type { Trajectory } from '../trajectory/store';
import { type Rng, normal, sampleWithoutReplacement } from '../util/random';

export const SIMILARITIES = ['full', 'lowrank', 'none'] as const;
export type Similarity = (typeof SIMILARITIES)[number];

/** Learned tensors by name: x, y, lrImg, lrTxt, and sFull | (sDiag, sL, sR). */
export type SyntheticState = Readonly<Record<string, tf.Tensor>>;

export interface SimilaritySpec {
  readonly kind: Similarity;
  /** rank r and scale α of the low-rank part */
  readonly rank: number;
  readonly alpha: number;
}

export interface InitOptions {
  readonly size: number;
  readonly init: 'real' | 'noise' | 'prototypes' | 'spm';
  readonly similarity: SimilaritySpec;
  readonly alphaInit: number;
  /** the trained expert whose embeddings SPM clusters (`init: 'spm'` needs it; src/distill/amd.ts) */
  readonly expert?: { readonly trajectory: Trajectory; readonly shape: DualShape };
}

/** The real pairs the synthetic set starts from (random, or AMD's prototypes in either joint space). */
function initPairs(train: FeatureSet, o: InitOptions, rand: Rng): Int32Array {
  if (o.init === 'prototypes') return prototypePairs(train, o.size, rand);
  if (o.init === 'spm') {
    if (o.expert === undefined) throw new ConfigError("distill.init 'spm' needs the phase's expert trajectories (the trained expert's heads)");
    return spmPairs(train, o.size, rand, o.expert.trajectory, o.expert.shape);
  }
  return sampleWithoutReplacement(rand, train.numCaptions, o.size);
}

/**
 * Initialise from N random real pairs (a caption and its image), from AMD's k-means prototype pairs (frozen
 * encoders' space, or SPM's learned space), or from matching Gaussian noise.
 */
export function initSynthetic(train: FeatureSet, o: InitOptions, rand: Rng): { state: SyntheticState; pairs: Int32Array } {
  const n = o.size;
  const pairs = initPairs(train, o, rand);
  const x = new Float32Array(n * train.dImg);
  const y = new Float32Array(n * train.dTxt);
  if (o.init !== 'noise') {
    pairs.forEach((c, i) => {
      const img = train.captionToImage[c]!;
      x.set(train.img.subarray(img * train.dImg, (img + 1) * train.dImg), i * train.dImg);
      y.set(train.txt.subarray(c * train.dTxt, (c + 1) * train.dTxt), i * train.dTxt);
    });
  } else {
    // noise with each feature's real mean and standard deviation
    const fill = (out: Float32Array, src: Float32Array, rows: number, d: number) => {
      for (let k = 0; k < d; k++) {
        let m = 0;
        let v = 0;
        for (let r = 0; r < rows; r++) m += src[r * d + k]!;
        m /= rows;
        for (let r = 0; r < rows; r++) v += (src[r * d + k]! - m) ** 2;
        const sd = Math.sqrt(v / rows);
        for (let i = 0; i < n; i++) out[i * d + k] = m + sd * normal(rand);
      }
    };
    fill(x, train.img, train.numImages, train.dImg);
    fill(y, train.txt, train.numCaptions, train.dTxt);
  }
  const state: Record<string, tf.Tensor> = {
    x: tf.tensor2d(x, [n, train.dImg]),
    y: tf.tensor2d(y, [n, train.dTxt]),
    lrImg: tf.scalar(o.alphaInit),
    lrTxt: tf.scalar(o.alphaInit),
  };
  const s = o.similarity;
  if (s.kind === 'full') state.sFull = tf.eye(n);
  if (s.kind === 'lowrank') {
    state.sDiag = tf.ones([n]);
    state.sL = tf.tensor2d(Float32Array.from({ length: n * s.rank }, () => normal(rand)), [n, s.rank]);
    state.sR = tf.zeros([n, s.rank]);
  }
  return { state, pairs };
}

/** The target block S[b, b] for batch indices b (a tf op: differentiable in the state). */
export function similarityBlock(state: SyntheticState, spec: SimilaritySpec, b: tf.Tensor1D): tf.Tensor2D {
  const k = b.shape[0];
  if (spec.kind === 'full') {
    return tf.transpose(gatherRows(tf.transpose(gatherRows(state.sFull as tf.Tensor2D, b)) as tf.Tensor2D, b)) as tf.Tensor2D;
  }
  if (spec.kind === 'lowrank') {
    const diag = tf.mul(tf.eye(k), tf.reshape(gatherVector(state.sDiag as tf.Tensor1D, b), [k, 1]));
    const low = mm(gatherRows(state.sL as tf.Tensor2D, b), gatherRows(state.sR as tf.Tensor2D, b), false, true);
    return tf.add(diag, tf.mul(low, spec.alpha / spec.rank)) as tf.Tensor2D;
  }
  return tf.eye(k) as tf.Tensor2D;
}

/** The whole S (N×N) of a state, for the output file and the evaluator. */
export function fullSimilarity(state: SyntheticState, spec: SimilaritySpec): tf.Tensor2D {
  return tf.tidy(() => similarityBlock(state, spec, tf.range(0, state.x!.shape[0], 1, 'int32') as tf.Tensor1D));
}

export function disposeState(s: SyntheticState): void {
  for (const t of Object.values(s)) t.dispose();
}

export function cloneState(s: SyntheticState): SyntheticState {
  return Object.fromEntries(Object.entries(s).map(([k, t]) => [k, tf.clone(t)]));
}
