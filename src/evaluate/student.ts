/**
 * The evaluator's student (SPEC §6): a fresh dual encoder trained on the training subsets in order with
 * one optimizer (SGD, momentum 0.9, weight decay 5e-4, per-tower learning rates), each subset for
 * `epochs` epochs of ⌈N/batch⌉ random batches with the matching block of its S, learning rate × 0.1 from
 * `decayEpoch`; retrieval on the validation and test splits after 0, evalEvery, 2·evalEvery, … and after
 * the last epoch of every subset (reference: 0, 10, …, 100, i.e. 11 checkpoints a subset).
 */
import { ready, tf } from '../backend';
import type { EvalConfig, ModelConfig } from '../config/schemas';
import { NonFiniteError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { type DualParams, type DualShape, TOWERS, disposeDual, dualGrads, initDual } from '../model/dual';
import { allFinite, dualTensors } from '../model/finite';
import { PARAM_NAMES, dropoutMask } from '../model/head';
import type { LossName } from '../model/losses';
import { type Rng, permutation } from '../util/random';
import { type Retrieval, evaluateRetrieval } from '../model/retrieval';

/** One block of training data: a synthetic subset (with its learned S and rates) or real pairs (S = I). */
export interface TrainingSubset {
  readonly n: number;
  /** row-major n × dImg and n × dTxt */
  readonly x: Float32Array;
  readonly y: Float32Array;
  /** row-major n × n target similarity; identity when absent */
  readonly s?: Float32Array;
  readonly lrImg: number;
  readonly lrTxt: number;
  readonly loss: LossName;
}

export interface Checkpoint {
  /** subset index (0-based) and epoch within it */
  readonly subset: number;
  readonly epoch: number;
  readonly val: Retrieval;
  readonly test: Retrieval;
}

export interface StudentRun {
  readonly checkpoints: readonly Checkpoint[];
}

/**
 * Train one student on the subsets in order; returns retrieval at every evaluation checkpoint. A loss or
 * parameter that becomes NaN or infinite stops the run with a NonFiniteError naming `label` (the method
 * and run), the subset and the epoch; it is checked once per epoch (one scalar read).
 */
export async function trainStudent(
  subsets: readonly TrainingSubset[],
  evalSets: { readonly val: FeatureSet; readonly test: FeatureSet },
  shape: DualShape,
  model: ModelConfig,
  cfg: EvalConfig,
  rand: Rng,
  label = 'student',
): Promise<StudentRun> {
  await ready();
  const u = () => rand.next();
  let theta: DualParams = initDual(shape, u);
  let velocity = tf.tidy(() => ({
    img: Object.fromEntries(PARAM_NAMES.map((n) => [n, tf.zerosLike(theta.img[n])])),
    txt: Object.fromEntries(PARAM_NAMES.map((n) => [n, tf.zerosLike(theta.txt[n])])),
  })) as unknown as DualParams;
  const checkpoints: Checkpoint[] = [];
  const evaluate = async (subset: number, epoch: number) =>
    checkpoints.push({
      subset,
      epoch,
      val: await evaluateRetrieval(theta, evalSets.val),
      test: await evaluateRetrieval(theta, evalSets.test),
    });
  try {
    for (const [si, sub] of subsets.entries()) {
      const x = tf.tensor2d(sub.x, [sub.n, shape.img.dIn]);
      const y = tf.tensor2d(sub.y, [sub.n, shape.txt.dIn]);
      const s = sub.s ? tf.tensor2d(sub.s, [sub.n, sub.n]) : tf.eye(sub.n);
      const steps = Math.ceil(sub.n / cfg.batchSize);
      try {
        for (let epoch = 0; epoch < cfg.epochs; epoch++) {
          if (epoch % cfg.evalEvery === 0) await evaluate(si, epoch);
          const decay = epoch >= cfg.decayEpoch ? 0.1 : 1;
          const lr = { img: sub.lrImg * decay, txt: sub.lrTxt * decay };
          const perm = permutation(rand, sub.n);
          let lossSum = tf.scalar(0);
          for (let k = 0; k < steps; k++) {
            const idx = perm.subarray(k * cfg.batchSize, Math.min(sub.n, (k + 1) * cfg.batchSize));
            const b = idx.length;
            const maskImg = dropoutMask(b, shape.img.dOut, model.dropout, u);
            const maskTxt = dropoutMask(b, shape.txt.dOut, model.dropout, u);
            const next = tf.tidy(() => {
              const bi = tf.tensor1d(idx, 'int32');
              const sb = tf.gather(tf.gather(s, bi, 0), bi, 1) as tf.Tensor2D;
              const { loss, grads } = dualGrads(
                theta,
                { x: tf.gather(x, bi) as tf.Tensor2D, y: tf.gather(y, bi) as tf.Tensor2D, s: sb, maskImg, maskTxt },
                sub.loss,
                model.temperature,
              );
              // PyTorch SGD: g += wd·θ; v = μ v + g; θ -= lr·v
              const step = (t: (typeof TOWERS)[number]) => {
                const v = Object.fromEntries(
                  PARAM_NAMES.map((n) => [
                    n,
                    tf.add(tf.mul(velocity[t][n], cfg.momentum), tf.add(grads[t][n], tf.mul(theta[t][n], cfg.weightDecay))),
                  ]),
                );
                const p = Object.fromEntries(PARAM_NAMES.map((n) => [n, tf.sub(theta[t][n], tf.mul(v[n]!, lr[t]))]));
                return { v, p };
              };
              const i = step('img');
              const t = step('txt');
              return { theta: { img: i.p, txt: t.p }, velocity: { img: i.v, txt: t.v }, lossSum: tf.add(lossSum, loss) };
            }) as unknown as { theta: DualParams; velocity: DualParams; lossSum: tf.Scalar };
            maskImg?.dispose();
            maskTxt?.dispose();
            disposeDual(theta);
            disposeDual(velocity);
            theta = next.theta;
            velocity = next.velocity;
            lossSum.dispose();
            lossSum = next.lossSum;
          }
          const finite = await allFinite([lossSum, ...dualTensors(theta)]);
          lossSum.dispose();
          if (!finite) {
            throw new NonFiniteError(
              `${label}: the training loss or the parameters became NaN or infinite in subset ${si + 1}, epoch ${epoch + 1}; ` +
                'stopped (learning rate too large for this data?)',
            );
          }
        }
        await evaluate(si, cfg.epochs);
      } finally {
        x.dispose();
        y.dispose();
        s.dispose();
      }
    }
  } finally {
    disposeDual(theta);
    disposeDual(velocity);
  }
  return { checkpoints };
}
