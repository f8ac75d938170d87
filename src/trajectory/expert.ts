/**
 * One expert (teacher) run on the real training pairs (SPEC §3): fresh heads, plain SGD, the
 * symmetric contrastive loss, a snapshot of all head parameters at epoch 0 and after every epoch,
 * and the teacher's retrieval on an evaluation split at every snapshot.
 */
import { tf } from '../backend';
import { type Retrieval, evaluateRetrieval } from '../evaluate/retrieval';
import type { FeatureSet } from '../features/feature-set';
import { type DualParams, type DualShape, disposeDual, dualGrads, dualShape, flattenTower, initDual, sgdStep } from '../model/dual';
import { dropoutMask } from '../model/head';
import type { LossName } from '../model/losses';
import { type Rng, permutation } from '../util/random';

export interface ExpertOptions {
  readonly epochs: number;
  readonly lrImg: number;
  readonly lrTxt: number;
  readonly batchSize: number;
  readonly dropout: number;
  readonly loss: LossName;
  readonly dOut: number;
  readonly temperature: number;
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

/** Train heads on every (caption, image) pair of `train` for `epochs` epochs. */
export async function trainExpert(
  train: FeatureSet,
  evalSets: ExpertEvalSets,
  opts: ExpertOptions,
  rand: Rng,
  onStep?: (epoch: number, step: number, stepsPerEpoch: number, loss: number | undefined) => void,
): Promise<ExpertTrajectory> {
  const shape = dualShape(train.dImg, train.dTxt, opts.dOut);
  const imgAll = tf.tensor2d(train.img, [train.numImages, train.dImg]);
  const txtAll = tf.tensor2d(train.txt, [train.numCaptions, train.dTxt]);
  const u = () => rand.next();
  let theta = initDual(shape, u);
  const snapshots: { img: Float32Array; txt: Float32Array }[] = [await flatSnapshot(theta)];
  const retrieval: Retrieval[] = [];
  const retrievalVal: Retrieval[] = [];
  const record = async () => {
    if (evalSets.test) retrieval.push(await evaluateRetrieval(theta, evalSets.test));
    if (evalSets.val) retrievalVal.push(await evaluateRetrieval(theta, evalSets.val));
  };
  await record();
  const n = train.numCaptions;
  const steps = Math.ceil(n / opts.batchSize);
  const eye = tf.eye(opts.batchSize);
  try {
    for (let epoch = 0; epoch < opts.epochs; epoch++) {
      const perm = permutation(rand, n);
      for (let s = 0; s < steps; s++) {
        const caps = perm.subarray(s * opts.batchSize, Math.min(n, (s + 1) * opts.batchSize));
        const b = caps.length;
        const imgs = Int32Array.from(caps, (c) => train.captionToImage[c]!);
        const maskImg = dropoutMask(b, opts.dOut, opts.dropout, u);
        const maskTxt = dropoutMask(b, opts.dOut, opts.dropout, u);
        let lossT: tf.Scalar | undefined;
        const next = tf.tidy(() => {
          const x = tf.gather(imgAll, imgs) as tf.Tensor2D;
          const y = tf.gather(txtAll, caps) as tf.Tensor2D;
          const sId = (b === opts.batchSize ? eye : tf.eye(b)) as tf.Tensor2D;
          const { loss, grads } = dualGrads(theta, { x, y, s: sId, maskImg, maskTxt }, opts.loss, opts.temperature);
          lossT = tf.keep(loss);
          return sgdStep(theta, grads, { img: opts.lrImg, txt: opts.lrTxt });
        });
        maskImg?.dispose();
        maskTxt?.dispose();
        disposeDual(theta);
        theta = next;
        const report = onStep !== undefined && (s === steps - 1 || s % 20 === 0);
        const lossValue = report ? (await lossT!.data())[0] : undefined;
        lossT!.dispose();
        if (report) onStep(epoch, s + 1, steps, lossValue);
      }
      snapshots.push(await flatSnapshot(theta));
      await record();
    }
  } finally {
    disposeDual(theta);
    imgAll.dispose();
    txtAll.dispose();
    eye.dispose();
  }
  const stack = (k: 'img' | 'txt') => {
    const len = snapshots[0]![k].length;
    const out = new Float32Array(snapshots.length * len);
    snapshots.forEach((s, i) => out.set(s[k], i * len));
    return out;
  };
  return { shape, img: stack('img'), txt: stack('txt'), retrieval, retrievalVal };
}
