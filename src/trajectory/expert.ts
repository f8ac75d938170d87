/**
 * One expert (teacher) run on the real training pairs (SPEC §3): fresh heads, plain SGD, the
 * symmetric contrastive loss, a snapshot of all head parameters at epoch 0 and after every epoch,
 * and the teacher's retrieval on an evaluation split at every snapshot.
 */
import { ready, tf } from '../backend';
import { type Retrieval, evaluateRetrieval } from '../model/retrieval';
import type { FeatureSet } from '../features/feature-set';
import { type DualParams, type DualShape, disposeDual, dualShape, flattenTower, initDual, unflattenTower } from '../model/dual';
import { hostRows } from '../model/linalg';
import { type HeadsState, type PairSource, trainEpoch } from '../model/train';
import type { LossName } from '../model/losses';
import { type Rng, rng } from '../util/random';

export interface ExpertOptions {
  readonly epochs: number;
  /** SGD passes over the pairs between two snapshots (BufferConfig.passesPerEpoch; default 1) */
  readonly passesPerEpoch?: number;
  readonly lrImg: number;
  readonly lrTxt: number;
  readonly batchSize: number;
  readonly dropout: number;
  readonly loss: LossName;
  readonly dOut: number;
  readonly temperature: number;
  /** names the expert in errors */
  readonly label?: string;
}

/**
 * An expert after some finished epochs — its trajectory so far (the last snapshot is the current parameters)
 * and the random stream's state: enough to continue it bit-identically (per-epoch resume).
 */
export interface ExpertProgress extends Omit<ExpertTrajectory, 'shape'> {
  /** finished epochs */
  readonly epochs: number;
  /** the random stream's state after the last finished epoch */
  readonly rngState: number;
}

export interface ExpertResume {
  /** continue from here instead of a fresh start (the `rand` argument is then not used) */
  readonly from?: ExpertProgress;
  /** called after every finished epoch, before the next starts (persist it to resume after a crash) */
  readonly onEpoch?: (p: ExpertProgress) => Promise<void>;
  /**
   * Hears every step's caption indices and their learned flags (trainEpoch's `onBatch`: what forgetting events
   * are counted from). Absent: training computes and reads back nothing extra. Either way the trajectory is the same bit for bit.
   */
  readonly onBatch?: (epoch: number, pairs: Int32Array, learned: Uint8Array) => void;
}

export interface ExpertTrajectory {
  readonly shape: DualShape;
  /** per tower: (epochs + 1) flattened snapshots, row-major */
  readonly img: Float32Array;
  readonly txt: Float32Array;
  /** retrieval of each snapshot on the test split (empty if none given) */
  readonly retrieval: readonly Retrieval[];
  /** retrieval of each snapshot on the validation split (empty if none given) */
  readonly retrievalVal: readonly Retrieval[];
}

export interface ExpertEvalSets {
  readonly val?: FeatureSet;
  readonly test?: FeatureSet;
}

async function flatSnapshot(theta: DualParams): Promise<{ img: Float32Array; txt: Float32Array }> {
  const [img, txt] = tf.tidy(() => [flattenTower(theta.img), flattenTower(theta.txt)]);
  const out = { img: (await img!.data()) as Float32Array, txt: (await txt!.data()) as Float32Array };
  img!.dispose();
  txt!.dispose();
  return out;
}

const rows = (flat: Float32Array, count: number) => {
  const len = flat.length / count;
  return Array.from({ length: count }, (_, i) => flat.slice(i * len, (i + 1) * len));
};

/**
 * Train heads on every (caption, image) pair of `train` for `epochs` epochs. A loss or parameter that
 * becomes NaN or infinite stops the expert with a NonFiniteError naming it and the epoch.
 */
