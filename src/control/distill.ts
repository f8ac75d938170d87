/**
 * Trajectory matching for the unimodal control (MTT, SPEC §5 with one "tower"): distil the MNIST training
 * split into `imagesPerClass` synthetic images per class with fixed one-hot labels and one learned step
 * size α, under the SAME matching loss as the multimodal distiller (`matchingLoss`, SPEC §5.3).
 *
 * Each iteration:
 *  1. draw an expert k and a start epoch t ~ U{t⁻..t⁺}; θ_0 = snapshot t, θ* = snapshot t + M;
 *  2. unroll `synSteps` plain SGD steps from θ_0 on mini-batches of the synthetic set,
 *     g_i = ∇_θ CE(θ_i; X_b, Y_b), θ_{i+1} = θ_i − α g_i, G = Σ g_i;
 *  3. ℓ = ‖θ_0 − αG − θ*‖² / ‖θ_0 − θ*‖² (= ‖θ_N − θ*‖² / ‖θ_0 − θ*‖²; 1 when α = 0);
 *  4. ∂ℓ/∂X and ∂ℓ/∂α by backpropagation through the whole unroll (MTT's full backprop, the `full` mode of
 *     the multimodal distiller: each θ_i depends on the data; the classifier is small enough);
 *  5. SGD with momentum (0.5, as SPEC §5.5) on X and α, with their own step sizes.
 * The synthetic images start as real training digits of their class (seeded). Everything random is drawn
 * from the config's seed; every tensor an iteration makes is disposed.
 */
import { z } from 'zod';
import { ready, tf } from '../backend';
import { parseConfig } from '../config/parse';
import { ConfigError, NonFiniteError } from '../errors';
import { matchingLoss } from '../distill/matching';
import { gatherRows } from '../model/linalg';
import { sgd } from '../model/sgd';
import { deriveSeed, randInt, rng, sampleWithoutReplacement } from '../util/random';
import { type ClassifierShape, classifierGrads, oneHotTargets } from './classifier';
import type { ClassifierExperts } from './experts';
import { MNIST_PIXELS, type LabelledImages } from './mnist';
import { finiteArray } from '../model/finite';

