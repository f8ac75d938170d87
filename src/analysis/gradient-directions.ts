/**
 * Gradient directions along the teachers' trajectories (the paper's analysis 2): does the synthetic data
 * receive a consistent update direction from every start epoch, or do early and late windows of an expert
 * trajectory pull it different ways — and does the shortcut trajectory (SPEC §4) make them agree?
 *
 * For each start epoch t, the TESLA data gradient of one distillation iteration (SPEC §5.2–5.4: unroll from
 * θ_t, match θ_{t+M}, ∂ℓ/∂data through every step's g_i with θ_i held fixed) is taken with everything
 * else frozen: one synthetic state, one set of unrolled mini-batches and dropout masks, drawn once from a
 * seed and reused for every t and every expert. Only the teacher window changes. The gradient is averaged
 * over experts, flattened over the chosen state tensors (default: X, Y and the similarity S's tensors —
 * `sFull`, or `sDiag`, `sL`, `sR`; never the learning rates, whose gradient is not a data gradient), and
 * compared across start epochs by cosine similarity. This is done once on the experts' own trajectories
 * and once on their shortcut trajectories over the same slice [s, e), made in memory exactly as a PTM
 * phase makes them (`convexifyTrajectory`). Start t means snapshot s + t of the expert and snapshot t of
 * the shortcut (both begin at θ_s).
 *
 * Nothing here re-implements the distiller: the state and draws come from `initPhaseState` and
 * `sampleUnroll` (the phase's first iteration at that seed), teachers from `teacherAt`, gradients from
 * `distillIteration` in mode `tesla`. Sums, dot products and norms are float64 on the JS side (the
 * gradients are long vectors; a float32 reduction would blur cosines near ±1).
 */
import type { z } from 'zod';
import { ready, tf } from '../backend';
import { DistillConfig, ModelConfig } from '../config/schemas';
import { type UnrollStep, distillIteration, similarityKeys } from '../distill/iteration';
import { disposePhaseState, disposeTeacher, initPhaseState, sampleUnroll, similaritySpec, teacherAt } from '../distill/phase-loop';
import { type SyntheticState, disposeState } from '../distill/synthetic';
import { ConfigError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import type { DualShape } from '../model/dual';
import type { LossName } from '../model/losses';
import { convexifyTrajectory } from '../trajectory/convexify';
import { type Trajectory, bufferShape, manifestPath, readBuffer } from '../trajectory/store';

/** The distiller's settings that matter here (synSteps, batchSyn, loss, similarity, expertStep, init, alphaInit, …); phases are not used. */
export type DirectionSettings = Omit<z.input<typeof DistillConfig>, 'phases'>;

export interface GradientDirectionsInput {
  /** the experts' trajectories (e.g. `readBuffer(dir).trajectories`) */
  readonly trajectories: readonly Trajectory[];
  /** the training features the synthetic set is initialised from */
  readonly train: FeatureSet;
  readonly shape: DualShape;
  /** the experts' temperature */
  readonly temperature: number;
  /** dropout inside the unroll (the masks are drawn once) */
  readonly dropout: number;
  /** synthetic pairs N (default: the rows of `state`) */
  readonly size?: number;
  /** seeds the synthetic state and the fixed draws (default 0; overrides `distill.seed`) */
  readonly seed?: number;
  readonly distill?: DirectionSettings;
  /** the shortcut's slice [s, e) (default: the whole trajectory) */
  readonly slice?: readonly [number, number];
  /** start epochs, relative to s (default 0 … e − s − 1 − expertStep) */
  readonly starts?: readonly number[];
  /** a fixed synthetic state to use instead of the phase's initial one (e.g. a distilled set); not disposed */
  readonly state?: SyntheticState;
  /** state tensors whose gradients are compared (default: x, y and the similarity's tensors) */
  readonly keys?: readonly string[];
}

export interface DirectionStats {
  /** per start epoch: the float64 mean over experts of the flattened gradient */
  readonly gradients: readonly Float64Array[];
  /** E × E, cosine[i][j] between starts[i] and starts[j] (NaN where a gradient is zero) */
  readonly cosine: readonly (readonly number[])[];
  /** ‖mean gradient‖₂ per start */
  readonly norm: readonly number[];
  /** cosine between starts[i] and starts[i + 1] (length E − 1) */
  readonly consecutive: readonly number[];
  /** the mean of the off-diagonal cosines (NaN for one start) */
  readonly meanOffDiagonal: number;
  /** the matching loss ℓ_img + ℓ_txt per start, averaged over experts */
  readonly loss: readonly number[];
}

export interface GradientDirections {
  readonly starts: readonly number[];
  readonly slice: readonly [number, number];
  /** the flattened tensors, in order, and their lengths */
  readonly keys: readonly string[];
  readonly sizes: readonly number[];
  readonly original: DirectionStats;
  readonly shortcut: DirectionStats;
}

/** Cosines, norms and their summaries of per-start vectors (float64 throughout). */
export function directionStats(gradients: readonly Float64Array[], loss: readonly number[] = []): DirectionStats {
  const n = gradients.length;
  const dot = (a: Float64Array, b: Float64Array) => {
    let s = 0;
    for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
    return s;
  };
  const norm = gradients.map((g) => Math.sqrt(dot(g, g)));
  const cosine = Array.from({ length: n }, () => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = i; j < n; j++) {
      const d = norm[i]! * norm[j]!;
      cosine[i]![j] = cosine[j]![i] = d === 0 ? NaN : dot(gradients[i]!, gradients[j]!) / d;
    }
  }
  let off = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += cosine[i]![j]!;
  return {
    gradients,
    cosine,
    norm,
    consecutive: Array.from({ length: Math.max(0, n - 1) }, (_, i) => cosine[i]![i + 1]!),
    meanOffDiagonal: n > 1 ? off / (n * (n - 1)) : NaN,
    loss,
  };
}

