/**
 * The PTM phase loop (SPEC §5), in memory: from a phase state (synthetic state, momentum, EMA, random
 * stream, loss history), run distillation iterations — draw an expert, a start epoch and the unrolled
 * steps, match the teacher, take an SGD step with momentum, update the EMA. Persistence (checkpoints,
 * resume) lives around it in phase.ts; a notebook can call `runPhase` directly.
 */
import { tf } from '../backend';
import type { DistillConfig, PhaseConfig } from '../config/schemas';
import { NonFiniteError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { type DualShape, type Tower, TOWERS, disposeDual, unflattenTower } from '../model/dual';
import { dropoutMask } from '../model/head';
import type { LossName } from '../model/losses';
import type { Trajectory } from '../trajectory/store';
import { type Rng, deriveSeed, randInt, rng, sampleWithoutReplacement } from '../util/random';
import { type StartRange, type StartRanges, dynamicStartRanges } from './amd';
import { emaUpdate } from './ema';
import { type RepassRunner, type Teacher, type UnrollStep, distillIteration, similarityKeys } from './iteration';
import { sgdMomentumStep } from './optimizer';
import { type SimilaritySpec, type SyntheticState, cloneState, disposeState, initSynthetic } from './synthetic';

export function similaritySpec(c: DistillConfig): SimilaritySpec {
  return { kind: c.similarity, rank: c.rank, alpha: c.rankAlpha };
}

function stepSizes(c: DistillConfig): Record<string, number> {
  const lr: Record<string, number> = { x: c.lrX, y: c.lrY, lrImg: c.lrAlpha, lrTxt: c.lrAlpha };
  for (const k of similarityKeys(similaritySpec(c))) lr[k] = c.lrS;
  return lr;
}

/**
 * The teacher of one iteration: snapshot t of a trajectory (the student's start) and snapshot t + m (θ*).
 * With `tTxt` (AMD's asynchronous matching) the text tower starts at its own snapshot.
 */
export function teacherAt(traj: Trajectory, shape: DualShape, t: number, m: number, tTxt = t): Teacher {
  return tf.tidy(() => {
    const row = (tower: Tower, i: number) => {
      const p = traj[tower].length / traj.snapshots;
      return tf.tensor1d(traj[tower].subarray(i * p, (i + 1) * p));
    };
    const start = { img: row('img', t), txt: row('txt', tTxt) };
    return {
      start,
      target: { img: row('img', t + m), txt: row('txt', tTxt + m) },
      theta0: { img: unflattenTower(start.img, shape.img), txt: unflattenTower(start.txt, shape.txt) },
    };
  });
}

export function disposeTeacher(t: Teacher): void {
  disposeDual(t.theta0);
  for (const tw of TOWERS) {
    t.start[tw].dispose();
    t.target[tw].dispose();
  }
}

/** One iteration's draws: which expert, which start epoch, and each unrolled step's batch and dropout masks. */
export interface UnrollDraw {
  readonly expert: number;
  /** the start epoch (of the image tower, and of the text tower unless `startTxt` is drawn) */
  readonly start: number;
  /** AMD's asynchronous matching: the text tower's own start epoch */
  readonly startTxt?: number;
  readonly steps: UnrollStep[];
}

/**
 * Draw one iteration's expert, start epoch and unrolled steps from the phase's random stream. With AMD's
 * dynamic ranges (`ranges`), each tower draws from its own range, asynchronously.
 */
export function sampleUnroll(
  rand: Rng,
  input: Pick<LoopOptions, 'phase' | 'config' | 'trajectories' | 'shape' | 'dropout'>,
  ranges?: StartRanges,
): UnrollDraw {
  const { phase, config } = input;
  const batch = Math.min(config.batchSyn, phase.size);
  const expert = randInt(rand, input.trajectories.length);
  const draw = (r: StartRange) => r[0] + randInt(rand, r[1] - r[0] + 1);
  const start = draw(ranges?.img ?? phase.start);
  // drawn only when on, so the stream (and every result) without AMD is what it always was
  const startTxt = ranges ? draw(ranges.txt) : config.asyncStart ? draw(phase.start) : undefined;
  const steps: UnrollStep[] = Array.from({ length: config.synSteps }, () => ({
    batch: sampleWithoutReplacement(rand, phase.size, batch).slice(),
    maskImg: dropoutMask(batch, input.shape.img.dOut, input.dropout, rand),
    maskTxt: dropoutMask(batch, input.shape.txt.dOut, input.dropout, rand),
  }));
  return { expert, start, ...(startTxt === undefined ? {} : { startTxt }), steps };
}

/** Everything a phase carries from one iteration to the next (what a checkpoint stores). */
export interface PhaseState {
  state: SyntheticState;
  velocity: SyntheticState;
  ema: SyntheticState;
  rand: Rng;
  initPairs: Int32Array;
  losses: number[];
}

/**
 * A fresh phase: the synthetic set initialised from real pairs (or noise), zero momentum, EMA = state.
 * `teachers` (the phase's trajectories and their heads' shape) is what `init: 'spm'` clusters under: the last
 * snapshot of the first trajectory (src/distill/amd.ts).
 */
export function initPhaseState(
  train: FeatureSet,
  index: number,
  phase: PhaseConfig,
  config: DistillConfig,
  teachers?: { readonly trajectories: readonly Trajectory[]; readonly shape: DualShape },
): PhaseState {
  const rand = rng(deriveSeed(config.seed, 'phase', index));
  const expert = teachers?.trajectories[0] === undefined ? undefined : { trajectory: teachers.trajectories[0], shape: teachers.shape };
  const { state, pairs } = initSynthetic(
    train,
    { size: phase.size, init: config.init, similarity: similaritySpec(config), alphaInit: config.alphaInit, ...(expert ? { expert } : {}) },
    rand,
  );
  return {
    state,
    velocity: Object.fromEntries(Object.entries(state).map(([k, t]) => [k, tf.zerosLike(t)])),
    ema: cloneState(state),
    rand,
    initPairs: pairs,
    losses: [],
  };
}

export function disposePhaseState(s: PhaseState): void {
  disposeState(s.state);
  disposeState(s.velocity);
  disposeState(s.ema);
}

export interface LoopOptions {
  readonly index: number;
  readonly phase: PhaseConfig;
  readonly config: DistillConfig;
  readonly trajectories: readonly Trajectory[];
  readonly shape: DualShape;
  readonly temperature: number;
  readonly dropout: number;
  /** stop when the loss history is this long (default: the phase's iterations) */
  readonly stop?: number;
  /** a second thread for half of each iteration's re-pass (same numbers) */
  readonly helper?: RepassRunner;
}

/**
 * Run iterations until `s.losses` holds `o.stop` (default `phase.iterations`) entries, replacing the
 * tensors in `s` as it goes; `onIteration` runs after each one (progress, checkpoints). A NaN or infinite
 * matching loss throws a NonFiniteError; `s` stays valid (the caller disposes it).
 */
export async function runPhase(
  s: PhaseState,
  o: LoopOptions,
  onIteration?: (s: PhaseState, loss: number) => void | Promise<void>,
): Promise<void> {
  const { config, phase } = o;
  const spec = similaritySpec(config);
  const opt = { momentum: config.momentum, lr: stepSizes(config) };
  const stop = o.stop ?? phase.iterations;
  const ranges = config.dynamicStart ? dynamicStartRanges(o.trajectories, phase.start, config.expertStep, config.dynamicMeasure ?? 'mmd-gaussian') : undefined;
  while (s.losses.length < stop) {
    const it = s.losses.length;
    const { expert, start, startTxt, steps } = sampleUnroll(s.rand, o, ranges);
    const teacher = teacherAt(o.trajectories[expert]!, o.shape, start, config.expertStep, startTxt);
    const res = await distillIteration(s.state, teacher, steps, {
      loss: config.loss as LossName,
      temperature: o.temperature,
      similarity: spec,
      mode: config.gradient,
    }, o.helper);
    disposeTeacher(teacher);
    for (const step of steps) {
      step.maskImg?.dispose();
      step.maskTxt?.dispose();
    }
    const loss = res.lossImg + res.lossTxt;
    if (!Number.isFinite(loss)) {
      for (const g of Object.values(res.grads)) g.dispose();
      // the iteration's teacher, by file: one whose numbers verify (finite) can still overflow the student
      const traj = o.trajectories[expert]!;
      const snapshots = startTxt === undefined || startTxt === start ? `snapshots ${start} → ${start + config.expertStep}`
        : `snapshots ${start} → ${start + config.expertStep}, text tower ${startTxt} → ${startTxt + config.expertStep}`;
      throw new NonFiniteError(`phase ${o.index}, iteration ${it + 1}, teacher ${traj.file ?? `expert ${expert}`} (${snapshots}): matching loss is ${loss}; stopped.`);
    }
    const next = sgdMomentumStep(s.state, s.velocity, res.grads, opt);
    for (const g of Object.values(res.grads)) g.dispose();
    disposeState(s.state);
    disposeState(s.velocity);
    s.state = next.state;
    s.velocity = next.velocity;
    if (config.ema > 0) {
      const e = emaUpdate(s.ema, s.state, config.ema);
      disposeState(s.ema);
      s.ema = e;
    }
    s.losses.push(loss);
    await onIteration?.(s, loss);
  }
}