export async function trainExpert(
  train: FeatureSet,
  evalSets: ExpertEvalSets,
  opts: ExpertOptions,
  rand: Rng,
  onStep?: (epoch: number, step: number, stepsPerEpoch: number, loss: number) => void,
  resume: ExpertResume = {},
): Promise<ExpertTrajectory> {
  await ready();
  const shape = dualShape(train.dImg, train.dTxt, opts.dOut);
  const from = resume.from;
  if (from) rand = rng(from.rngState);
  const label = opts.label ?? 'expert';
  const snapshots: { img: Float32Array; txt: Float32Array }[] = [];
  if (from) {
    const img = rows(from.img, from.epochs + 1);
    const txt = rows(from.txt, from.epochs + 1);
    img.forEach((_, i) => snapshots.push({ img: img[i]!, txt: txt[i]! }));
  }
  const last = snapshots[snapshots.length - 1];
  const state: HeadsState = {
    theta: last
      ? tf.tidy(() => ({ img: unflattenTower(tf.tensor1d(last.img), shape.img), txt: unflattenTower(tf.tensor1d(last.txt), shape.txt) }))
      : initDual(shape, () => rand.next()),
  };
  const retrieval: Retrieval[] = [...(from?.retrieval ?? [])];
  const retrievalVal: Retrieval[] = [...(from?.retrievalVal ?? [])];
  const record = async (epoch: number) => {
    const at = `${label}, after epoch ${epoch}`;
    if (evalSets.test) retrieval.push(await evaluateRetrieval(state.theta, evalSets.test, at));
    if (evalSets.val) retrievalVal.push(await evaluateRetrieval(state.theta, evalSets.val, at));
  };
  if (!from) {
    snapshots.push(await flatSnapshot(state.theta));
    await record(0);
  }
  const eye = tf.eye(opts.batchSize) as tf.Tensor2D;
  // every (caption, its image) is a pair; real pairs have the identity as their target S
  const pairs: PairSource = {
    n: train.numCaptions,
    batch: (caps) => ({
      x: hostRows(train.img, train.dImg, Int32Array.from(caps, (c) => train.captionToImage[c]!)),
      y: hostRows(train.txt, train.dTxt, caps),
      s: caps.length === opts.batchSize ? eye : (tf.eye(caps.length) as tf.Tensor2D),
    }),
  };
  try {
    for (let epoch = from?.epochs ?? 0; epoch < opts.epochs; epoch++) {
      // a snapshot after every `passesPerEpoch` passes (resume stays at snapshot boundaries)
      const passes = opts.passesPerEpoch ?? 1;
      for (let pass = 0; pass < passes; pass++) {
        await trainEpoch(
          state,
          pairs,
          {
            shape,
            batchSize: opts.batchSize,
            dropout: opts.dropout,
            loss: opts.loss,
            temperature: opts.temperature,
            lr: { img: opts.lrImg, txt: opts.lrTxt },
            sgd: { momentum: 0, weightDecay: 0 }, // SPEC §3: plain SGD
            label,
            where: passes === 1 ? `epoch ${epoch + 1}` : `epoch ${epoch + 1}, pass ${pass + 1}/${passes}`,
            ...(onStep ? { onStep: (step: number, steps: number, loss: number) => onStep(epoch, pass * steps + step, passes * steps, loss) } : {}),
            ...(resume.onBatch ? { onBatch: (p: Int32Array, l: Uint8Array) => resume.onBatch!(epoch, p, l) } : {}),
          },
          rand,
        );
      }
      snapshots.push(await flatSnapshot(state.theta));
      await record(epoch + 1);
      if (resume.onEpoch) {
        await resume.onEpoch({
          epochs: epoch + 1,
          img: stack(snapshots, 'img'),
          txt: stack(snapshots, 'txt'),
          retrieval: [...retrieval],
          retrievalVal: [...retrievalVal],
          rngState: rand.state(),
        });
      }
    }
  } finally {
    disposeDual(state.theta);
    eye.dispose();
  }
  return { shape, img: stack(snapshots, 'img'), txt: stack(snapshots, 'txt'), retrieval, retrievalVal };
}

function stack(snapshots: readonly { img: Float32Array; txt: Float32Array }[], k: 'img' | 'txt'): Float32Array {
  const len = snapshots[0]![k].length;
  const out = new Float32Array(snapshots.length * len);
  snapshots.forEach((s, i) => out.set(s[k], i * len));
  return out;
}
