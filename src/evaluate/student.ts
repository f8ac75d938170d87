/**
 * The evaluator's student (SPEC §6): a fresh dual encoder trained on the training subsets in order with
 * one optimizer (SGD, momentum 0.9, weight decay 5e-4, per-tower learning rates), each subset for
 * `epochs` epochs of ⌈N/batch⌉ random batches with the matching block of its S, learning rate × 0.1 from
 * `decayEpoch`; retrieval on the validation and test splits after 0, evalEvery, 2·evalEvery, … and after
 * the last epoch of every subset (reference: 0, 10, …, 100, i.e. 11 checkpoints a subset).
 */
import { ready, tf } from '../backend';
import type { EvalConfig, ModelConfig } from '../config/schemas';
import type { FeatureSet } from '../features/feature-set';
import { type DualParams, type DualShape, disposeDual, initDual } from '../model/dual';
import { type HeadsState, type PairSource, trainEpoch } from '../model/train';
import { PARAM_NAMES } from '../model/head';
import type { LossName } from '../model/losses';
import type { Rng } from '../util/random';
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
 * Train one student on the subsets in order; returns retrieval at every evaluation checkpoint. A loss,
 * parameter or score that becomes NaN or infinite stops the run with a NonFiniteError naming `label` (the
 * method and run), the subset and the epoch.
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
  const state: HeadsState = { theta: initDual(shape, () => rand.next()) };
  state.velocity = tf.tidy(() => ({
    img: Object.fromEntries(PARAM_NAMES.map((n) => [n, tf.zerosLike(state.theta.img[n])])),
    txt: Object.fromEntries(PARAM_NAMES.map((n) => [n, tf.zerosLike(state.theta.txt[n])])),
  })) as unknown as DualParams;
  const checkpoints: Checkpoint[] = [];
  const evaluate = async (subset: number, epoch: number) => {
    const at = `${label}, subset ${subset + 1}, after epoch ${epoch}`;
    checkpoints.push({
      subset,
      epoch,
      val: await evaluateRetrieval(state.theta, evalSets.val, at),
      test: await evaluateRetrieval(state.theta, evalSets.test, at),
    });
  };
  try {
    for (const [si, sub] of subsets.entries()) {
      const x = tf.tensor2d(sub.x, [sub.n, shape.img.dIn]);
      const y = tf.tensor2d(sub.y, [sub.n, shape.txt.dIn]);
      const s = sub.s ? tf.tensor2d(sub.s, [sub.n, sub.n]) : tf.eye(sub.n);
      const pairs: PairSource = {
        n: sub.n,
        batch: (idx) => {
          const bi = tf.tensor1d(idx, 'int32');
          return {
            x: tf.gather(x, bi) as tf.Tensor2D,
            y: tf.gather(y, bi) as tf.Tensor2D,
            s: tf.gather(tf.gather(s, bi, 0), bi, 1) as tf.Tensor2D,
          };
        },
      };
      try {
        for (let epoch = 0; epoch < cfg.epochs; epoch++) {
          if (epoch % cfg.evalEvery === 0) await evaluate(si, epoch);
          const decay = epoch >= cfg.decayEpoch ? 0.1 : 1;
          await trainEpoch(
            state,
            pairs,
            {
              shape,
              batchSize: cfg.batchSize,
              dropout: model.dropout,
              loss: sub.loss,
              temperature: model.temperature,
              lr: { img: sub.lrImg * decay, txt: sub.lrTxt * decay },
              sgd: { momentum: cfg.momentum, weightDecay: cfg.weightDecay },
              label,
              where: `subset ${si + 1}, epoch ${epoch + 1}`,
            },
            rand,
          );
        }
        await evaluate(si, cfg.epochs);
      } finally {
        x.dispose();
        y.dispose();
        s.dispose();
      }
    }
  } finally {
    disposeDual(state.theta);
    disposeDual(state.velocity!);
  }
  return { checkpoints };
}
