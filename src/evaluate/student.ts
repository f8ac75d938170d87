/**
 * The evaluator's student (SPEC §6): a fresh dual encoder trained on the training subsets in order with
 * one optimizer (SGD, momentum 0.9, weight decay 5e-4, per-tower learning rates), each subset for
 * `epochs` epochs of ⌈N/batch⌉ random batches with the matching block of its S, learning rate × 0.1 from
 * `decayEpoch`; retrieval on the validation and test splits after 0, evalEvery, 2·evalEvery, … and after
 * the last epoch of every subset (reference: 0, 10, …, 100, i.e. 11 checkpoints a subset).
 * With `EvalConfig.kd`, every step's loss also distils a trained expert's soft similarities (kd.ts).
 */
import { ready, tf } from '../backend';
import type { EvalConfig, ModelConfig } from '../config/schemas';
import type { FeatureSet } from '../features/feature-set';
import { ConfigError, CorruptFileError } from '../errors';
import { type DualParams, type DualShape, disposeDual, initDual, unflattenTower } from '../model/dual';
import { hostBlock, hostRows } from '../model/linalg';
import { teacherLogits } from '../model/kd';
import { manifestPath, readBuffer } from '../trajectory/store';
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

/**
 * A trained expert as knowledge-distillation teacher, as plain arrays (it is passed to worker threads
 * like the feature sets): its last snapshot, parameters flattened per tower in PARAM_NAMES order.
 */
export interface KdTeacher {
  readonly shape: DualShape;
  readonly img: Float32Array;
  readonly txt: Float32Array;
  /** the logits temperature the expert was trained with */
  readonly temperature: number;
  /** sha256 of the expert's file (what evaluation records depend on, rather than where the buffer is) */
  readonly sha256: string;
}

/**
 * Load and verify (checksums, via readBuffer) the teacher of `kd`: expert `teacherIndex`'s last snapshot.
 * The buffer must hold trained experts on the same features as `train`.
 */
export async function loadKdTeacher(
  kd: NonNullable<EvalConfig['kd']>,
  train: FeatureSet,
  modelTemperature: number,
): Promise<KdTeacher> {
  const { manifest, trajectories } = await readBuffer(kd.buffer, kd.teacherIndex + 1);
  const where = manifestPath(kd.buffer);
  if (manifest.kind !== 'experts') throw new ConfigError(`eval.kd.buffer: ${kd.buffer} is a ${manifest.kind} buffer; the teacher must be a trained expert`);
  const at = manifest.experts.filter((e) => e.index <= kd.teacherIndex).findIndex((e) => e.index === kd.teacherIndex);
  const traj = trajectories[at];
  if (at < 0 || !traj) throw new ConfigError(`eval.kd.teacherIndex: expert ${kd.teacherIndex} is not finished in ${kd.buffer}`);
  if (manifest.dims.img !== train.dImg || manifest.dims.txt !== train.dTxt) {
    throw new CorruptFileError(where, `the teacher takes ${manifest.dims.img}/${manifest.dims.txt}-d inputs, the features are ${train.dImg}/${train.dTxt}-d`);
  }
  if (manifest.features !== undefined && manifest.features !== train.digest) {
    throw new CorruptFileError(where, 'the teacher was trained on other training features than these');
  }
  const last = (flat: Float32Array) => {
    const p = flat.length / traj.snapshots;
    return flat.slice((traj.snapshots - 1) * p);
  };
  const trainedAt = (manifest.config.model as { temperature?: unknown } | undefined)?.temperature;
  return {
    shape: traj.shape,
    img: last(traj.img),
    txt: last(traj.txt),
    temperature: typeof trainedAt === 'number' ? trainedAt : modelTemperature,
    sha256: manifest.experts.find((e) => e.index === kd.teacherIndex)!.sha256,
  };
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
 * method and run), the subset and the epoch. `teacher` is required exactly when `cfg.kd` is set.
 */
export async function trainStudent(
  subsets: readonly TrainingSubset[],
  evalSets: { readonly val: FeatureSet; readonly test: FeatureSet },
  shape: DualShape,
  model: ModelConfig,
  cfg: EvalConfig,
  rand: Rng,
  label = 'student',
  teacher?: KdTeacher,
): Promise<StudentRun> {
  await ready();
  if ((cfg.kd === undefined) !== (teacher === undefined)) {
    throw new ConfigError(`${label}: knowledge distillation needs both eval.kd and a loaded teacher`);
  }
  const kd = cfg.kd && { temperature: cfg.kd.temperature, alpha: cfg.kd.alpha, weighting: cfg.kd.weighting };
  const teacherHeads: DualParams | undefined =
    teacher &&
    tf.tidy(() => ({
      img: unflattenTower(tf.tensor1d(teacher.img), teacher.shape.img),
      txt: unflattenTower(tf.tensor1d(teacher.txt), teacher.shape.txt),
    }));
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
      // the teacher has no dropout, so its logits over the whole subset are computed once, then blocked like S
      let tlHost: Float32Array | undefined;
      if (teacherHeads) {
        const tl = tf.tidy(() => teacherLogits(teacherHeads, tf.tensor2d(sub.x, [sub.n, shape.img.dIn]), tf.tensor2d(sub.y, [sub.n, shape.txt.dIn]), teacher!.temperature));
        tlHost = tl.dataSync() as Float32Array; // the backends hand out a host array the disposed tensor no longer touches
        tl.dispose();
      }
      // batches are copied from the host arrays (hostRows: tfjs-wasm's gather kernel is slow)
      const pairs: PairSource = {
        n: sub.n,
        batch: (idx) => ({
          x: hostRows(sub.x, shape.img.dIn, idx),
          y: hostRows(sub.y, shape.txt.dIn, idx),
          s: hostBlock(sub.s ?? null, sub.n, idx),
          ...(tlHost ? { teacher: hostBlock(tlHost, sub.n, idx) } : {}),
        }),
      };
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
            ...(kd ? { kd } : {}),
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
    }
  } finally {
    disposeDual(state.theta);
    disposeDual(state.velocity!);
    if (teacherHeads) disposeDual(teacherHeads);
  }
  return { checkpoints };
}
