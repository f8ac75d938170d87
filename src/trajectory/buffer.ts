/**
 * The buffer stage (`ptmst buffer`): train E experts on the real training pairs and store their
 * trajectories. Experts are spread over worker threads; the manifest is rewritten (atomically) after
 * each finished expert, so an interrupted run resumes at the next unfinished expert.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { ready } from '../backend';
import { parseConfig } from '../config/parse';
import { BufferConfig, DataConfig, ModelConfig, Workspace, inWorkspace, resolveData } from '../config/schemas';
import { ConfigError, CorruptFileError, unusable } from '../errors';
import type { LossName } from '../model/losses';
import type { SplitSets } from '../features/feature-set';
import { loadFeatureSets } from '../features/load';
import { ensureDir } from '../store/atomic';
import { artefactKey } from '../store/key';
import { withLock } from '../store/lock';
import { MissingFileError, type TensorRecord, readSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
import type { ProgressSink } from '../util/progress';
import { deriveSeed, rng } from '../util/random';
import { runPool, threadCount } from '../util/pool';
import { type ExpertOptions, type ExpertProgress, trainExpert } from './expert';
import { type ForgettingState, ForgettingTracker, readExpertForgetting, writeForgetting } from './forgetting';
import {
  BUFFER_FORMAT,
  type BufferManifest,
  type ExpertEntry,
  expertFileName,
  readBufferManifest,
  readTrajectory,
  retrievalRows,
  retrievalTensor,
  writeBufferManifest,
  writeTrajectory,
} from './store';

export const BufferStageConfig = z
  .object({
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    /** output folder; default buffers/<dataset>-<imageEncoder>-<textEncoder>-d<dOut>-s<seed> */
    out: z.string().optional(),
    workspace: Workspace,
    /** retrain experts whose files fail verification (otherwise such a file is an error naming it) */
    force: z.boolean().default(false),
  })
  .strict();
export type BufferStageConfig = z.infer<typeof BufferStageConfig>;

/**
 * The buffer folder of a configuration (inside its workspace):
 * `buffers/<dataset>-<encoders>-d<dOut>-s<seed>[-e<epochs>][-f<train %>][-p<passes per epoch>]`. The epoch
 * count is named only when it is not the default 10, the others only when set, so folders made before either was named keep
 * their names (and every result keyed on them holds).
 */
export function defaultBufferDir(c: Pick<BufferStageConfig, 'data' | 'model' | 'buffer' | 'out' | 'workspace'>): string {
  const epochs = c.buffer.epochs === BufferConfig.shape.epochs.parse(undefined) ? '' : `-e${c.buffer.epochs}`;
  const fraction = c.data.trainFraction === undefined || c.data.trainFraction === 1 ? '' : `-f${+(c.data.trainFraction * 100).toFixed(2)}`;
  const passes = (c.buffer.passesPerEpoch ?? 1) === 1 ? '' : `-p${c.buffer.passesPerEpoch}`;
  return inWorkspace(
    c.workspace,
    c.out ?? join('buffers', `${c.data.dataset}-${c.data.imageEncoder}-${c.data.textEncoder}-d${c.model.dOut}-s${c.buffer.seed}${epochs}${fraction}${passes}`),
  );
}

export function expertOptions(c: BufferStageConfig, index?: number): ExpertOptions {
  return {
    ...(index !== undefined ? { label: `expert ${index}` } : {}),
    epochs: c.buffer.epochs,
    ...(c.buffer.passesPerEpoch === undefined ? {} : { passesPerEpoch: c.buffer.passesPerEpoch }),
    lrImg: c.buffer.lrImg,
    lrTxt: c.buffer.lrTxt,
    batchSize: c.buffer.batchSize,
    dropout: c.model.dropout,
    loss: c.buffer.loss as LossName,
    dOut: c.model.dOut,
    temperature: c.model.temperature,
  };
}

