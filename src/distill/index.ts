/**
 * The distillation stage (`ptmst distill`): given the training features and an expert buffer (a folder
 * `ptmst buffer` made; this stage never trains experts), distil each phase — its teachers are the experts'
 * trajectories or their shortcut trajectories over the phase's slice, made in memory — then write the
 * phases' union, in order, as one synthetic set. Phases are independent sub-problems, so they run on worker
 * threads side by side. Each phase writes `phase-<k>.safetensors` when done and checkpoints while running,
 * so a rerun skips finished phases and resumes unfinished ones.
 *
 * With `distill.objective: 'distribution'` each phase is distilled by distribution matching instead
 * (distribution.ts): with random heads no expert buffer is read (the heads' size comes from `model`), and the
 * phase files, the union and the set's file are the same.
 */
import { existsSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { z } from 'zod';
import { ready, tf } from '../backend';
import { parseConfig } from '../config/parse';
import { type AdaptivePhases, DataConfig, type DistillConfig, DistillSpec, ModelConfig, SafeName, Workspace, inWorkspace, resolveData } from '../config/schemas';
import { ConfigError, CorruptFileError, unusable } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { loadFeatureSets } from '../features/load';
import { ensureDir, writeJsonAtomic } from '../store/atomic';
import { artefactKey } from '../store/key';
import { withLock } from '../store/lock';
import { type SafetensorsFile, readSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
import { convexifyTrajectory } from '../trajectory/convexify';
import { type BufferManifest, bufferShape, manifestPath, readBuffer, readBufferManifest } from '../trajectory/store';
import { type AdaptiveChoice, adaptivePhases } from './adaptive-phases';
import type { ProgressSink } from '../util/progress';
import { runPool, threadCount } from '../util/pool';
import { helperPerJob, withRepassHelper } from './repass-helper';
import { checkPhase, distillPhase } from './phase';
import { checkDistribution, distillDistributionPhase, distributionOf, readsExperts } from './distribution';
import { dualShape } from '../model/dual';
import { similaritySpec } from './phase-loop';
import { type SyntheticSet, writeSyntheticSet } from './synthetic-file';
import { disposeState, fullSimilarity } from './synthetic';
import { finiteArray } from '../model/finite';

export const DistillStageConfig = z
  .object({
    /** run name; the output folder is runs/<name> unless `out` is given */
    name: SafeName.default('distill'),
    /** the training features (the dataset and encoders the experts were trained on) */
    data: DataConfig.default(DataConfig.parse({})),
    /**
     * the expert buffer folder (made by `ptmst buffer`); the heads' size and temperature come from it. Not needed
     * by distribution matching with random heads (`distill.objective: 'distribution'`), which takes `model`.
     */
    expertBuffer: z.string().min(1).optional(),
    /** the heads' size when no expert buffer gives it (distribution matching with random heads) */
    model: ModelConfig.optional(),
    /** use the first N finished experts of the buffer (default: all) */
    numExperts: z.number().int().positive().optional(),
    /** phases set by hand, or an adaptive schedule (src/distill/adaptive-phases.ts) resolved here from the buffer */
    distill: DistillSpec,
    out: z.string().optional(),
    workspace: Workspace,
    /** worker threads for phases; default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
    /** redo phases whose output file fails verification (otherwise such a file is an error naming it) */
    force: z.boolean().default(false),
  })
  .strict();
export type DistillStageConfig = z.infer<typeof DistillStageConfig>;
/** The stage's config once its phases are set (an adaptive schedule resolved from the buffer). */
export type PhasedStageConfig = Omit<DistillStageConfig, 'distill'> & { readonly distill: DistillConfig };

export interface DistillResult {
  readonly dir: string;
  readonly file: string;
  /** sha256 of the synthetic set's file */
  readonly sha256: string;
  readonly reused: boolean;
  /** seconds spent distilling the phases not found finished (features loading and the set's writing excluded) */
  readonly distillSeconds: number;
  readonly phases: readonly {
    readonly size: number;
    readonly iterations: number;
    readonly finalLoss: number;
    readonly source: string;
    /** the matching loss ℓ_img + ℓ_txt per iteration */
    readonly losses: readonly number[];
  }[];
  /** an adaptive schedule's choice (absent for phases set by hand) */
  readonly adaptive?: AdaptiveChoice;
}

/** An adaptive schedule as the stage resolved it: its settings and the rule's choice. */
interface Resolved {
  readonly schedule: AdaptivePhases;
  readonly choice: AdaptiveChoice;
}

export const runDir = (c: Pick<DistillStageConfig, 'out' | 'name' | 'workspace'>) => inWorkspace(c.workspace, c.out ?? join('runs', c.name));
const phaseFile = (dir: string, k: number) => join(dir, `phase-${k}.safetensors`);
const checkpointFile = (dir: string, k: number) => join(dir, `phase-${k}.checkpoint.safetensors`);

/** The expert buffer as provenance shows it: relative to the workspace, so the record does not depend on where it ran. */
const shownBuffer = (c: Pick<DistillStageConfig, 'workspace' | 'expertBuffer'>) => (c.expertBuffer === undefined ? undefined : relative(resolve(c.workspace), resolve(c.expertBuffer)) || '.');

/** What phase k's teachers are, in words (for provenance). */
function sourceLabel(c: PhasedStageConfig, source: DistillConfig['phases'][number]['source']): string {
  const expertDir = shownBuffer(c);
  if (c.distill.objective === 'distribution') {
    const o = distributionOf(c.distill);
    return o.heads === 'random' ? 'distribution matching, random heads' : `distribution matching, trained heads of ${expertDir}`;
  }
  return source === 'experts' ? expertDir! : `${expertDir}, shortcut trajectories over [${source[0]}, ${source[1]})`;
}

/** The heads' shape without an expert buffer: the features' sizes and the model section's dOut. */
const headShape = (c: PhasedStageConfig, train: FeatureSet) => dualShape(train.dImg, train.dTxt, (c.model ?? ModelConfig.parse({})).dOut);

export interface PhaseJob {
  readonly index: number;
  /** what the phase file must match to be reused */
  readonly key: string;
  /** whether a helper thread computes half of each iteration's re-pass (a core would idle otherwise; only if ops run on one thread) */
  readonly helper: boolean;
}
export type PhaseMessage =
  | { readonly type: 'progress'; readonly index: number; readonly done: number; readonly total: number; readonly loss: number }
  | { readonly type: 'warning'; readonly line: string }
  | { readonly type: 'done'; readonly index: number };

/** The experts' model section (temperature, dropout) as recorded in the buffer manifest. */
const expertModel = (m: BufferManifest): ModelConfig => ModelConfig.parse((m.config as { model?: unknown }).model ?? {});

/**
 * Distil one phase and write its output file; the body of both the in-process path and the worker.
 * `config` is resolved (absolute buffer folder, data cache resolved against the workspace).
 */
export async function runPhaseJob(
  config: PhasedStageConfig,
  dir: string,
  job: PhaseJob,
  post: (m: PhaseMessage) => void,
  train: FeatureSet,
  stopAfter?: number,
): Promise<void> {
  const phase = config.distill.phases[job.index]!;
  const out = config.distill.objective === 'distribution' ? await distributionPhaseJob(config, job, post, train) : await trajectoryPhaseJob(config, dir, job, post, train, stopAfter);
  try {
    if (!out.completed) return;
    const s = fullSimilarity(out.state, similaritySpec(config.distill));
    const arrays = async (t: tf.Tensor) => (await t.data()) as Float32Array;
    await writeSafetensors(
      phaseFile(dir, job.index),
      {
        x: { shape: out.state.x!.shape, data: await arrays(out.state.x!) },
        y: { shape: out.state.y!.shape, data: await arrays(out.state.y!) },
        s: { shape: s.shape, data: await arrays(s) },
        lrImg: { shape: [1], data: await arrays(out.state.lrImg!) },
        lrTxt: { shape: [1], data: await arrays(out.state.lrTxt!) },
        losses: { shape: [out.losses.length], data: out.losses },
        initPairs: { shape: [out.initPairs.length], data: out.initPairs },
      },
      { key: job.key, source: sourceLabel(config, phase.source) },
    );
    s.dispose();
  } finally {
    disposeState(out.state);
  }
  post({ type: 'done', index: job.index });
}

/** A distribution-matching phase (distribution.ts): random heads need no buffer, trained heads read it. */
async function distributionPhaseJob(config: PhasedStageConfig, job: PhaseJob, post: (m: PhaseMessage) => void, train: FeatureSet) {
  const phase = config.distill.phases[job.index]!;
  const buffer = config.expertBuffer === undefined ? undefined : await readBuffer(config.expertBuffer, config.numExperts);
  return distillDistributionPhase({
    index: job.index,
    phase,
    config: config.distill,
    train,
    shape: buffer ? bufferShape(buffer.manifest) : headShape(config, train),
    ...(buffer ? { trajectories: buffer.trajectories } : {}),
    onProgress: (e) => post({ type: 'progress', index: job.index, done: e.done, total: e.total, loss: Number(e.info?.loss) }),
  });
}

/** A trajectory-matching phase (phase.ts) on the buffer's experts or their shortcut trajectories. */
async function trajectoryPhaseJob(config: PhasedStageConfig, dir: string, job: PhaseJob, post: (m: PhaseMessage) => void, train: FeatureSet, stopAfter: number | undefined) {
  const { manifest, trajectories } = await readBuffer(config.expertBuffer!, config.numExperts);
  const phase = config.distill.phases[job.index]!;
  const source = phase.source;
  const teachers = source === 'experts' ? trajectories : trajectories.map((t) => convexifyTrajectory(t, source[0], source[1]));
  const model = expertModel(manifest);
  // a helper only beside single-threaded XNNPACK ops: a multi-threaded op already spreads over the cores it would
  // take, and beside OpenBLAS the helper made a TESLA iteration slower (bench, d 256: 0.24 s alone, 0.43 s with it)
  const backend = await ready(() => undefined);
  const wanted = job.helper && config.distill.gradient === 'tesla' && backend.threads === 1 && backend.blas === null;
  const out = await withRepassHelper(wanted, (helper) =>
    distillPhase({
      index: job.index,
      phase,
      config: config.distill,
      train,
      trajectories: teachers,
      shape: bufferShape(manifest),
      temperature: model.temperature,
      dropout: config.distill.unrollDropout ?? model.dropout,
      checkpoint: checkpointFile(dir, job.index),
      onProgress: (e) => post({ type: 'progress', index: job.index, done: e.done, total: e.total, loss: Number(e.info?.loss) }),
      log: (line) => post({ type: 'warning', line }),
      ...(stopAfter !== undefined ? { stopAfter } : {}),
      ...(helper ? { helper } : {}),
    }),
  );
  return out;
}

/** What a finished phase file depends on: the features, the very experts used (by checksum), the phase. */
function phaseFileKey(c: PhasedStageConfig, experts: BufferManifest | undefined, train: FeatureSet, k: number): string {
  const used = experts?.experts.filter((e) => e.index < (c.numExperts ?? Infinity)).map((e) => e.sha256);
  return artefactKey({
    data: { ...c.data, dataRoot: undefined, cacheDir: undefined },
    features: train.digest,
    experts: experts && { config: experts.config, dims: experts.dims, epochs: experts.epochs, files: used },
    // without a buffer (distribution matching, random heads) the heads' shape comes from the model section
    heads: experts ? undefined : headShape(c, train),
    // dynamic ranges without a measure were L2 before the MMD existed and are MMD now: the measure is keyed
    // whenever ranges are dynamic, so no phase distilled under the old meaning is taken for one of the new
    distill: { ...c.distill, checkpointEvery: undefined, phases: undefined, ...(c.distill.dynamicStart ? { dynamicMeasure: c.distill.dynamicMeasure ?? 'mmd-gaussian' } : {}) },
    phase: c.distill.phases[k],
    k,
  });
}

const PHASE_TENSORS = ['x', 'y', 's', 'lrImg', 'lrTxt', 'losses', 'initPairs'] as const;

/** A finished phase's file, verified (digest, tensors, shapes, finite values); an error names the file. */
async function readPhaseFile(c: PhasedStageConfig, f: string, k: number): Promise<SafetensorsFile> {
  return checkPhaseFile(c, await readSafetensors(f, { requireDigest: true }), f, k);
}

/** A verified phase file holds the phase's pairs, all finite. */
function checkPhaseFile(c: PhasedStageConfig, st: SafetensorsFile, f: string, k: number): SafetensorsFile {
  const n = c.distill.phases[k]!.size;
  const [x, y, s] = PHASE_TENSORS.map((name) => tensorOf(st, name, f));
  if (x!.shape[0] !== n || y!.shape[0] !== n || s!.shape[0] !== n || s!.shape[1] !== n) {
    throw new CorruptFileError(f, `x [${x!.shape}], y [${y!.shape}], s [${s!.shape}] do not hold the phase's ${n} pairs`);
  }
  for (const name of ['x', 'y', 's', 'lrImg', 'lrTxt'] as const) {
    if (!finiteArray(st.tensors.get(name)!.data as Float32Array)) throw new CorruptFileError(f, `${name} holds NaN or infinite values`);
  }
  return st;
}

/**
 * Phase k's file if the phase is finished: it exists, verifies, and was made by this configuration (a file
 * another configuration made is redone, whatever its shapes).
 */
async function finishedPhase(c: PhasedStageConfig, dir: string, k: number, key: string): Promise<SafetensorsFile | undefined> {
  const f = phaseFile(dir, k);
  if (!existsSync(f)) return undefined;
  try {
    const st = await readSafetensors(f, { requireDigest: true });
    return st.metadata.key === key ? checkPhaseFile(c, st, f, k) : undefined;
  } catch (e) {
    if (c.force && e instanceof CorruptFileError) return undefined;
    unusable(e, f, 'rerun with --force to distil this phase again');
  }
}

/**
 * Validate, check the expert buffer, distil every unfinished phase, write the union. The run folder is
 * locked while this runs, so a second process on the same run waits and then finds the work done.
 */
export async function distill(
  input: unknown,
  onProgress?: ProgressSink,
  opts: { stopAfter?: number; log?: (line: string) => void } = {},
): Promise<DistillResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const parsed = parseConfig(DistillStageConfig, input, 'distill config');
  const dir = runDir(parsed);
  // resolved once, here: workers get absolute folders and never resolve anything again
  if (parsed.expertBuffer === undefined && readsExperts(parsed.distill)) {
    throw new ConfigError(
      parsed.distill.objective === 'distribution'
        ? 'expertBuffer: distribution matching with trained heads (distill.distribution.heads) reads an expert buffer; give one'
        : 'expertBuffer: trajectory matching needs an expert buffer (made by `ptmst buffer`); only distribution matching with random heads needs none',
    );
  }
  const expertBuffer = parsed.expertBuffer === undefined ? {} : { expertBuffer: inWorkspace(parsed.workspace, parsed.expertBuffer) };
  const config = { ...parsed, data: resolveData(parsed.data, parsed.workspace), ...expertBuffer, out: dir };
  await ensureDir(dir);
  return withLock(dir, 'distill', () => distillLocked(config, dir, onProgress, opts), opts.log);
}

async function distillLocked(
  given: DistillStageConfig,
  dir: string,
  onProgress: ProgressSink | undefined,
  opts: { stopAfter?: number; log?: (line: string) => void },
): Promise<DistillResult> {
  const experts = given.expertBuffer === undefined ? undefined : await checkedExperts(given);
  const [train] = await loadFeatureSets(given.data, ['train']);
  if (experts?.features !== undefined && experts.features !== train!.digest) {
    throw new CorruptFileError(manifestPath(given.expertBuffer!), 'experts were trained on other training features than these (another data.trainFraction, or re-extracted features)');
  }
  // an adaptive schedule becomes phases here, from the very experts the phases will match
  const schedule = given.distill.phases;
  let adaptive: Resolved | undefined;
  let phaseList: DistillConfig['phases'];
  if (Array.isArray(schedule)) phaseList = schedule;
  else {
    if (given.expertBuffer === undefined) throw new ConfigError('expertBuffer: adaptive phases are chosen from an expert buffer; give one');
    const { trajectories } = await readBuffer(given.expertBuffer, given.numExperts);
    const choice = adaptivePhases(trajectories, schedule, given.distill.expertStep);
    adaptive = { schedule, choice };
    phaseList = choice.phases;
    opts.log?.(choice.text);
  }
  const config: PhasedStageConfig = { ...given, distill: { ...given.distill, phases: phaseList } };
  // every phase is checked here, before any work starts anywhere
  if (config.distill.objective === 'distribution') checkDistribution(config.distill, train!.numCaptions, experts && experts.epochs + 1);
  else {
    config.distill.phases.forEach((p, k) => {
      const snapshots = experts!.epochs + 1;
      if (p.source !== 'experts' && !(p.source[1] <= snapshots && p.source[1] - p.source[0] >= 2)) {
        throw new ConfigError(`phases[${k}].source: the slice [${p.source[0]}, ${p.source[1]}) must hold at least 2 of the ${snapshots} snapshots of the experts`);
      }
      checkPhase(k, p, config.distill, p.source === 'experts' ? snapshots : p.source[1] - p.source[0], train!.numCaptions);
    });
  }
  return distillPhases(config, dir, experts, train!, onProgress, opts, adaptive);
}

/** The expert buffer's manifest, checked against the config (kind, dataset, encoders). */
async function checkedExperts(config: Pick<DistillStageConfig, 'expertBuffer' | 'data'>): Promise<BufferManifest> {
  const experts = await readBufferManifest(config.expertBuffer!);
  if (experts.kind !== 'experts') throw new CorruptFileError(manifestPath(config.expertBuffer!), 'is a shortcut-trajectory buffer; give the expert buffer (phases make their own shortcuts)');
  if (experts.dataset !== config.data.dataset || experts.imageEncoder !== config.data.imageEncoder || experts.textEncoder !== config.data.textEncoder) {
    throw new CorruptFileError(
      manifestPath(config.expertBuffer!),
      `experts were trained on ${experts.dataset} (${experts.imageEncoder} + ${experts.textEncoder}), the config asks for ` +
        `${config.data.dataset} (${config.data.imageEncoder} + ${config.data.textEncoder})`,
    );
  }
  return experts;
}

/** Distil every unfinished phase (in workers or here), then write the union. */
async function distillPhases(
  config: PhasedStageConfig,
  dir: string,
  experts: BufferManifest | undefined,
  train: FeatureSet,
  onProgress: ProgressSink | undefined,
  opts: { stopAfter?: number; log?: (line: string) => void },
  adaptive: Resolved | undefined,
): Promise<DistillResult> {
  const log = opts.log ?? (() => undefined);
  const count = config.distill.phases.length;
  const keys = config.distill.phases.map((_, k) => phaseFileKey(config, experts, train, k));
  const files = await Promise.all(keys.map((key, k) => finishedPhase(config, dir, k, key)));
  const pending = keys.flatMap((key, k) => (files[k] ? [] : [{ index: k, key }]));
  const workers = threadCount(config.workers, pending.length);
  const helper = helperPerJob(pending.length, workers);
  const jobs: PhaseJob[] = pending.map((j) => ({ ...j, helper }));
  const onMessage = (m: PhaseMessage) => {
    if (m.type === 'warning') log(m.line);
    else if (m.type === 'progress') onProgress?.({ label: `phase ${m.index} (${m.index + 1} of ${count})`, done: m.done, total: m.total, info: { loss: m.loss } });
  };
  const tWork = performance.now();
  if (opts.stopAfter !== undefined || workers === 1) {
    for (const job of jobs) await runPhaseJob(config, dir, job, onMessage, train, opts.stopAfter);
    if (opts.stopAfter !== undefined) {
      const finished = await Promise.all(keys.map((key, k) => finishedPhase(config, dir, k, key)));
      if (!finished.every(Boolean)) return { dir, file: '', sha256: '', reused: false, distillSeconds: (performance.now() - tWork) / 1000, phases: [] };
    }
  } else {
    await runPool(join(__dirname, 'distill-worker.js'), jobs, workers, onMessage, { config, dir, train });
  }
  const distillSeconds = (performance.now() - tWork) / 1000;
  // the union, in phase order
  const phases = [];
  const info = [];
  let dims = { img: 0, txt: 0 };
  const lossCurves: number[][] = [];
  for (let k = 0; k < count; k++) {
    const f = phaseFile(dir, k);
    const st = files[k] ?? (await readPhaseFile(config, f, k)); // phases distilled now are read once, here
    const x = tensorOf(st, 'x', f);
    const y = tensorOf(st, 'y', f);
    const losses = tensorOf(st, 'losses', f).data as Float32Array;
    dims = { img: x.shape[1]!, txt: y.shape[1]! };
    lossCurves.push(Array.from(losses));
    phases.push({
      n: x.shape[0]!,
      x: x.data as Float32Array,
      y: y.data as Float32Array,
      s: tensorOf(st, 's', f).data as Float32Array,
      lrImg: tensorOf(st, 'lrImg', f).data[0]!,
      lrTxt: tensorOf(st, 'lrTxt', f).data[0]!,
    });
    const p = config.distill.phases[k]!;
    info.push({
      size: p.size,
      iterations: losses.length,
      finalLoss: losses[losses.length - 1] ?? NaN,
      source: sourceLabel(config, p.source),
      start: p.start,
      slice: p.source,
      lrImg: phases[k]!.lrImg,
      lrTxt: phases[k]!.lrTxt,
    });
  }
  if (phases.length === 0) throw new CorruptFileError(dir, 'no phase output');
  // provenance holds what determines the set, not how or where it was run (threads, --force, folders),
  // so reruns are byte-identical
  const recorded = { ...config, data: { ...config.data, dataRoot: undefined, cacheDir: undefined }, workers: undefined, force: undefined, workspace: undefined, out: undefined };
  // an adaptive schedule: the rule's settings and its choice beside the phases it resolved to (hand-set phases: as before)
  const chosen = adaptive ? { adaptive: { schedule: adaptive.schedule, ...adaptive.choice } } : {};
  const set: SyntheticSet = { dImg: dims.img, dTxt: dims.txt, phases, provenance: { config: { ...recorded, expertBuffer: shownBuffer(config) }, phases: info, ...chosen } };
  const file = join(dir, 'synthetic.safetensors');
  const digest = await writeSyntheticSet(file, set);
  await writeJsonAtomic(join(dir, 'synthetic.json'), { file: 'synthetic.safetensors', sha256: digest, phases: info, config: recorded, ...chosen });
  // the loss curves are returned, not recorded (the set's provenance, and so its digest, stay as they were)
  return { dir, file, sha256: digest, reused: jobs.length === 0, distillSeconds, phases: info.map((p, k) => ({ ...p, losses: lossCurves[k]! })), ...(adaptive ? { adaptive: adaptive.choice } : {}) };
}
