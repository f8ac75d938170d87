/**
 * The one mini-batch training loop for dual-encoder heads: experts (SPEC §3) and evaluation students
 * (SPEC §6) both run it. One epoch = a fresh permutation of the pairs, ⌈n / batch⌉ steps, each with its own
 * dropout masks, the loss against the batch's block of S, and one SGD step per tower. The random draws
 * (permutation, then per step the image mask and the text mask) are the same for both callers, so a run
 * is reproducible from its seed and resumable at any epoch from the random stream's state.
 */
import { tf } from '../backend';
import { NonFiniteError } from '../errors';
import type { Rng } from '../util/random';
import { permutation } from '../util/random';
import { type DualParams, type DualShape, TOWERS, type Tower, dualGrads } from './dual';
import { type HeadParams, dropoutMask } from './head';
import { LOSSES, type LossName } from './losses';
import { type KdOptions, kdLoss } from './kd';
import { allFinite, dualTensors } from './finite';
import { type SgdOptions, sgd } from './sgd';

/** Training pairs as the loop sees them: how many, and the tensors of one batch given its pair indices. */
export interface PairSource {
  readonly n: number;
  /**
   * x (b × dImg), y (b × dTxt) and the target block S (b × b) of these pairs, and with knowledge
   * distillation the teacher's logits on them (b × b); called inside tf.tidy
   */
  batch(pairs: Int32Array): { x: tf.Tensor2D; y: tf.Tensor2D; s: tf.Tensor2D; teacher?: tf.Tensor2D };
}

export interface EpochOptions {
  readonly shape: DualShape;
  readonly batchSize: number;
  readonly dropout: number;
  readonly loss: LossName;
  /** knowledge distillation (kd.ts) against the batches' teacher logits; needs PairSource `teacher` */
  readonly kd?: KdOptions;
  readonly temperature: number;
  /** step size per tower for this epoch */
  readonly lr: Readonly<Record<Tower, number>>;
  readonly sgd: SgdOptions;
  /** who trains and when, for the error if the epoch diverges: `expert 3` / `epoch 2` */
  readonly label: string;
  readonly where: string;
  /** hears step k of `steps` every `reportEvery` steps and at the last one, with the batch loss read back */
  readonly onStep?: (step: number, steps: number, loss: number) => void;
  readonly reportEvery?: number;
  /**
   * Hears every step's pairs (the batch's caption indices, in batch order) and, per pair, whether it is
   * learned at this presentation (see `learnedFlags`). Absent: nothing extra is computed or read back, and
   * training is unchanged bit for bit either way (the flags only read the logits the loss already uses).
   */
  readonly onBatch?: (pairs: Int32Array, learned: Uint8Array) => void;
}

/**
 * Per column j of batch logits L (rows images, columns captions; pair j = row j, column j): 1 when caption
 * j scores its own image at least as high as every other image of the batch (rank 1, ties count as learned),
 * else 0. These are the training-mode logits of the step (dropout on, parameters before the step). Call
 * inside tf.tidy.
 */
export function learnedFlags(L: tf.Tensor2D): tf.Tensor1D {
  const b = L.shape[0];
  const own = tf.sum(tf.mul(L, tf.eye(b)), 0);
  return tf.cast(tf.greaterEqual(own, tf.max(L, 0)), 'int32') as tf.Tensor1D;
}

export interface HeadsState {
  theta: DualParams;
  /** the momentum buffer; absent for plain SGD */
  velocity?: DualParams;
}

/**
 * One epoch over `data`; replaces `state.theta` (and `state.velocity`) by the new tensors, disposing the old
 * ones. A loss or parameter that became NaN or infinite stops it with a NonFiniteError naming `label` and
 * `where`: checked once per epoch (one scalar read), not per step.
 */
export async function trainEpoch(state: HeadsState, data: PairSource, o: EpochOptions, rand: Rng): Promise<void> {
  const steps = Math.ceil(data.n / o.batchSize);
  const perm = permutation(rand, data.n);
  let lossSum = tf.scalar(0);
  for (let k = 0; k < steps; k++) {
    const pairs = perm.subarray(k * o.batchSize, Math.min(data.n, (k + 1) * o.batchSize));
    const b = pairs.length;
    const maskImg = dropoutMask(b, o.shape.img.dOut, o.dropout, rand);
    const maskTxt = dropoutMask(b, o.shape.txt.dOut, o.dropout, rand);
    const { theta, velocity } = state;
    const next = tf.tidy(() => {
      const { x, y, s, teacher } = data.batch(pairs);
      if (o.kd && !teacher) throw new Error(`${o.label}: knowledge distillation needs the batches' teacher logits`);
      const lossFn = o.kd && teacher ? kdLoss(LOSSES[o.loss], teacher, o.kd) : o.loss;
      const { loss, grads, logits } = dualGrads(theta, { x, y, s, maskImg, maskTxt }, lossFn, o.temperature);
      const step = (t: Tower) => sgd(theta[t], grads[t], velocity?.[t], () => o.lr[t], o.sgd);
      const img = step('img');
      const txt = step('txt');
      return {
        theta: { img: img.params, txt: txt.params },
        velocity: img.velocity && txt.velocity ? { img: img.velocity, txt: txt.velocity } : undefined,
        loss: tf.keep(loss),
        learned: o.onBatch ? learnedFlags(logits) : undefined,
      };
    }) as { theta: DualParams; velocity?: Record<Tower, HeadParams>; loss: tf.Scalar; learned?: tf.Tensor1D };
    maskImg?.dispose();
    maskTxt?.dispose();
    for (const t of TOWERS) {
      tf.dispose(Object.values(theta[t]));
      if (velocity) tf.dispose(Object.values(velocity[t]));
    }
    state.theta = next.theta;
    if (next.velocity) state.velocity = next.velocity;
    if (next.learned) {
      const flags = Uint8Array.from(await next.learned.data());
      next.learned.dispose();
      o.onBatch!(pairs.slice(), flags);
    }
    const report = o.onStep !== undefined && (k === steps - 1 || k % (o.reportEvery ?? 20) === 0);
    if (report) o.onStep!(k + 1, steps, (await next.loss.data())[0]!);
    const sum = tf.add(lossSum, next.loss) as tf.Scalar;
    lossSum.dispose();
    next.loss.dispose();
    lossSum = sum;
  }
  const finite = await allFinite([lossSum, ...dualTensors(state.theta)]);
  lossSum.dispose();
  if (!finite) {
    throw new NonFiniteError(
      `${o.label}: the training loss or the parameters became NaN or infinite in ${o.where}; stopped (learning rate too large for this data?)`,
    );
  }
}