/** The fixed ingredients of every gradient: the parsed settings, the state, the unrolled steps, the keys. */
export interface DirectionSetup {
  readonly config: DistillConfig;
  readonly state: SyntheticState;
  readonly steps: readonly UnrollStep[];
  readonly keys: readonly string[];
  /** disposes the masks and the state (unless it was given) */
  dispose(): void;
}

/**
 * The synthetic state and unrolled draws of a phase's first iteration at `seed` (`initPhaseState`, then
 * `sampleUnroll` on the phase's random stream); with `input.state`, that state instead (the draws stay).
 */
export function directionSetup(input: Omit<GradientDirectionsInput, 'slice' | 'starts'>): DirectionSetup {
  const size = input.size ?? input.state?.x?.shape[0];
  if (size === undefined) throw new ConfigError('gradientDirections: give size (synthetic pairs) or a state');
  if (input.state !== undefined && input.state.x?.shape[0] !== size) {
    throw new ConfigError(`gradientDirections: size ${size} differs from the given state's ${input.state.x?.shape[0]} rows`);
  }
  const config = DistillConfig.parse({
    ...input.distill,
    seed: input.seed ?? 0,
    gradient: 'tesla',
    phases: [{ start: [0, 0], size, iterations: 1 }],
  });
  const keys = input.keys ?? ['x', 'y', ...similarityKeys(similaritySpec(config))];
  const known = ['x', 'y', 'lrImg', 'lrTxt', ...similarityKeys(similaritySpec(config))];
  const unknown = keys.filter((k) => !known.includes(k));
  if (unknown.length > 0 || keys.length === 0) throw new ConfigError(`gradientDirections: keys [${unknown.join(', ')}] are not among the state's [${known.join(', ')}]`);
  const phase = config.phases[0]!;
  const ps = initPhaseState(input.train, 0, phase, config, input);
  const draw = sampleUnroll(ps.rand, { phase, config, trajectories: input.trajectories, shape: input.shape, dropout: input.dropout });
  let state = ps.state;
  if (input.state !== undefined) {
    disposePhaseState(ps);
    state = input.state;
  } else {
    disposeState(ps.velocity);
    disposeState(ps.ema);
  }
  return {
    config,
    state,
    steps: draw.steps,
    keys,
    dispose() {
      for (const s of draw.steps) (s.maskImg?.dispose(), s.maskTxt?.dispose());
      if (input.state === undefined) disposeState(state);
    },
  };
}

