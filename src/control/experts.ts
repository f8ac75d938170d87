/**
 * The control's teachers (SPEC §3 for the unimodal task): K classifiers trained on the real MNIST
 * training split with plain mini-batch SGD (θ ← θ − η g, no momentum, no weight decay, like the
 * multimodal experts), each from its own seeded initialisation and batch order. Every expert keeps its
 * trajectory — the flat θ at epoch 0 (init) and after each epoch, E + 1 snapshots — and its validation
 * and test accuracy at each of those epochs (the teacher curve the control plots beside the students').
 */
import { z } from 'zod';
import { ready, tf } from '../backend';
import { parseConfig } from '../config/parse';
import { NonFiniteError } from '../errors';
import { deriveSeed, permutation, rng } from '../util/random';
import { type ClassifierShape, accuracy, classifierGrads, initClassifier, oneHotTargets } from './classifier';
import { MNIST_CLASSES, MNIST_PIXELS, type MnistData } from './mnist';
import { finiteArray } from '../model/finite';

export const ControlExpertsConfig = z
  .object({
    /** number of experts K */
    experts: z.number().int().positive().default(5),
    /** epochs E per expert (E + 1 snapshots) */
    epochs: z.number().int().positive().default(15),
    /** hidden width of the classifier; 0: linear softmax on pixels */
    hidden: z.number().int().nonnegative().default(0),
    /** SGD step size η of the experts (also the distiller's initial learned step size α) */
    lr: z.number().positive().default(0.1),
    /** mini-batch size */
    batchSize: z.number().int().positive().default(128),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();
export type ControlExpertsConfig = z.infer<typeof ControlExpertsConfig>;

export interface ClassifierExperts {
  readonly shape: ClassifierShape;
  /** the experts' SGD step size η */
  readonly lr: number;
  readonly epochs: number;
  /** snapshots[k][e]: expert k's flat θ after e epochs (e = 0: its initialisation) */
  readonly snapshots: readonly (readonly Float32Array[])[];
  /** valAccuracy[k][e], testAccuracy[k][e]: accuracy of snapshot e */
  readonly valAccuracy: readonly (readonly number[])[];
  readonly testAccuracy: readonly (readonly number[])[];
}

/** Train one expert from `theta` for `epochs` epochs; returns its snapshots (theta first). */
function trainOne(data: MnistData, shape: ClassifierShape, c: ControlExpertsConfig, k: number): Float32Array[] {
  const r = rng(deriveSeed(c.seed, 'control-expert', k, 'batches'));
  const n = data.train.n;
  const x = tf.tensor2d(data.train.pixels, [n, MNIST_PIXELS]);
  const y = tf.tidy(() => oneHotTargets(data.train.labels, MNIST_CLASSES));
  let theta = tf.tensor1d(initClassifier(shape, deriveSeed(c.seed, 'control-expert', k, 'init')));
  const snapshots = [theta.dataSync().slice() as Float32Array];
  for (let e = 0; e < c.epochs; e++) {
    const order = permutation(r, n);
    for (let at = 0; at < n; at += c.batchSize) {
      const idx = order.subarray(at, Math.min(n, at + c.batchSize));
      const next = tf.tidy(() => {
        const b = tf.tensor1d(idx, 'int32');
        const { grad } = classifierGrads(theta, tf.gather(x, b) as tf.Tensor2D, tf.gather(y, b) as tf.Tensor2D, shape);
        return tf.sub(theta, tf.mul(grad, c.lr)) as tf.Tensor1D;
      });
      theta.dispose();
      theta = next;
    }
    const snap = theta.dataSync().slice() as Float32Array;
    if (!finiteArray(snap)) {
      theta.dispose();
      x.dispose();
      y.dispose();
      throw new NonFiniteError(`control expert ${k} diverged in epoch ${e + 1} (lr ${c.lr}): lower the experts' lr`);
    }
    snapshots.push(snap);
  }
  theta.dispose();
  x.dispose();
  y.dispose();
  return snapshots;
}

/** K seeded experts with their per-epoch snapshots and accuracies (module comment). */
export async function trainExperts(data: MnistData, input: Partial<ControlExpertsConfig> = {}): Promise<ClassifierExperts> {
  await ready();
  const c = parseConfig(ControlExpertsConfig, input, 'control experts config');
  const shape: ClassifierShape = { inputs: MNIST_PIXELS, hidden: c.hidden, classes: MNIST_CLASSES };
  const snapshots: Float32Array[][] = [];
  const valAccuracy: number[][] = [];
  const testAccuracy: number[][] = [];
  for (let k = 0; k < c.experts; k++) {
    const s = trainOne(data, shape, c, k);
    snapshots.push(s);
    valAccuracy.push(s.map((t) => accuracy(t, data.val, shape)));
    testAccuracy.push(s.map((t) => accuracy(t, data.test, shape)));
  }
  return { shape, lr: c.lr, epochs: c.epochs, snapshots, valAccuracy, testAccuracy };
}
