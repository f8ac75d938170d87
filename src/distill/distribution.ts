/**
 * Distribution matching (DM), trajectory-free, beyond the paper: the synthetic pairs are fitted to the real
 * data's embedding distribution under sampled heads, in the spirit of Zhao & Bilen's distribution matching
 * for images (WACV 2023), carried to image–text pairs. No expert trajectory is matched, so with random heads
 * no experts are needed at all.
 *
 * Each iteration draws K head pairs (f, g): freshly initialised by the project's head initialiser
 * (`initDual`'s values, PyTorch's default, drawn in bulk: `initHeadFromStream`), or with `heads: 'trained'` a snapshot of a trained expert (a uniform
 * expert, a snapshot epoch uniform in the phase's `start` range). It embeds a real mini-batch of B pairs
 * (x_i, y_i) and the whole synthetic subset (X_j, Y_j), j < N, through them (the L2-normalised outputs the
 * students compare, no dropout) and takes the mean over the K pairs of
 *
 *   ℓ = ‖mean_i f(x_i) − mean_j f(X_j)‖²                                   (image tower)
 *     + ‖mean_i g(y_i) − mean_j g(Y_j)‖²                                   (text tower)
 *     + λ ‖(1/B) Σ_i f(x_i) g(y_i)ᵀ − (1/N) Σ_j f(X_j) g(Y_j)ᵀ‖²_F          (cross-modal)
 *
 * The first two are DM's per-modality term: the squared MMD with a linear kernel on the embeddings (the
 * mean-embedding difference). They are blind to which image goes with which caption: shuffling the synthetic
 * captions leaves them unchanged. The cross-modal term is the same estimator on the *pairs*, with the
 * product kernel k((x, y), (x', y')) = ⟨f(x), f(x')⟩ ⟨g(y), g(y')⟩, whose feature map is f(x) ⊗ g(y): the
 * squared MMD between the real and synthetic joint distributions under that kernel, i.e. the distance between
 * their (uncentred) image–text cross-moment matrices. It was chosen over matching the real pairs' image–text
 * similarity structure because that structure has no correspondence to the synthetic pairs (N ≠ B, no row
 * of one is a row of the other), while a mean over pairs needs none; and it is exactly what the students'
 * InfoNCE sees of the pairing, since their logits are ⟨f(x), g(y)⟩ = trace of f(x) ⊗ g(y). All three terms
 * are zero when the synthetic set's empirical distribution equals the batch's (same pairs, any order or
 * multiplicity); the cross term is not zero when only the marginals agree (test/distill/distribution.test.ts).
 *
 * X and Y are optimised with the trajectory distiller's SGD with momentum (optimizer.ts; `lrX`, `lrY`,
 * `momentum`) and, if `ema` > 0, its EMA. The gradient is taken of N·ℓ: each synthetic row's gradient in ℓ
 * scales as 1/N, so the step sizes then mean the same at every budget. S is I (`similarity` must be `none`)
 * and the set's learning rates are not learned: both are `alphaInit` (default 0.1, which is the experts' SGD
 * rate (`buffer.lrImg`, `lrTxt`) and the evaluation's rate for real pairs (`eval.realLr`)). The random stream
 * is seeded by `seed` and the phase index. Phases do not checkpoint (a phase takes seconds to minutes).
 */