/** What a worker (or the main thread) does for one expert. */
export interface ExpertJob {
  readonly index: number;
  readonly seed: number;
}
export type ExpertMessage =
  | { readonly type: 'progress'; readonly index: number; readonly epoch: number; readonly step: number; readonly steps: number; readonly loss?: number }
  | { readonly type: 'warning'; readonly line: string }
  | { readonly type: 'done'; readonly entry: ExpertEntry };

const PROGRESS_FORMAT = 'ptmst.expert-progress/1';
const progressFile = (dir: string, index: number) => join(dir, expertFileName(index).replace('.safetensors', '.partial.safetensors'));

/** What an expert's trajectory depends on: a partial file made under another configuration is not resumed. */
const progressKey = (config: BufferStageConfig, job: ExpertJob, sets: SplitSets) =>
  artefactKey({ config: expertConfig(config), features: sets.train.digest, seed: job.seed, index: job.index });

async function saveProgress(file: string, key: string, p: ExpertProgress, forgetting?: ForgettingState): Promise<void> {
  const tensors: TensorRecord = {
    img: { shape: [p.epochs + 1, p.img.length / (p.epochs + 1)], data: p.img },
    txt: { shape: [p.epochs + 1, p.txt.length / (p.epochs + 1)], data: p.txt },
  };
  if (p.retrieval.length > 0) tensors.retrieval = retrievalTensor(p.retrieval);
  if (p.retrievalVal.length > 0) tensors.retrievalVal = retrievalTensor(p.retrievalVal);
  if (forgetting) {
    const n = forgetting.events.length;
    tensors.forgettingLast = { shape: [n], data: Int32Array.from(forgetting.last) };
    tensors.forgettingEvents = { shape: [n], data: forgetting.events.slice() };
    tensors.forgettingEver = { shape: [n], data: forgetting.everLearned.slice() };
  }
  await writeSafetensors(file, tensors, { format: PROGRESS_FORMAT, key, epochs: String(p.epochs), rng: String(p.rngState) });
}

/** The progress of an interrupted expert, or undefined (none, another configuration, or unreadable). */
async function loadProgress(
  file: string,
  key: string,
  warn: (line: string) => void,
): Promise<(ExpertProgress & { forgetting?: ForgettingState }) | undefined> {
  if (!existsSync(file)) return undefined;
  try {
    const st = await readSafetensors(file, { requireDigest: true });
    if (st.metadata.format !== PROGRESS_FORMAT || st.metadata.key !== key) return undefined;
    const epochs = Number(st.metadata.epochs);
    const img = tensorOf(st, 'img', file);
    const txt = tensorOf(st, 'txt', file);
    if (!(epochs >= 1) || img.shape[0] !== epochs + 1 || txt.shape[0] !== epochs + 1) throw new CorruptFileError(file, 'epoch count does not match the snapshots');
    return {
      epochs,
      img: img.data as Float32Array,
      txt: txt.data as Float32Array,
      retrieval: retrievalRows(st.tensors.get('retrieval'), file, 'retrieval'),
      retrievalVal: retrievalRows(st.tensors.get('retrievalVal'), file, 'retrievalVal'),
      rngState: Number(st.metadata.rng),
      ...(st.tensors.has('forgettingEvents')
        ? {
            forgetting: {
              last: Int8Array.from(tensorOf(st, 'forgettingLast', file).data),
              events: Int32Array.from(tensorOf(st, 'forgettingEvents', file).data),
              everLearned: Uint8Array.from(tensorOf(st, 'forgettingEver', file).data),
            },
          }
        : {}),
    };
  } catch (e) {
    if (!(e instanceof CorruptFileError)) throw e;
    warn(`[ptmst] warning: ${e.message}; the expert restarts from epoch 0`);
    return undefined;
  }
}

/**
 * Train and store one expert; the body of both the in-process path and the worker. After every epoch its
 * progress is saved (`expert-NNN.partial.safetensors`), so a killed run continues from the last finished
 * epoch, bit-identically.
 */
