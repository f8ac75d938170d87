/**
 * The buffer stage (`ptmst buffer`): train E experts on the real training pairs and store their
 * trajectories. Experts are spread over worker threads; the manifest is rewritten (atomically) after
 * each finished expert, so an interrupted run resumes at the next unfinished expert.
 */
import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { parseConfig } from '../config/parse';
import { BufferConfig, DataConfig, ModelConfig } from '../config/schemas';
import type { LossName } from '../model/losses';
import { prepareFeatureSets } from '../pipeline/data';
import type { ProgressSink } from '../util/progress';
import { deriveSeed, rng } from '../util/random';
import { runInWorkers } from '../util/workers';
import { type ExpertOptions, trainExpert } from './expert';
import { BUFFER_FORMAT, type BufferManifest, type ExpertEntry, readBufferManifest, writeBufferManifest, writeTrajectory } from './store';

export const BufferStageConfig = z
  .object({
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    /** output folder; default buffers/<dataset>-<imageEncoder>-<textEncoder>-d<dOut>-s<seed> */
    out: z.string().optional(),
  })
  .strict();
export type BufferStageConfig = z.infer<typeof BufferStageConfig>;

export function defaultBufferDir(c: BufferStageConfig): string {
  return (
    c.out ??
    join('buffers', `${c.data.dataset}-${c.data.imageEncoder}-${c.data.textEncoder}-d${c.model.dOut}-s${c.buffer.seed}`)
  );
}

export function expertOptions(c: BufferStageConfig): ExpertOptions {
  return {
    epochs: c.buffer.epochs,
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
  | { readonly type: 'done'; readonly entry: ExpertEntry };

/** Train and store one expert; the body of both the in-process path and the worker. */
export async function runExpertJob(
  config: BufferStageConfig,
  dir: string,
  job: ExpertJob,
  post: (m: ExpertMessage) => void,
): Promise<void> {
  const [train, val, test] = await prepareFeatureSets(config.data, ['train', 'val', 'test']);
  const t0 = performance.now();
  const traj = await trainExpert(train!, { val: val!, test: test! }, expertOptions(config), rng(job.seed), (epoch, step, steps, loss) =>
    post({ type: 'progress', index: job.index, epoch, step, steps, ...(loss !== undefined ? { loss } : {}) }),
  );
  const written = await writeTrajectory(dir, job.index, { ...traj, snapshots: config.buffer.epochs + 1 }, {
    dataset: config.data.dataset,
    expert: String(job.index),
    seed: String(job.seed),
  });
  post({ type: 'done', entry: { ...written, seed: job.seed, wallSeconds: (performance.now() - t0) / 1000 } });
}

export interface BufferResult {
  readonly dir: string;
  readonly manifest: BufferManifest;
  /** experts trained by this call (the rest were already finished) */
  readonly trained: number;
}

/** Validate, then train the experts that the buffer folder does not have yet. */
export async function buildBuffer(input: unknown, onProgress?: ProgressSink): Promise<BufferResult> {
  const config = parseConfig(BufferStageConfig, input, 'buffer config');
  const dir = defaultBufferDir(config);
  const [train] = await prepareFeatureSets(config.data, ['train', 'val', 'test'], onProgress);
  const fresh: BufferManifest = {
    format: BUFFER_FORMAT,
    kind: 'experts',
    dataset: config.data.dataset,
    imageEncoder: config.data.imageEncoder,
    textEncoder: config.data.textEncoder,
    dims: { img: train!.dImg, txt: train!.dTxt, out: config.model.dOut },
    epochs: config.buffer.epochs,
    seed: config.buffer.seed,
    // what determines each expert's trajectory (how many experts, and on how many threads, does not)
    config: { model: config.model, buffer: { ...config.buffer, numExperts: undefined, workers: undefined } },
    numExperts: config.buffer.numExperts,
    experts: [],
  };
  let manifest = fresh;
  if (existsSync(join(dir, 'manifest.json'))) {
    const old = await readBufferManifest(dir);
    const same = JSON.stringify({ ...old, experts: [], numExperts: 0 }) === JSON.stringify({ ...fresh, numExperts: 0 });
    if (!same) {
      throw new Error(
        `${dir} holds a buffer made with a different configuration; choose another --out or delete it`,
      );
    }
    // keep every finished expert: a config asking for fewer reads the first ones (readBuffer's limit)
    manifest = { ...fresh, numExperts: Math.max(old.numExperts, fresh.numExperts), experts: old.experts };
  }
  await mkdir(dir, { recursive: true });
  await writeBufferManifest(dir, manifest);
  const done = new Set(manifest.experts.map((e) => e.index));
  const jobs: ExpertJob[] = [];
  for (let i = 0; i < config.buffer.numExperts; i++) {
    if (!done.has(i)) jobs.push({ index: i, seed: deriveSeed(config.buffer.seed, 'expert', i) });
  }
  const stepsDone = new Map<number, number>();
  const onMessage = async (m: ExpertMessage) => {
    if (m.type === 'progress') {
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
  const workers = Math.max(1, Math.min(config.buffer.workers ?? Math.min(2, availableParallelism()), jobs.length));
  if (jobs.length > 0) {
    if (workers === 1) {
      for (const job of jobs) {
        const pending: Promise<void>[] = [];
        await runExpertJob(config, dir, job, (m) => pending.push(onMessage(m)));
        await Promise.all(pending);
      }
    } else {
      await runInWorkers(join(__dirname, 'buffer-worker.js'), jobs, workers, onMessage, { config, dir });
    }
  }
  return { dir, manifest: await readBufferManifest(dir), trained: jobs.length };
}