/** The expert-averaged TESLA data gradient (float64, flattened over `keys`) of the window offset + t → offset + t + M. */
async function meanGradient(
  trajectories: readonly Trajectory[],
  offset: number,
  t: number,
  setup: DirectionSetup,
  input: Pick<GradientDirectionsInput, 'shape' | 'temperature'>,
): Promise<{ gradient: Float64Array; loss: number }> {
  const c = setup.config;
  const options = { loss: c.loss as LossName, temperature: input.temperature, similarity: similaritySpec(c), mode: 'tesla' as const };
  const dim = setup.keys.reduce((a, k) => a + setup.state[k]!.size, 0);
  const acc = new Float64Array(dim);
  let loss = 0;
  for (const traj of trajectories) {
    const teacher = teacherAt(traj, input.shape, offset + t, c.expertStep);
    let res: Awaited<ReturnType<typeof distillIteration>>;
    try {
      res = await distillIteration(setup.state, teacher, setup.steps, options);
    } finally {
      disposeTeacher(teacher);
    }
    try {
      let off = 0;
      for (const k of setup.keys) {
        const d = await res.grads[k]!.data();
        for (let i = 0; i < d.length; i++) acc[off + i] += d[i]!;
        off += d.length;
      }
    } finally {
      tf.dispose(Object.values(res.grads));
    }
    loss += res.lossImg + res.lossTxt;
  }
  for (let i = 0; i < dim; i++) acc[i] /= trajectories.length;
  return { gradient: acc, loss: loss / trajectories.length };
}

/**
 * Per start epoch, the expert-averaged TESLA data gradient on the original trajectories and on their
 * shortcut trajectories over `slice`, with one fixed state and one fixed set of draws; their pairwise
 * cosines, norms, consecutive cosines and mean off-diagonal cosine.
 */
export async function gradientDirections(input: GradientDirectionsInput): Promise<GradientDirections> {
  await ready();
  const trajs = input.trajectories;
  if (trajs.length === 0) throw new ConfigError('gradientDirections: no trajectories');
  const snapshots = trajs[0]!.snapshots;
  if (trajs.some((t) => t.snapshots !== snapshots)) throw new ConfigError('gradientDirections: the trajectories differ in length');
  const [s, e] = input.slice ?? [0, snapshots];
  if (!(Number.isInteger(s) && Number.isInteger(e) && s >= 0 && e <= snapshots && e - s >= 2)) {
    throw new ConfigError(`gradientDirections: slice [${s}, ${e}) must hold at least 2 of the ${snapshots} snapshots`);
  }
  const setup = directionSetup(input);
  try {
    const last = e - s - 1 - setup.config.expertStep; // the last start whose target is inside the slice
    const starts = input.starts ?? Array.from({ length: Math.max(0, last + 1) }, (_, t) => t);
    const bad = starts.filter((t) => !Number.isInteger(t) || t < 0 || t > last);
    if (starts.length === 0 || bad.length > 0) {
      throw new ConfigError(`gradientDirections: starts must lie in [0, ${last}] (slice [${s}, ${e}), expertStep ${setup.config.expertStep}); got [${bad.join(', ')}]`);
    }
    const shortcut = trajs.map((t) => convexifyTrajectory(t, s, e));
    const stats = async (ts: readonly Trajectory[], offset: number) => {
      const per = [];
      for (const t of starts) per.push(await meanGradient(ts, offset, t, setup, input));
      return directionStats(per.map((p) => p.gradient), per.map((p) => p.loss));
    };
    return {
      starts,
      slice: [s, e],
      keys: setup.keys,
      sizes: setup.keys.map((k) => setup.state[k]!.size),
      original: await stats(trajs, s),
      shortcut: await stats(shortcut, 0),
    };
  } finally {
    setup.dispose();
  }
}

/**
 * `gradientDirections` on an expert buffer folder: its first `numExperts` experts (default all), its heads'
 * shape and temperature, and the unroll dropout the distiller would use (`distill.unrollDropout`, else the
 * experts'). `train` must be the features the experts were trained on.
 */
export async function gradientDirectionsFromBuffer(
  input: Omit<GradientDirectionsInput, 'trajectories' | 'shape' | 'temperature' | 'dropout'> & {
    readonly buffer: string;
    readonly numExperts?: number;
    readonly dropout?: number;
  },
): Promise<GradientDirections> {
  const { manifest, trajectories } = await readBuffer(input.buffer, input.numExperts);
  if (manifest.kind !== 'experts') throw new ConfigError(`${manifestPath(input.buffer)} is a shortcut-trajectory buffer; give the expert buffer (the shortcuts are made here)`);
  if (manifest.features !== undefined && manifest.features !== input.train.digest) {
    throw new ConfigError(`gradientDirections: ${input.buffer}'s experts were trained on other features than the given train set`);
  }
  const model = ModelConfig.parse((manifest.config as { model?: unknown }).model ?? {});
  return gradientDirections({
    ...input,
    trajectories,
    shape: bufferShape(manifest),
    temperature: model.temperature,
    dropout: input.dropout ?? input.distill?.unrollDropout ?? model.dropout,
  });
}