import { ready, tf } from '../backend';
import type { DistillConfig, DistributionConfig, PhaseConfig } from '../config/schemas';
import { DistributionConfig as DistributionSchema } from '../config/schemas';
import { ConfigError, NonFiniteError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { type DualParams, type DualShape, disposeDual, unflattenTower } from '../model/dual';
import { embed, headForward, initHeadFromStream } from '../model/head';
import { mm } from '../model/linalg';
import type { Trajectory } from '../trajectory/store';
import type { ProgressSink } from '../util/progress';
import { type Rng, deriveSeed, randInt, rng, sampleWithoutReplacement } from '../util/random';
import { emaUpdate } from './ema';
import { sgdMomentumStep } from './optimizer';
import { type SyntheticState, cloneState, disposeState, initSynthetic } from './synthetic';

/** The real batch's statistics under one head pair: mean image and text embeddings, the mean outer product. */
export interface RealMoments {
  readonly mu: tf.Tensor1D;
  readonly mv: tf.Tensor1D;
  /** (1/B) Σ_i f(x_i) g(y_i)ᵀ, dOut × dOut */
  readonly cross: tf.Tensor2D;
}

/** The three terms of ℓ for one head pair (tf scalars; differentiable in x and y). */
export interface DmTerms {
  readonly img: tf.Scalar;
  readonly txt: tf.Scalar;
  readonly cross: tf.Scalar;
}

/** Mean embeddings and mean outer product of embedded pairs u (B × d), v (B × d). */
function moments(u: tf.Tensor2D, v: tf.Tensor2D): RealMoments {
  const b = u.shape[0];
  return { mu: tf.mean(u, 0) as tf.Tensor1D, mv: tf.mean(v, 0) as tf.Tensor1D, cross: tf.div(mm(u, v, true, false), b) as tf.Tensor2D };
}

/** The real batch's moments under each head pair (no tape needed: the fast embedding path). */
export function realMoments(heads: readonly DualParams[], x: tf.Tensor2D, y: tf.Tensor2D): RealMoments[] {
  return heads.map((h) => {
    const [mu, mv, cross] = tf.tidy(() => {
      const m = moments(embed(h.img, x), embed(h.txt, y));
      return [m.mu, m.mv, m.cross];
    });
    return { mu: mu as tf.Tensor1D, mv: mv as tf.Tensor1D, cross: cross as tf.Tensor2D };
  });
}

export function disposeMoments(ms: readonly RealMoments[]): void {
  for (const m of ms) for (const t of [m.mu, m.mv, m.cross]) t.dispose();
}

/** ℓ's terms for one head pair against the real batch's moments. Call inside tf.tidy (or a tape). */
export function dmTerms(heads: DualParams, real: RealMoments, x: tf.Tensor2D, y: tf.Tensor2D): DmTerms {
  const syn = moments(headForward(heads.img, x, null).u, headForward(heads.txt, y, null).u);
  const sq = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.sub(a, b))) as tf.Scalar;
  return { img: sq(real.mu, syn.mu), txt: sq(real.mv, syn.mv), cross: sq(real.cross, syn.cross) };
}

/** ℓ: the mean over head pairs of img + txt + λ·cross. Call inside tf.tidy (or a tape). */
export function dmLoss(heads: readonly DualParams[], real: readonly RealMoments[], x: tf.Tensor2D, y: tf.Tensor2D, crossWeight: number): tf.Scalar {
  const per = heads.map((h, k) => {
    const t = dmTerms(h, real[k]!, x, y);
    return tf.add(tf.add(t.img, t.txt), tf.mul(t.cross, crossWeight));
  });
  return tf.div(tf.addN(per), heads.length) as tf.Scalar;
}

/** ℓ and its gradients with respect to x and y. Call inside tf.tidy. */
export function dmGradients(
  heads: readonly DualParams[],
  real: readonly RealMoments[],
  x: tf.Tensor2D,
  y: tf.Tensor2D,
  crossWeight: number,
): { loss: tf.Scalar; gx: tf.Tensor2D; gy: tf.Tensor2D } {
  const { value, grads } = tf.valueAndGrads((a: tf.Tensor, b: tf.Tensor) => dmLoss(heads, real, a as tf.Tensor2D, b as tf.Tensor2D, crossWeight))([x, y]);
  return { loss: value as tf.Scalar, gx: grads[0] as tf.Tensor2D, gy: grads[1] as tf.Tensor2D };
}