export const ControlDistillConfig = z
  .object({
    /** synthetic images per class (MTT's IPC) */
    imagesPerClass: z.number().int().positive().default(10),
    /** distillation iterations */
    iterations: z.number().int().positive().default(300),
    /** unrolled student steps per iteration (SPEC §5.2's syn_steps) */
    synSteps: z.number().int().positive().default(10),
    /** M: the target is snapshot t + M */
    expertEpochs: z.number().int().positive().default(1),
    /** [t⁻, t⁺]: the start epoch range (inclusive); t⁺ + M must not exceed the experts' epochs */
    startRange: z.tuple([z.number().int().nonnegative(), z.number().int().nonnegative()]).default([0, 0]),
    /** synthetic images per unrolled step; 0: the whole synthetic set every step */
    batchSize: z.number().int().nonnegative().default(0),
    /**
     * SGD step size of the synthetic pixels. Measured (5 experts × 15 epochs, 300 iterations): 10 converges at
     * every start epoch; 100 stalls at ℓ ≈ 1 from start 7 on and 300 diverges — ∂ℓ/∂X grows as the
     * denominator ‖θ_t − θ_{t+M}‖² shrinks along the trajectory.
     */
    lrImages: z.number().positive().default(10),
    /** SGD step size of the learned step size α */
    lrLr: z.number().positive().default(1e-4),
    /** momentum of the synthetic state's SGD (SPEC §5.5) */
    momentum: z.number().min(0).max(0.99).default(0.5),
    /** α's initial value; absent: the experts' step size η */
    initLr: z.number().positive().optional(),
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();
export type ControlDistillConfig = z.infer<typeof ControlDistillConfig>;

/** A distilled classification set: images with fixed labels and the learned step size α. */
export interface SyntheticDigits extends LabelledImages {
  /** the learned step size α (students train with it) */
  readonly lr: number;
  /** the matching loss of every iteration */
  readonly losses: readonly number[];
}

/** The two snapshots one iteration matches (flat θ). */
export interface MatchingTeacher {
  readonly start: tf.Tensor1D;
  readonly target: tf.Tensor1D;
}

/**
 * The matching loss of one unroll as a function of the synthetic images and α (steps 2–3 of the module
 * comment); `batches[i]` are the synthetic rows of step i, `null` the whole set. Call inside tf.tidy.
 */
export function unrolledMatchingLoss(
  images: tf.Tensor2D,
  targets: tf.Tensor2D,
  lr: tf.Scalar,
  teacher: MatchingTeacher,
  batches: readonly (Int32Array | null)[],
  shape: ClassifierShape,
): tf.Scalar {
  let theta = teacher.start;
  let G = tf.zerosLike(teacher.start);
  for (const b of batches) {
    const idx = b === null ? null : tf.tensor1d(b, 'int32');
    const x = idx === null ? images : gatherRows(images, idx);
    const y = idx === null ? targets : (tf.gather(targets, idx) as tf.Tensor2D);
    const { grad } = classifierGrads(theta, x, y, shape);
    G = tf.add(G, grad);
    theta = tf.sub(theta, tf.mul(lr, grad));
  }
  return matchingLoss(teacher.start, teacher.target, G, lr);
}

/** ℓ and its gradients with respect to the images and α, by backprop through the unroll. Call inside tf.tidy. */
export function matchingGradients(
  images: tf.Tensor2D,
  targets: tf.Tensor2D,
  lr: tf.Scalar,
  teacher: MatchingTeacher,
  batches: readonly (Int32Array | null)[],
  shape: ClassifierShape,
): { loss: tf.Scalar; images: tf.Tensor2D; lr: tf.Scalar } {
  const { value, grads } = tf.valueAndGrads((x: tf.Tensor, a: tf.Tensor) =>
    unrolledMatchingLoss(x as tf.Tensor2D, targets, a as tf.Scalar, teacher, batches, shape),
  )([images, lr]);
  return { loss: value, images: grads[0] as tf.Tensor2D, lr: grads[1] as tf.Scalar };
}

/**
 * The synthetic set's initialisation: `perClass` distinct real training digits of each class, drawn from the
 * seed's own stream (so a sweep can evaluate the undistilled set a distillation of that seed started from).
 */
export function initialDigits(train: LabelledImages, classes: number, perClass: number, seed: number): LabelledImages {
  const r = rng(deriveSeed(seed, 'control-distill', 'init'));
  const pixels = new Float32Array(classes * perClass * MNIST_PIXELS);
  const labels = new Int32Array(classes * perClass);
  for (let c = 0; c < classes; c++) {
    const pool: number[] = [];
    for (let i = 0; i < train.n; i++) if (train.labels[i] === c) pool.push(i);
    if (pool.length < perClass) throw new ConfigError(`class ${c} has ${pool.length} training images, fewer than imagesPerClass ${perClass}`);
    const pick = sampleWithoutReplacement(r, pool.length, perClass);
    for (let j = 0; j < perClass; j++) {
      const src = pool[pick[j]!]!;
      pixels.set(train.pixels.subarray(src * MNIST_PIXELS, (src + 1) * MNIST_PIXELS), (c * perClass + j) * MNIST_PIXELS);
      labels[c * perClass + j] = c;
    }
  }
  return { n: labels.length, pixels, labels };
}

/** Distil `train` against `experts` (module comment). */
export async function distillDigits(
  train: LabelledImages,
  experts: ClassifierExperts,
  input: Partial<ControlDistillConfig> = {},
): Promise<SyntheticDigits> {
  await ready();
  const c = parseConfig(ControlDistillConfig, input, 'control distill config');
  const [t0, t1] = c.startRange;
  if (t0 > t1 || t1 + c.expertEpochs > experts.epochs) {
    throw new ConfigError(`control distill config: startRange [${t0}, ${t1}] with M = ${c.expertEpochs} needs t⁻ ≤ t⁺ and t⁺ + M ≤ ${experts.epochs} (the experts' epochs)`);
  }
  const shape = experts.shape;
  const init = initialDigits(train, shape.classes, c.imagesPerClass, c.seed);
  const r = rng(deriveSeed(c.seed, 'control-distill', 'iterations'));
  const n = init.n;
  const batchSize = c.batchSize === 0 || c.batchSize >= n ? 0 : c.batchSize;
  const targets = tf.tidy(() => oneHotTargets(init.labels, shape.classes));
  let params: Record<string, tf.Tensor> = {
    images: tf.tensor2d(init.pixels, [n, shape.inputs]),
    lr: tf.scalar(c.initLr ?? experts.lr),
  };
  let velocity: Record<string, tf.Tensor> = { images: tf.zerosLike(params.images!), lr: tf.zerosLike(params.lr!) };
  const stepSize = (k: string) => (k === 'images' ? c.lrImages : c.lrLr);
  const losses: number[] = [];
  const disposeAll = () => {
    for (const t of [...Object.values(params), ...Object.values(velocity), targets]) t.dispose();
  };
  for (let it = 0; it < c.iterations; it++) {
    const k = randInt(r, experts.snapshots.length);
    const t = t0 + randInt(r, t1 - t0 + 1);
    const batches = Array.from({ length: c.synSteps }, () => (batchSize === 0 ? null : sampleWithoutReplacement(r, n, batchSize).slice()));
    const out = tf.tidy(() => {
      const teacher = { start: tf.tensor1d(experts.snapshots[k]![t]!), target: tf.tensor1d(experts.snapshots[k]![t + c.expertEpochs]!) };
      const m = matchingGradients(params.images as tf.Tensor2D, targets, params.lr as tf.Scalar, teacher, batches, shape);
      const next = sgd(params, { images: m.images, lr: m.lr }, velocity, stepSize, { momentum: c.momentum, weightDecay: 0 });
      return { loss: m.loss, params: next.params, velocity: next.velocity! };
    });
    const loss = out.loss.dataSync()[0]!;
    out.loss.dispose();
    for (const x of [...Object.values(params), ...Object.values(velocity)]) x.dispose();
    params = out.params;
    velocity = out.velocity;
    if (!Number.isFinite(loss)) {
      disposeAll();
      throw new NonFiniteError(`control distillation diverged at iteration ${it} (loss ${loss}): lower lrImages or lrLr`);
    }
    losses.push(loss);
  }
  const pixels = params.images!.dataSync().slice() as Float32Array;
  const lr = params.lr!.dataSync()[0]!;
  disposeAll();
  if (!Number.isFinite(lr) || !finiteArray(pixels)) throw new NonFiniteError('control distillation produced a non-finite synthetic set');
  return { n, pixels, labels: init.labels, lr, losses };
}
