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
 * Given the unrolled θ_i the re-pass terms are independent of each other: they are summed in two halves (first half,
 * second half, then the two), so a helper thread can compute the second half (repass-helper.ts) with the same numbers.
 * Dropout masks are drawn once per step and reused by the re-pass (the reference redraws them, so its
 * re-pass differentiates a different network from the one it unrolled).
 */
import { tf } from '../backend';
import { type DualGrads, type DualParams, type DualShape, type Tower, TOWERS, disposeDual, dualGrads, flattenTower, sgdStep, unflattenTower } from '../model/dual';
import { PARAM_NAMES, type ParamName } from '../model/head';
import type { LossName } from '../model/losses';
import { gatherRows, hostRows } from '../model/linalg';
import { blockedSum } from '../model/reduce';
import { lrGradient, matchingLoss, stepCotangent } from './matching';
import { type SimilaritySpec, type SyntheticState, similarityBlock } from './synthetic';

export type GradientMode = 'tesla' | 'full';

/** State tensors a batch takes rows of (the similarity's tensors are the others). */
const ROW_KEYS = ['x', 'y'] as const;
type RowKey = (typeof ROW_KEYS)[number];
const isRowKey = (k: string): k is RowKey => (ROW_KEYS as readonly string[]).includes(k);

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

const arrayOf = (t: tf.Tensor) => t.dataSync() as Float32Array;

/**
 * The synthetic rows as host arrays (TESLA mode). tfjs-wasm's gather kernel costs ~50 ns per element (a batch of
 * x: 2 ms); a copy from the host costs a few µs. The re-pass differentiates with respect to the copied batch and
 * scatters its rows' gradients back itself (repassRange), so no gather is taken on the state's rows.
 */
interface HostRows {
  readonly x: Float32Array;
  readonly y: Float32Array;
}
const hostRowsOf = (state: SyntheticState): HostRows => ({ x: arrayOf(state.x!), y: arrayOf(state.y!) });

/** The batch's rows copied from the host (not differentiable in the state). */
function hostBatch(s: SyntheticState, step: UnrollStep, host: HostRows): Record<RowKey, tf.Tensor2D> {
  return { x: hostRows(host.x, s.x!.shape[1]!, step.batch), y: hostRows(host.y, s.y!.shape[1]!, step.batch) };
}

/** One step's parameter gradients; the batch's rows are `rows` when given, else gathered from the state (differentiable). */
function stepGrads(theta: DualParams, s: SyntheticState, step: UnrollStep, o: IterationOptions, rows?: Record<RowKey, tf.Tensor2D>) {
  const b = tf.tensor1d(step.batch, 'int32');
  const batch = rows ?? { x: gatherRows(s.x as tf.Tensor2D, b), y: gatherRows(s.y as tf.Tensor2D, b) };
  return dualGrads(theta, { ...batch, s: similarityBlock(s, o.similarity, b), maskImg: step.maskImg, maskTxt: step.maskTxt }, o.loss, o.temperature).grads;
}

async function scalars(...ts: tf.Tensor[]): Promise<number[]> {
  const out = await Promise.all(ts.map(async (t) => (await t.data())[0]!));
  return out;
}

/** Everything one range of re-pass terms needs; plain arrays, so a helper thread can compute it. */
export interface RepassJob {
  readonly keys: readonly string[];
  /** the data tensors named by `keys` */
  readonly data: readonly { readonly shape: number[]; readonly values: Float32Array }[];
  readonly shape: DualShape;
  /** θ_i of each step of the range, flattened per tower */
  readonly thetas: readonly Readonly<Record<Tower, Float32Array>>[];
  /** ∂ℓ/∂g (the same for every step), per tower */
  readonly cot: Readonly<Record<Tower, Float32Array>>;
  readonly steps: readonly {
    readonly batch: Int32Array;
    readonly maskImg: { readonly shape: number[]; readonly values: Float32Array } | null;
    readonly maskTxt: { readonly shape: number[]; readonly values: Float32Array } | null;
  }[];
  readonly options: IterationOptions;
}

/** Computes a range of re-pass terms elsewhere (a helper thread: repass-helper.ts); the sums come back in `keys` order. */
export interface RepassRunner {
  run(job: RepassJob): Promise<Float32Array[]>;
}

/** Every parameter of both towers, in one fixed order. */
const PARAMS = TOWERS.flatMap((t) => PARAM_NAMES.map((n) => [t, n] as const));