/** The settings of a distribution-matching config, with defaults. */
export const distributionOf = (c: DistillConfig): DistributionConfig => c.distribution ?? DistributionSchema.parse({});

/** Whether a distillation config reads an expert buffer: every trajectory method, and DM with trained heads. */
export const readsExperts = (c: Pick<DistillConfig, 'objective' | 'distribution'>): boolean =>
  c.objective !== 'distribution' || c.distribution?.heads === 'trained';

/** A DM config's checks, before any work: each names the field. */
export function checkDistribution(c: DistillConfig, trainPairs: number, snapshots: number | undefined): void {
  if (c.similarity !== 'none') throw new ConfigError(`distill.similarity: distribution matching learns no S; set 'none' (got '${c.similarity}')`);
  c.phases.forEach((p, k) => {
    if (p.source !== 'experts') throw new ConfigError(`phases[${k}].source: distribution matching reads no trajectory slice; leave 'experts'`);
    if (p.size > trainPairs) throw new ConfigError(`phases[${k}].size: ${p.size} exceeds the ${trainPairs} training pairs`);
    if (distributionOf(c).heads === 'trained' && snapshots !== undefined && p.start[1] > snapshots - 1) {
      throw new ConfigError(`phases[${k}].start: trained heads up to epoch ${p.start[1]}, but the experts have snapshots 0..${snapshots - 1}`);
    }
  });
}

/** A trained head pair: snapshot t of a trajectory. */
function snapshotHeads(traj: Trajectory, shape: DualShape, t: number): DualParams {
  return tf.tidy(() => {
    const row = (tower: 'img' | 'txt') => {
      const p = traj[tower].length / traj.snapshots;
      return tf.tensor1d(traj[tower].subarray(t * p, (t + 1) * p));
    };
    return { img: unflattenTower(row('img'), shape.img), txt: unflattenTower(row('txt'), shape.txt) };
  });
}

/** One iteration's heads: fresh ones, or snapshots of trained experts. */
export function drawHeads(o: DistributionConfig, phase: PhaseConfig, shape: DualShape, trajectories: readonly Trajectory[], rand: Rng): DualParams[] {
  return Array.from({ length: o.headsPerIteration }, () => {
    // initDual(shape, () => rand.next()) bit for bit, its draws in bulk (half of an iteration's time otherwise)
    if (o.heads === 'random') return { img: initHeadFromStream(shape.img, rand), txt: initHeadFromStream(shape.txt, rand) };
    const traj = trajectories[randInt(rand, trajectories.length)]!;
    return snapshotHeads(traj, shape, phase.start[0] + randInt(rand, phase.start[1] - phase.start[0] + 1));
  });
}

/** A real mini-batch of `b` pairs (a caption and its image), drawn without replacement. */
export function realBatch(train: FeatureSet, b: number, rand: Rng): { x: tf.Tensor2D; y: tf.Tensor2D } {
  const caps = sampleWithoutReplacement(rand, train.numCaptions, Math.min(b, train.numCaptions));
  const x = new Float32Array(caps.length * train.dImg);
  const y = new Float32Array(caps.length * train.dTxt);
  caps.forEach((c, i) => {
    const img = train.captionToImage[c]!;
    x.set(train.img.subarray(img * train.dImg, (img + 1) * train.dImg), i * train.dImg);
    y.set(train.txt.subarray(c * train.dTxt, (c + 1) * train.dTxt), i * train.dTxt);
  });
  return { x: tf.tensor2d(x, [caps.length, train.dImg]), y: tf.tensor2d(y, [caps.length, train.dTxt]) };
}

export interface DistributionPhaseInput {
  readonly index: number;
  readonly phase: PhaseConfig;
  readonly config: DistillConfig;
  readonly train: FeatureSet;
  readonly shape: DualShape;
  /** the experts' trajectories (trained heads only) */
  readonly trajectories?: readonly Trajectory[];
  readonly onProgress?: ProgressSink;
}