export async function runExpertJob(
  config: BufferStageConfig,
  dir: string,
  job: ExpertJob,
  post: (m: ExpertMessage) => void,
  sets: SplitSets,
): Promise<void> {
  const { train, val, test } = sets;
  const t0 = performance.now();
  const file = progressFile(dir, job.index);
  const key = progressKey(config, job, sets);
  let from = await loadProgress(file, key, (line) => post({ type: 'warning', line }));
  // counting forgetting events needs every epoch: a partial expert saved without the count restarts
  if (from && config.buffer.forgetting && !from.forgetting) from = undefined;
  const tracker = config.buffer.forgetting ? new ForgettingTracker(train.numCaptions, from?.forgetting) : undefined;
  if (from) post({ type: 'warning', line: `[ptmst] expert ${job.index} resumes after epoch ${from.epochs} (${file})` });
  const traj = await trainExpert(
    train,
    { val, test },
    expertOptions(config, job.index),
    rng(job.seed),
    (epoch, step, steps, loss) => post({ type: 'progress', index: job.index, epoch, step, steps, ...(loss !== undefined ? { loss } : {}) }),
    {
      ...(from ? { from } : {}),
      onEpoch: (p) => (p.epochs < config.buffer.epochs ? saveProgress(file, key, p, tracker?.state) : Promise.resolve()),
      ...(tracker ? { onBatch: (_epoch: number, pairs: Int32Array, learned: Uint8Array) => tracker.observeBatch(pairs, learned) } : {}),
    },
  );
  if (tracker) await writeForgetting(dir, job.index, tracker);
  const written = await writeTrajectory(dir, job.index, { ...traj, snapshots: config.buffer.epochs + 1 }, {
    dataset: config.data.dataset,
    expert: String(job.index),
    seed: String(job.seed),
  });
  await rm(file, { force: true });
  post({ type: 'done', entry: { ...written, seed: job.seed, wallSeconds: (performance.now() - t0) / 1000 } });
}

/** What determines each expert's trajectory (how many experts, and on how many threads, does not). */
const expertConfig = (config: BufferStageConfig) => ({
  model: config.model,
  buffer: { ...config.buffer, numExperts: undefined, workers: undefined, forgetting: undefined },
});

export interface BufferResult {
  readonly dir: string;
  readonly manifest: BufferManifest;
  /** experts trained by this call (the rest were already finished) */
  readonly trained: number;
}

/**
 * Validate, then train the experts that the buffer folder does not have yet. Finished experts are verified
 * (checksum and shape) first: a file that fails is an error naming it, or, with `force`, is retrained.
 * The folder is locked while this runs, so a second process waits and then finds the work done.
 */
export async function buildBuffer(input: unknown, onProgress?: ProgressSink, log: (line: string) => void = () => undefined): Promise<BufferResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const parsed = parseConfig(BufferStageConfig, input, 'buffer config');
  const dir = defaultBufferDir(parsed);
  const config = { ...parsed, data: resolveData(parsed.data, parsed.workspace), out: dir };
  await ensureDir(dir);
  return withLock(dir, 'buffer', () => buildBufferLocked(config, dir, onProgress, log), log);
}