/**
 * The cotangent seed of the re-pass: an op of g whose gradient with respect to each g_p is the constant c_p, i.e. the
 * gradient of the inner product Σ_p ⟨c_p, g_p⟩ over every parameter of both towers. Only that gradient is used,
 * so the inner product's value is not computed: the op's value is 0, which no caller may read (it saves a
 * multiply and a sum over every parameter per step, ~5% of a TESLA iteration). The gradient handed back for g_p is
 * c_p itself when the upstream gradient is the seed 1 (it is: the re-pass differentiates this op; one scalar read
 * per step), so XNNPACK packs each c_p once for a whole range instead of a new product per step.
 */
function cotangentSeed(c: Readonly<Record<Tower, Readonly<Record<ParamName, tf.Tensor>>>>): (g: DualGrads) => tf.Scalar {
  const cs = PARAMS.map(([t, n]) => c[t][n]);
  const op = tf.customGrad(((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    (args[args.length - 1] as tf.GradSaveFunc)([]);
    return {
      value: tf.scalar(0),
      gradFunc: (dy: tf.Tensor) => {
        const seed = dy.dataSync()[0] === 1;
        return cs.map((ci) => (seed ? ci : tf.mul(dy, ci)));
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]) as unknown as (...gs: tf.Tensor[]) => tf.Scalar;
  return (g) => op(...PARAMS.map(([t, n]) => g[t][n]));
}

/**
 * Σ over `steps` of ∇_data ⟨c, g_i(θ_i; data)⟩ with θ_i fixed: the TESLA re-pass over a range of steps, summed in
 * step order from zero. Returns one tensor per key (caller disposes).
 */
export function repassRange(
  state: SyntheticState,
  keys: readonly string[],
  thetas: readonly DualParams[],
  cot: Readonly<Record<Tower, tf.Tensor1D>>,
  steps: readonly UnrollStep[],
  o: IterationOptions,
  host: HostRows = hostRowsOf(state),
): tf.Tensor[] {
  // ∂ℓ/∂g per parameter, split once: a flat product would split its cotangent again at every step (SplitV of the
  // whole tower), and XNNPACK packs the W1 cotangent of x·∂W1 once for all steps only if it is one tensor
  const shapeOf = (t: Tower) => ({ dIn: thetas[0]![t].W1.shape[0]!, dOut: thetas[0]![t].W1.shape[1]! });
  const cotParams = tf.tidy(() => ({ img: unflattenTower(cot.img, shapeOf('img')), txt: unflattenTower(cot.txt, shapeOf('txt')) }));
  const seed = cotangentSeed(cotParams);
  // x and y: gradients with respect to each step's copied batch, scattered into the state's rows once at the end (in
  // step order, as a running sum would add them); the similarity's tensors: through similarityBlock, summed per step
  const sKeys = keys.filter((k) => !isRowKey(k));
  const rowGrads: Record<RowKey, tf.Tensor[]> = { x: [], y: [] };
  let acc: tf.Tensor[] = sKeys.map((k) => tf.zerosLike(state[k]!));
  steps.forEach((step, i) => {
    const next = tf.tidy(() => {
      const rows = hostBatch(state, step, host);
      const f = (x: tf.Tensor, y: tf.Tensor, ...data: tf.Tensor[]) => {
        const g = stepGrads(thetas[i]!, withData(state, sKeys, data), step, o, { x: x as tf.Tensor2D, y: y as tf.Tensor2D });
        // ∇_data ⟨c, g⟩: the seed's gradient with respect to g is c
        return seed(g);
      };
      const [gx, gy, ...gs] = tf.grads(f)([rows.x, rows.y, ...sKeys.map((k) => state[k]!)]);
      return { gx: gx!, gy: gy!, acc: acc.map((a, j) => tf.add(a, gs[j]!)) };
    });
    for (const a of acc) a.dispose();
    acc = next.acc;
    rowGrads.x.push(next.gx);
    rowGrads.y.push(next.gy);
  });
  const scattered = tf.tidy(() => {
    const idx = tf.tensor2d(Int32Array.from(steps.flatMap((st) => Array.from(st.batch))), [steps.reduce((a, st) => a + st.batch.length, 0), 1], 'int32');
    const scatter = (k: RowKey) => (steps.length ? tf.scatterND(idx, tf.concat(rowGrads[k]), state[k]!.shape) : tf.zerosLike(state[k]!));
    return { x: scatter('x'), y: scatter('y') };
  });
  tf.dispose([...rowGrads.x, ...rowGrads.y]);
  const out = keys.map((k) => (isRowKey(k) ? scattered[k] : acc[sKeys.indexOf(k)]!));
  tf.dispose([cotParams.img, cotParams.txt].flatMap((p) => Object.values(p)));
  return out;
}

/** The re-pass's steps are split here: the first half, then the second, then their sum (with or without a helper). */
export const repassSplit = (steps: number) => Math.ceil(steps / 2);

// (tf.tidy must not return the array itself: it walks a returned container element by element, ~0.2 s here)
function flatArray(params: DualParams[Tower]): Float32Array {
  const flat = tf.tidy(() => flattenTower(params));
  const values = flat.dataSync() as Float32Array;
  flat.dispose();
  return values;
}
const maskOf = (m: tf.Tensor2D | null) => (m ? { shape: m.shape, values: arrayOf(m) } : null);

async function teslaIteration(state: SyntheticState, teacher: Teacher, steps: readonly UnrollStep[], o: IterationOptions, helper?: RepassRunner) {
  const lr = { img: state.lrImg as tf.Scalar, txt: state.lrTxt as tf.Scalar };
  // forward unroll: θ_{i+1} = θ_i − α g_i, G = Σ g_i
  const thetas: DualParams[] = [teacher.theta0];
  let G = tf.tidy(() => ({ img: tf.zerosLike(teacher.start.img), txt: tf.zerosLike(teacher.start.txt) }));
  const host = hostRowsOf(state);
  for (const step of steps) {
    const { next, G2 } = tf.tidy(() => {
      const g = stepGrads(thetas[thetas.length - 1]!, state, step, o, hostBatch(state, step, host));
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
  // re-pass: d/d(data) of ⟨∂ℓ/∂g_i, g_i⟩ with θ_i fixed, summed over steps and towers; two halves, summed
  // last, so the numbers are the same whether a helper thread computes the second half or this one does
  const keys = ['x', 'y', ...similarityKeys(o.similarity)];
  const cot = { img: m.img.cot, txt: m.txt.cot };
  const h = repassSplit(steps.length);
  const remote = helper?.run({
    keys,
    data: keys.map((k) => ({ shape: state[k]!.shape, values: isRowKey(k) ? host[k] : arrayOf(state[k]!) })),
    shape: { img: { dIn: state.x!.shape[1]!, dOut: teacher.theta0.img.b1.shape[0]! }, txt: { dIn: state.y!.shape[1]!, dOut: teacher.theta0.txt.b1.shape[0]! } },
    thetas: thetas.slice(h, steps.length).map((th) => ({ img: flatArray(th.img), txt: flatArray(th.txt) })),
    cot: { img: arrayOf(cot.img), txt: arrayOf(cot.txt) },
    steps: steps.slice(h).map((s) => ({ batch: s.batch, maskImg: maskOf(s.maskImg), maskTxt: maskOf(s.maskTxt) })),
    options: o,
  });
  remote?.catch(() => undefined); // awaited below; this only keeps a failure here first from leaving it unhandled
  let first: tf.Tensor[] = [];
  let grads: Record<string, tf.Tensor>;
  try {
    first = repassRange(state, keys, thetas.slice(0, h), cot, steps.slice(0, h), o, host);
    const second = remote ? (await remote).map((v, j) => tf.tensor(v, first[j]!.shape)) : repassRange(state, keys, thetas.slice(h, steps.length), cot, steps.slice(h), o, host);
    grads = Object.fromEntries(keys.map((k, j) => [k, tf.add(first[j]!, second[j]!)]));
    for (const t of second) t.dispose();
  } catch (e) {
    for (const t of [m.img.loss, m.img.cot, m.img.gLr, m.txt.loss, m.txt.cot, m.txt.gLr]) t.dispose();
    throw e;
  } finally {
    for (const t of first) t.dispose();
    for (const th of thetas.slice(1)) disposeDual(th);
    G.img.dispose();
    G.txt.dispose();
  }
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

/**
 * One iteration's losses and gradients. Tensors it creates are disposed, except the returned grads. With a
 * `helper` (TESLA mode), a second thread computes the second half of the re-pass while this one computes the
 * first; the numbers are the same either way.
 */
export async function distillIteration(
  state: SyntheticState,
  teacher: Teacher,
  steps: readonly UnrollStep[],
  o: IterationOptions,
  helper?: RepassRunner,
): Promise<IterationResult> {
  const r = o.mode === 'tesla' ? await teslaIteration(state, teacher, steps, o, helper) : fullIteration(state, teacher, steps, o);
  const [lossImg, lossTxt] = await scalars(r.lossImg, r.lossTxt);
  r.lossImg.dispose();
  r.lossTxt.dispose();
  for (const t of r.dispose) t.dispose();
  return { lossImg: lossImg!, lossTxt: lossTxt!, grads: r.grads };
}