export interface DistributionPhaseOutput {
  /** the EMA state (or the raw state when the EMA is off): x, y, lrImg, lrTxt (= alphaInit) */
  readonly state: SyntheticState;
  readonly initPairs: Int32Array;
  /** ℓ per iteration (before that iteration's step) */
  readonly losses: Float32Array;
  readonly iterations: number;
  readonly completed: true;
}

/** A phase's random stream and its start (x, y, lrImg, lrTxt; S = I): what its iteration 0 steps from. */
export function initDistribution(train: FeatureSet, phase: PhaseConfig, config: DistillConfig, index: number): { rand: Rng; state: SyntheticState; pairs: Int32Array } {
  const rand = rng(deriveSeed(config.seed, 'distribution', index));
  const init = initSynthetic(train, { size: phase.size, init: config.init, similarity: { kind: 'none', rank: 1, alpha: 1 }, alphaInit: config.alphaInit }, rand);
  return { rand, ...init };
}

/** Distil one phase's subset by distribution matching. */
export async function distillDistributionPhase(input: DistributionPhaseInput): Promise<DistributionPhaseOutput> {
  await ready();
  const { config, phase, train, shape, index } = input;
  const o = distributionOf(config);
  const trajectories = input.trajectories ?? [];
  if (o.heads === 'trained' && trajectories.length === 0) throw new ConfigError('distill.distribution.heads: trained heads need an expert buffer (expertBuffer)');
  checkDistribution(config, train.numCaptions, trajectories[0]?.snapshots);
  const { rand, ...init } = initDistribution(train, phase, config, index);
  let state = init.state;
  let velocity: SyntheticState = Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.zerosLike(t)]));
  let ema = cloneState(state);
  const losses = new Float32Array(phase.iterations);
  const n = phase.size;
  const lr = { x: config.lrX, y: config.lrY };
  try {
    for (let it = 0; it < phase.iterations; it++) {
      const heads = drawHeads(o, phase, shape, trajectories, rand);
      const batch = realBatch(train, o.batchReal, rand);
      const real = realMoments(heads, batch.x, batch.y);
      const { loss, grads } = tf.tidy(() => {
        const g = dmGradients(heads, real, state.x as tf.Tensor2D, state.y as tf.Tensor2D, o.crossWeight);
        return { loss: g.loss, grads: { x: tf.mul(g.gx, n), y: tf.mul(g.gy, n) } };
      });
      const value = (await loss.data())[0]!;
      loss.dispose();
      disposeMoments(real);
      batch.x.dispose();
      batch.y.dispose();
      for (const h of heads) disposeDual(h);
      if (!Number.isFinite(value)) {
        for (const t of Object.values(grads)) t.dispose();
        throw new NonFiniteError(`phase ${index}, iteration ${it}: the distribution-matching loss is ${value}; stopped (lower lrX, lrY)`);
      }
      losses[it] = value;
      const next = sgdMomentumStep(state, velocity, grads, { momentum: config.momentum, lr });
      for (const t of Object.values(grads)) t.dispose();
      disposeState(state);
      disposeState(velocity);
      ({ state, velocity } = next);
      if (config.ema > 0) {
        const e = emaUpdate(ema, state, config.ema);
        disposeState(ema);
        ema = e;
      }
      input.onProgress?.({ label: `phase ${index} (${phase.size} pairs, distribution matching)`, done: it + 1, total: phase.iterations, info: { loss: value } });
    }
  } catch (e) {
    disposeState(state);
    disposeState(velocity);
    disposeState(ema);
    throw e;
  }
  disposeState(velocity);
  let out: SyntheticState;
  if (config.ema > 0) {
    disposeState(state);
    out = ema;
  } else {
    disposeState(ema);
    out = state;
  }
  return { state: out, initPairs: init.pairs, losses, iterations: phase.iterations, completed: true };
}