async function buildBufferLocked(
  config: BufferStageConfig,
  dir: string,
  onProgress: ProgressSink | undefined,
  log: (line: string) => void,
): Promise<BufferResult> {
  const [train, val, test] = await loadFeatureSets(config.data, ['train', 'val', 'test']);
  const sets: SplitSets = { train: train!, val: val!, test: test! };
  const fresh: BufferManifest = {
    format: BUFFER_FORMAT,
    kind: 'experts',
    dataset: config.data.dataset,
    imageEncoder: config.data.imageEncoder,
    textEncoder: config.data.textEncoder,
    dims: { img: train!.dImg, txt: train!.dTxt, out: config.model.dOut },
    epochs: config.buffer.epochs,
    seed: config.buffer.seed,
    features: train!.digest,
    config: expertConfig(config),
    numExperts: config.buffer.numExperts,
    experts: [],
  };
  let manifest = fresh;
  if (existsSync(join(dir, 'manifest.json'))) {
    // with --force a manifest that fails its digest (none: an older ptmst; or edited) is only a list of candidates:
    // every expert it lists is verified below, the ones that fail or are missing are retrained, and it is rewritten
    let old: BufferManifest;
    try {
      old = await readBufferManifest(dir);
    } catch (e) {
      if (!config.force || !(e instanceof CorruptFileError)) throw e;
      old = await readBufferManifest(dir, { unverified: true });
      log(`[ptmst] ${e.message.split('; ')[0]}: verifying the experts it lists and rewriting it (--force)`);
    }
    // a manifest from before feature digests were recorded (no `features`) is compared without them
    const comparable = (m: BufferManifest) => artefactKey({ ...m, experts: [], numExperts: 0, features: old.features === undefined ? undefined : m.features });
    if (comparable(old) !== comparable(fresh)) {
      const why = artefactKey({ ...old, features: undefined, experts: [], numExperts: 0 }) === artefactKey({ ...fresh, features: undefined, experts: [], numExperts: 0 })
        ? 'experts trained on other features (the data or the encoders changed)'
        : 'a buffer made with a different configuration';
      throw new ConfigError(`${dir} holds ${why}; choose another --out or delete it`);
    }
    // keep every finished expert that passes verification: a config asking for fewer reads the first ones
    const kept: ExpertEntry[] = [];
    for (const e of old.experts) {
      try {
        await readTrajectory(dir, old, e);
      } catch (err) {
        if (!config.force || !(err instanceof CorruptFileError)) unusable(err, join(dir, e.file), 'rerun with --force to retrain this expert');
        log(`[ptmst] ${(err as Error).message}: retraining it (--force)`);
        continue;
      }
      // with forgetting on, an expert without a valid count is retrained (to the same bytes) to record it
      try {
        if (config.buffer.forgetting) await readExpertForgetting(dir, e.index, train!.numCaptions);
        kept.push(e);
      } catch (err) {
        if (!(err instanceof CorruptFileError || err instanceof MissingFileError)) throw err;
        log(`[ptmst] expert ${e.index} has no valid forgetting record (${(err as Error).message}): retraining it to record one`);
      }
    }
    manifest = { ...fresh, numExperts: Math.max(old.numExperts, fresh.numExperts), experts: kept };
  }
  await writeBufferManifest(dir, manifest);
  const done = new Set(manifest.experts.map((e) => e.index));
  const jobs: ExpertJob[] = [];
  for (let i = 0; i < config.buffer.numExperts; i++) {
    if (!done.has(i)) jobs.push({ index: i, seed: deriveSeed(config.buffer.seed, 'expert', i) });
  }
  const stepsDone = new Map<number, number>();
  const onMessage = async (m: ExpertMessage) => {
    if (m.type === 'warning') log(m.line);
    else if (m.type === 'progress') {
      stepsDone.set(m.index, m.epoch * m.steps + m.step);
      const total = jobs.length * config.buffer.epochs * m.steps;
      const doneSteps = [...stepsDone.values()].reduce((a, b) => a + b, 0);
      onProgress?.({
        label: `experts (${jobs.length} to train)`,
        done: doneSteps,
        total,
        info: { expert: m.index, epoch: m.epoch + 1, ...(m.loss !== undefined ? { loss: m.loss } : {}) },
      });
    } else {
      manifest = { ...manifest, experts: [...manifest.experts, m.entry] };
      await writeBufferManifest(dir, manifest);
    }
  };
  const workers = threadCount(config.buffer.workers, jobs.length);
  if (jobs.length > 0) {
    if (workers === 1) {
      for (const job of jobs) {
        const pending: Promise<void>[] = [];
        await runExpertJob(config, dir, job, (m) => pending.push(onMessage(m)), sets);
        await Promise.all(pending);
      }
    } else {
      // the feature sets travel to the workers (copied once), which never read or verify the data again
      await runPool(join(__dirname, 'buffer-worker.js'), jobs, workers, onMessage, { config, dir, sets });
    }
  }
  return { dir, manifest: await readBufferManifest(dir), trained: jobs.length };
}

