/**
 * Loss-ranked coresets: rank every training pair by a trained teacher's per-pair loss and keep the highest
 * (`loss-hard`) or, as the control, the lowest (`loss-easy`). Ties go to the lower index.
 *
 * Per-pair loss: the teacher's heads embed (no dropout, L2-normalised) the pairs in deterministic consecutive
 * blocks of BLOCK = 128 caption indices (the experts' batch size; the last block may be shorter), and within
 * its block pair j gets the symmetric InfoNCE of the experts' loss with S = I:
 *   loss_j = ½ [ −log softmax_over_images(L[:, j])_j − log softmax_over_captions(L[j, :])_j ],  L = u vᵀ / T,
 * so the cost is O(n · BLOCK · d) and each pair sees a fixed set of in-batch negatives.
 */
import { tf } from '../backend';
import { ConfigError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { unflattenTower } from '../model/dual';
import { headForward, paramCount } from '../model/head';
import { mm } from '../model/linalg';
import { topIndices } from './rank';
import type { CoresetRule, TeacherParams } from './types';

export const LOSS_BLOCK = 128;

/** Per-pair loss of every training pair under the teacher (length train.numCaptions, float64). */
export function perPairLoss(train: FeatureSet, teacher: TeacherParams, block = LOSS_BLOCK): Float64Array {
  const T = teacher.temperature;
  if (T === undefined || !(T > 0)) throw new ConfigError('the loss-ranked coresets need the teacher temperature (teacher.temperature, model.temperature)');
  const { shape } = teacher;
  if (teacher.img.length !== paramCount(shape.img) || teacher.txt.length !== paramCount(shape.txt)) {
    throw new Error(`teacher parameters (${teacher.img.length}, ${teacher.txt.length}) do not match its shape`);
  }
  if (shape.img.dIn !== train.dImg || shape.txt.dIn !== train.dTxt) {
    throw new Error(`teacher input dims (${shape.img.dIn}, ${shape.txt.dIn}) differ from the features' (${train.dImg}, ${train.dTxt})`);
  }
  const n = train.numCaptions;
  const out = new Float64Array(n);
  const theta = tf.tidy(() => ({
    img: unflattenTower(tf.tensor1d(teacher.img), shape.img),
    txt: unflattenTower(tf.tensor1d(teacher.txt), shape.txt),
  }));
  try {
    for (let start = 0; start < n; start += block) {
      const end = Math.min(n, start + block);
      const b = end - start;
      const x = new Float32Array(b * train.dImg);
      for (let i = 0; i < b; i++) {
        const im = train.captionToImage[start + i]!;
        x.set(train.img.subarray(im * train.dImg, (im + 1) * train.dImg), i * train.dImg);
      }
      const y = train.txt.subarray(start * train.dTxt, end * train.dTxt);
      const losses = tf.tidy(() => {
        const u = headForward(theta.img, tf.tensor2d(x, [b, train.dImg]), null).u;
        const v = headForward(theta.txt, tf.tensor2d(y, [b, train.dTxt]), null).u;
        const L = tf.div(mm(u, v, false, true), T) as tf.Tensor2D;
        const eye = tf.eye(b);
        const capCE = tf.neg(tf.sum(tf.mul(tf.logSoftmax(tf.transpose(L), 1), eye), 1)); // caption j over the images
        const imgCE = tf.neg(tf.sum(tf.mul(tf.logSoftmax(L, 1), eye), 1)); // image j over the captions
        return tf.mul(tf.add(capCE, imgCE), 0.5);
      });
      const data = losses.dataSync();
      losses.dispose();
      for (let i = 0; i < b; i++) out[start + i] = data[i]!;
    }
  } finally {
    tf.dispose([...Object.values(theta.img), ...Object.values(theta.txt)]);
  }
  return out;
}

const lossRule = (hard: boolean): CoresetRule => ({
  name: hard ? 'loss-hard' : 'loss-easy',
  description: hard
    ? "the pairs with the highest per-pair InfoNCE under a trained teacher (blocks of 128)"
    : "the pairs with the lowest per-pair InfoNCE under a trained teacher (control for loss-hard)",
  needs: ['teacher'],
  randomised: false,
  select: (ctx, size) => topIndices(perPairLoss(ctx.train, ctx.teacher!), size, hard),
});

export const lossHardCoreset = lossRule(true);
export const lossEasyCoreset = lossRule(false);
