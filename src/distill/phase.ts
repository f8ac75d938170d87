/**
 * One PTM phase (SPEC §5) with persistence: the in-memory loop (phase-loop.ts) distils a synthetic subset
 * of `size` pairs from this phase's teacher trajectories and start range; around it, checkpoints every K iterations (state, momentum, EMA, RNG state, loss
 * history) with atomic writes; a restarted phase resumes from its checkpoint and continues the same
 * random stream, so an interrupted run ends bit-identical to an uninterrupted one on the same backend.
 * A NaN or infinite matching loss or state stops the phase with a NonFiniteError and leaves the last good
 * checkpoint. A checkpoint is verified (content digest) before it is used; one that fails is reported and
 * the phase starts afresh (same seed, so the same result).
 */
import { existsSync } from 'node:fs';
import { ready, tf } from '../backend';
import type { DistillConfig, PhaseConfig } from '../config/schemas';
import { ConfigError, CorruptFileError, NonFiniteError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import type { DualShape } from '../model/dual';
import { artefactKey } from '../store/key';
import { readSafetensors, writeSafetensors } from '../store/safetensors';
import type { Trajectory } from '../trajectory/store';
import type { ProgressSink } from '../util/progress';
import { rng } from '../util/random';
import type { RepassRunner } from './iteration';
import { type PhaseState, disposePhaseState, initPhaseState, runPhase } from './phase-loop';
import { type SyntheticState, disposeState } from './synthetic';
import { finiteArray } from '../model/finite';

export interface PhaseInput {
  readonly index: number;
  readonly phase: PhaseConfig;
  readonly config: DistillConfig;
  readonly train: FeatureSet;
  readonly trajectories: readonly Trajectory[];
  readonly shape: DualShape;
  readonly temperature: number;
  readonly dropout: number;
  /**
   * checkpoint file of this phase: written every `checkpointEvery` iterations, resumed from when present.
   * Without it the phase runs in memory only (a notebook cell), with the same results.
   */
  readonly checkpoint?: string;
  readonly onProgress?: ProgressSink;
  /** stop after this many iterations in total (tests of resume); the checkpoint is written first */
  readonly stopAfter?: number;
  /** hears warnings (a checkpoint that failed verification and was discarded) */
  readonly log?: (line: string) => void;
  /** a second thread for half of each iteration's re-pass (same numbers; see repass-helper.ts) */
  readonly helper?: RepassRunner;
}

export interface PhaseOutput {
  /** the EMA state (or the raw state when the EMA is off) */
  readonly state: SyntheticState;
  /** the real training pairs (caption indices) the set was initialised from */
  readonly initPairs: Int32Array;
  /** matching loss ℓ_img + ℓ_txt per iteration */
  readonly losses: Float32Array;
  readonly iterations: number;
  readonly completed: boolean;
}

async function toArrays(s: SyntheticState, prefix: string) {
  const out: Record<string, { shape: number[]; data: Float32Array }> = {};
  for (const [k, t] of Object.entries(s)) out[`${prefix}${k}`] = { shape: t.shape, data: (await t.data()) as Float32Array };
  return out;
}

const firstNonFinite = (arrays: Record<string, { data: Float32Array }>): string | undefined =>
  Object.entries(arrays).find(([, a]) => !finiteArray(a.data))?.[0];

/** A fingerprint of everything that determines the phase's random stream and results. */
function checkpointKey(input: PhaseInput): string {
  const { config, phase, index } = input;
  return artefactKey({ config: { ...config, checkpointEvery: undefined }, phase, index, shape: input.shape, dropout: input.dropout });
}

async function loadCheckpoint(input: PhaseInput & { checkpoint: string }, key: string): Promise<PhaseState | undefined> {
  if (!existsSync(input.checkpoint)) return undefined;
  let st: Awaited<ReturnType<typeof readSafetensors>>;
  try {
    st = await readSafetensors(input.checkpoint, { requireDigest: true });
    const pairs = st.tensors.get('initPairs');
    const losses = st.tensors.get('losses');
    if (pairs?.dtype !== 'I32' || losses?.dtype !== 'F32') throw new CorruptFileError(input.checkpoint, 'checkpoint lacks initPairs or losses');
    if (losses.shape[0] !== Number(st.metadata.iteration)) throw new CorruptFileError(input.checkpoint, 'loss history does not match the iteration');
    for (const k of ['state.x', 'state.y', 'ema.x', 'ema.y', 'velocity.x', 'velocity.y']) {
      if (st.tensors.get(k)?.shape[0] !== input.phase.size) throw new CorruptFileError(input.checkpoint, `${k} does not hold ${input.phase.size} pairs`);
    }
    const nonFinite = [...st.tensors].find(([, t]) => t.dtype === 'F32' && !finiteArray(t.data as Float32Array));
    if (nonFinite) throw new CorruptFileError(input.checkpoint, `${nonFinite[0]} holds NaN or infinite values`);
  } catch (e) {
    if (!(e instanceof CorruptFileError)) throw e;
    input.log?.(`[ptmst] warning: ${e.message}; phase ${input.index} restarts from iteration 0`);
    return undefined;
  }
  if (st.metadata.key !== key) return undefined; // a checkpoint of another configuration: start afresh
  const group = (prefix: string): SyntheticState =>
    Object.fromEntries(
      [...st.tensors.entries()]
        .filter(([k]) => k.startsWith(prefix))
        .map(([k, t]) => [k.slice(prefix.length), tf.tensor(t.data as Float32Array, [...t.shape])]),
    );
  const pairs = st.tensors.get('initPairs')!;
  const losses = st.tensors.get('losses')!;
  return {
    state: group('state.'),
    velocity: group('velocity.'),
    ema: group('ema.'),
    rand: rng(Number(st.metadata.rng)),
    initPairs: pairs.data as Int32Array,
    losses: [...(losses.data as Float32Array)],
  };
}

/** Check the state is finite and write the checkpoint (if the phase has one); a non-finite state is never written. */
async function saveCheckpoint(input: PhaseInput, key: string, r: PhaseState): Promise<void> {
  const arrays = { ...(await toArrays(r.state, 'state.')), ...(await toArrays(r.velocity, 'velocity.')), ...(await toArrays(r.ema, 'ema.')) };
  const bad = firstNonFinite(arrays);
  if (bad !== undefined) {
    throw new NonFiniteError(`phase ${input.index}, iteration ${r.losses.length}: ${bad} holds NaN or infinite values; stopped.`);
  }
  if (input.checkpoint === undefined) return;
  await writeSafetensors(
    input.checkpoint,
    {
      ...arrays,
      initPairs: { shape: [r.initPairs.length], data: r.initPairs },
      losses: { shape: [r.losses.length], data: Float32Array.from(r.losses) },
    },
    { key, rng: String(r.rand.state()), iteration: String(r.losses.length) },
  );
}

/**
 * Validate a phase against its teachers before any work (one clear error naming the field): `snapshots` is
 * the length of its trajectories (an expert's epochs + 1, or a shortcut slice's length).
 */
export function checkPhase(index: number, phase: PhaseConfig, config: DistillConfig, snapshots: number, trainPairs: number): void {
  if (phase.start[1] + config.expertStep > snapshots - 1) {
    throw new ConfigError(
      `phases[${index}].start: max start ${phase.start[1]} + expertStep ${config.expertStep} exceeds the last ` +
        `snapshot (${snapshots - 1}) of its trajectories`,
    );
  }
  if (phase.size > trainPairs) {
    throw new ConfigError(`phases[${index}].size: ${phase.size} exceeds the ${trainPairs} training pairs`);
  }
}

/** Run (or resume) one phase. */
export async function distillPhase(input: PhaseInput): Promise<PhaseOutput> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  checkPhase(input.index, input.phase, input.config, input.trajectories[0]!.snapshots, input.train.numCaptions);
  const { config, phase } = input;
  const key = checkpointKey(input);
  let r = input.checkpoint === undefined ? undefined : await loadCheckpoint({ ...input, checkpoint: input.checkpoint }, key);
  if (r === undefined) {
    r = initPhaseState(input.train, input.index, phase, config, input);
    await saveCheckpoint(input, key, r); // iteration 0: there is always a good checkpoint to fall back to
  }
  const label = `phase ${input.index} (${phase.size} pairs)`;
  const stop = Math.min(phase.iterations, input.stopAfter ?? Infinity);
  const state = r;
  let saved = state.losses.length; // the iteration of the last good checkpoint
  try {
    await runPhase(state, { ...input, stop }, async (_, loss) => {
      input.onProgress?.({ label, done: state.losses.length, total: phase.iterations, info: { loss } });
      if (state.losses.length % config.checkpointEvery === 0 || state.losses.length === stop) {
        await saveCheckpoint(input, key, state);
        saved = state.losses.length;
      }
    });
  } catch (e) {
    disposePhaseState(state);
    if (!(e instanceof NonFiniteError)) throw e;
    const kept = input.checkpoint ? `The last good checkpoint (iteration ${saved}) is kept at ${input.checkpoint}` : 'No checkpoint file (an in-memory run)';
    throw new NonFiniteError(`${e.message} ${kept}`);
  }
  const out = config.ema > 0 ? r.ema : r.state;
  disposeState(r.velocity);
  disposeState(config.ema > 0 ? r.state : r.ema);
  return {
    state: out,
    initPairs: r.initPairs,
    losses: Float32Array.from(r.losses),
    iterations: r.losses.length,
    completed: r.losses.length >= phase.iterations,
  };
}
