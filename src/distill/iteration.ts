/**
 * One distillation iteration (SPEC §5.2–5.4): unroll the student from a teacher snapshot on mini-batches
 * of the synthetic set, score the endpoint against the teacher's later snapshot, and return the gradients
 * of every learned tensor of the synthetic state.
 *
 * Two gradient modes, one code path:
 *  - `tesla` (PTM-ST, LoRS): constant memory. For each step i the gradient of
 *    ⟨∂ℓ/∂g_i, g_i(θ_i; X_b, Y_b, S_bb)⟩ with θ_i held fixed is taken with respect to the data and
 *    scattered back by index; the learning rates get ∂ℓ/∂α with G held fixed.
 *  - `full` (MTT-VL): backpropagation through the whole unroll, θ_i depending on the data.
 * Dropout masks are drawn once per step and reused by the re-pass (the reference redraws them, so its
 * re-pass differentiates a different network from the one it unrolled).
 */
import { tf } from '../backend';
import { type DualParams, type Tower, disposeDual, dualGrads, flattenTower, sgdStep } from '../model/dual';
import type { LossName } from '../model/losses';
import { gatherRows } from '../model/linalg';
import { blockedSum } from '../model/reduce';
import { lrGradient, matchingLoss, stepCotangent } from './matching';
import { type SimilaritySpec, type SyntheticState, similarityBlock } from './synthetic';

export type GradientMode = 'tesla' | 'full';

export interface Teacher {
  /** the student's starting point: snapshot t */
  readonly theta0: DualParams;
  /** the same, flattened per tower */
  readonly start: Readonly<Record<Tower, tf.Tensor1D>>;
  /** the target: snapshot t + M, flattened per tower */
  readonly target: Readonly<Record<Tower, tf.Tensor1D>>;
}

export interface UnrollStep {
  /** indices into the synthetic set */
  readonly batch: Int32Array;
  readonly maskImg: tf.Tensor2D | null;
  readonly maskTxt: tf.Tensor2D | null;
}

export interface IterationOptions {
  readonly loss: LossName;
  readonly temperature: number;
  readonly similarity: SimilaritySpec;
  readonly mode: GradientMode;
}

export interface IterationResult {
  readonly lossImg: number;
  readonly lossTxt: number;
  /** gradient of ℓ_img + ℓ_txt for each learned tensor of the state (caller disposes) */
  readonly grads: Record<string, tf.Tensor>;
}

/** Names of the state tensors that S is made of. */
export function similarityKeys(spec: SimilaritySpec): string[] {
  return spec.kind === 'full' ? ['sFull'] : spec.kind === 'lowrank' ? ['sDiag', 'sL', 'sR'] : [];
}

function withData(state: SyntheticState, keys: readonly string[], values: readonly tf.Tensor[]): SyntheticState {
  return { ...state, ...Object.fromEntries(keys.map((k, i) => [k, values[i]!])) };
}

function stepGrads(theta: DualParams, s: SyntheticState, step: UnrollStep, o: IterationOptions) {
  const b = tf.tensor1d(step.batch, 'int32');
  return dualGrads(
    theta,
    {
      x: gatherRows(s.x as tf.Tensor2D, b),
      y: gatherRows(s.y as tf.Tensor2D, b),
      s: similarityBlock(s, o.similarity, b),
      maskImg: step.maskImg,
      maskTxt: step.maskTxt,
    },
    o.loss,
    o.temperature,
  ).grads;
}

async function scalars(...ts: tf.Tensor[]): Promise<number[]> {
  const out = await Promise.all(ts.map(async (t) => (await t.data())[0]!));
  return out;
}

function teslaIteration(state: SyntheticState, teacher: Teacher, steps: readonly UnrollStep[], o: IterationOptions) {
  const lr = { img: state.lrImg as tf.Scalar, txt: state.lrTxt as tf.Scalar };
  // forward unroll: θ_{i+1} = θ_i − α g_i, G = Σ g_i
  const thetas: DualParams[] = [teacher.theta0];
  let G = tf.tidy(() => ({ img: tf.zerosLike(teacher.start.img), txt: tf.zerosLike(teacher.start.txt) }));
  for (const step of steps) {
    const { next, G2 } = tf.tidy(() => {
      const g = stepGrads(thetas[thetas.length - 1]!, state, step, o);
      return {
        next: sgdStep(thetas[thetas.length - 1]!, g, lr),
        G2: { img: tf.add(G.img, flattenTower(g.img)) as tf.Tensor1D, txt: tf.add(G.txt, flattenTower(g.txt)) as tf.Tensor1D },
      };
    });
    G.img.dispose();
    G.txt.dispose();
    G = G2;
    thetas.push(next);
  }
  const m = tf.tidy(() => {
    const per = (t: Tower) => ({
      loss: matchingLoss(teacher.start[t], teacher.target[t], G[t], lr[t]),
      cot: stepCotangent(teacher.start[t], teacher.target[t], G[t], lr[t]),
      gLr: lrGradient(teacher.start[t], teacher.target[t], G[t], lr[t]),
    });
    return { img: per('img'), txt: per('txt') };
  });
  // re-pass: d/d(data) of ⟨∂ℓ/∂g_i, g_i⟩ with θ_i fixed, summed over steps and towers
  const keys = ['x', 'y', ...similarityKeys(o.similarity)];
  let acc: tf.Tensor[] = keys.map((k) => tf.zerosLike(state[k]!));
  steps.forEach((step, i) => {
    const next = tf.tidy(() => {
      const f = (...data: tf.Tensor[]) => {
        const g = stepGrads(thetas[i]!, withData(state, keys, data), step, o);
        // only the gradient of this long sum is used, and a sum's gradient is exact in any order: one tf.sum
        // (a blockedSum's backward costs more, for nothing; see model/reduce.ts)
        return tf.add(tf.sum(tf.mul(m.img.cot, flattenTower(g.img))), tf.sum(tf.mul(m.txt.cot, flattenTower(g.txt)))) as tf.Scalar;
      };
      const gs = tf.grads(f)(keys.map((k) => state[k]!));
      return acc.map((a, j) => tf.add(a, gs[j]!));
    });
    for (const a of acc) a.dispose();
    acc = next;
  });
  for (const th of thetas.slice(1)) disposeDual(th);
  G.img.dispose();
  G.txt.dispose();
  const grads: Record<string, tf.Tensor> = Object.fromEntries(keys.map((k, j) => [k, acc[j]!]));
  grads.lrImg = m.img.gLr;
  grads.lrTxt = m.txt.gLr;
  return { grads, lossImg: m.img.loss, lossTxt: m.txt.loss, dispose: [m.img.cot, m.txt.cot] };
}

function fullIteration(state: SyntheticState, teacher: Teacher, steps: readonly UnrollStep[], o: IterationOptions) {
  const keys = ['x', 'y', 'lrImg', 'lrTxt', ...similarityKeys(o.similarity)];
  return tf.tidy(() => {
    const perTower = (...data: tf.Tensor[]) => {
      const s = withData(state, keys, data);
      let theta = teacher.theta0;
      for (const step of steps) theta = sgdStep(theta, stepGrads(theta, s, step, o), { img: s.lrImg as tf.Scalar, txt: s.lrTxt as tf.Scalar });
      const l = (t: Tower) =>
        tf.div(
          blockedSum(tf.square(tf.sub(flattenTower(theta[t]), teacher.target[t]))),
          blockedSum(tf.square(tf.sub(teacher.start[t], teacher.target[t]))),
        ) as tf.Scalar;
      return { img: l('img'), txt: l('txt') };
    };
    // the per-tower losses come out of the one forward pass (kept from its tidy), not from a second unroll
    let split: { img: tf.Scalar; txt: tf.Scalar } | undefined;
    const { value, grads } = tf.valueAndGrads((...data: tf.Tensor[]) => {
      const l = perTower(...data);
      split = { img: tf.keep(l.img), txt: tf.keep(l.txt) };
      return tf.add(l.img, l.txt) as tf.Scalar;
    })(keys.map((k) => state[k]!));
    value.dispose();
    return {
      grads: Object.fromEntries(keys.map((k, j) => [k, grads[j]!])) as Record<string, tf.Tensor>,
      lossImg: split!.img,
      lossTxt: split!.txt,
      dispose: [] as tf.Tensor[],
    };
  });
}

/** One iteration's losses and gradients. Tensors it creates are disposed, except the returned grads. */
export async function distillIteration(
  state: SyntheticState,
  teacher: Teacher,
  steps: readonly UnrollStep[],
  o: IterationOptions,
): Promise<IterationResult> {
  const r = o.mode === 'tesla' ? teslaIteration(state, teacher, steps, o) : fullIteration(state, teacher, steps, o);
  const [lossImg, lossTxt] = await scalars(r.lossImg, r.lossTxt);
  r.lossImg.dispose();
  r.lossTxt.dispose();
  for (const t of r.dispose) t.dispose();
  return { lossImg: lossImg!, lossTxt: lossTxt!, grads: r.grads };
}

