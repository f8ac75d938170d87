/**
 * The distillation stage (`ptmst distill`): plan (validate the config, make sure the expert buffer and
 * every phase's shortcut trajectories exist), distil each phase (phases are independent sub-problems,
 * so they run on worker threads side by side), then write their union, in order, as one synthetic set.
 * Each phase writes `phase-<k>.safetensors` when done and checkpoints while running, so a rerun skips
 * finished phases and resumes unfinished ones.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { tf } from '../backend';
import { parseConfig } from '../config/parse';
import { BufferConfig, DataConfig, DistillConfig, ModelConfig, type PhaseConfig } from '../config/schemas';
import { prepareFeatureSets } from '../pipeline/data';
import { sha256, writeJsonAtomic } from '../store/atomic';
import { CorruptFileError, decodeSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
import { buildBuffer } from '../trajectory/buffer';
import { convexifiedDir, convexifyBuffer } from '../trajectory/convexify';
import { bufferShape, readBuffer, readBufferManifest } from '../trajectory/store';
import type { ProgressSink } from '../util/progress';
import { runInWorkers } from '../util/workers';
import { distillPhase, similaritySpec } from './phase';
import { type SyntheticSet, writeSyntheticSet } from './synthetic-file';
import { disposeState, fullSimilarity } from './synthetic';

export const DistillStageConfig = z
  .object({
    /** run name; the output folder is runs/<name> unless `out` is given */
    name: z.string().regex(/^[\w.-]+$/, 'letters, digits, _ . - only').default('distill'),
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    distill: DistillConfig,
    out: z.string().optional(),
    /** worker threads for phases; default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
  })
  .strict();
export type DistillStageConfig = z.infer<typeof DistillStageConfig>;

export interface DistillResult {
  readonly dir: string;
  readonly file: string;
  readonly reused: boolean;
  readonly phases: readonly { readonly size: number; readonly iterations: number; readonly finalLoss: number; readonly source: string }[];
}

export const runDir = (c: DistillStageConfig) => c.out ?? join('runs', c.name);
const phaseFile = (dir: string, k: number) => join(dir, `phase-${k}.safetensors`);
const checkpointFile = (dir: string, k: number) => join(dir, `phase-${k}.checkpoint.safetensors`);

/** The buffer folder a phase's teachers come from (creating shortcut trajectories when needed). */
async function phaseSource(expertDir: string, phase: PhaseConfig): Promise<string> {
  if (phase.source === 'experts') return expertDir;
  const [s, e] = phase.source;
  const dir = convexifiedDir(expertDir, s, e);
  if (existsSync(join(dir, 'manifest.json'))) {
    const m = await readBufferManifest(dir);
    const src = await readBufferManifest(expertDir);
    if (m.source?.start === s && m.source.end === e && m.experts.length === src.experts.length) return dir;
  }
  return (await convexifyBuffer(expertDir, s, e, dir)).dir;
}

export interface PhaseJob {
  readonly index: number;
  readonly source: string;
}
export type PhaseMessage =
  | { readonly type: 'progress'; readonly index: number; readonly done: number; readonly total: number; readonly loss: number }
  | { readonly type: 'done'; readonly index: number };

/** Distil one phase and write its output file; the body of both the in-process path and the worker. */
export async function runPhaseJob(
  config: DistillStageConfig,
  dir: string,
  job: PhaseJob,
  post: (m: PhaseMessage) => void,
  stopAfter?: number,
): Promise<void> {
  const [train] = await prepareFeatureSets(config.data, ['train']);
  const { manifest, trajectories } = await readBuffer(job.source, config.buffer.numExperts);
  const phase = config.distill.phases[job.index]!;
  const out = await distillPhase({
    index: job.index,
    phase,
    config: config.distill,
    train: train!,
    trajectories,
    shape: bufferShape(manifest),
    temperature: config.model.temperature,
    dropout: config.distill.unrollDropout ?? config.model.dropout,
    checkpoint: checkpointFile(dir, job.index),
    onProgress: (e) => post({ type: 'progress', index: job.index, done: e.done, total: e.total, loss: Number(e.info?.loss) }),
    ...(stopAfter !== undefined ? { stopAfter } : {}),
  });
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
      { key: phaseKey(config, job.index), source: job.source },
    );
    s.dispose();
  } finally {
    disposeState(out.state);
  }
  post({ type: 'done', index: job.index });
}

/** What a finished phase file must match to be reused. */
function phaseKey(c: DistillStageConfig, k: number): string {
  return sha256(JSON.stringify({ data: c.data, model: c.model, buffer: { ...c.buffer, workers: 0 }, distill: { ...c.distill, checkpointEvery: 0, phases: undefined }, phase: c.distill.phases[k], k }));
}

async function phaseDone(c: DistillStageConfig, dir: string, k: number): Promise<boolean> {
  const f = phaseFile(dir, k);
  if (!existsSync(f)) return false;
  const st = decodeSafetensors(await readFile(f), f);
  return st.metadata.key === phaseKey(c, k);
}

/** Validate, build what is missing upstream, distil every unfinished phase, write the union. */
export async function distill(input: unknown, onProgress?: ProgressSink, opts: { stopAfter?: number } = {}): Promise<DistillResult> {
  const config = parseConfig(DistillStageConfig, input, 'distill config');
  const dir = runDir(config);
  await mkdir(dir, { recursive: true });
  const { dir: expertDir } = await buildBuffer({ data: config.data, model: config.model, buffer: config.buffer }, onProgress);
  const sources = [];
  for (const p of config.distill.phases) sources.push(await phaseSource(expertDir, p));
  const jobs: PhaseJob[] = [];
  for (let k = 0; k < sources.length; k++) if (!(await phaseDone(config, dir, k))) jobs.push({ index: k, source: sources[k]! });
  const onMessage = (m: PhaseMessage) => {
    if (m.type === 'progress') onProgress?.({ label: `phase ${m.index + 1}/${sources.length}`, done: m.done, total: m.total, info: { loss: m.loss } });
  };
  const workers = Math.max(1, Math.min(config.workers ?? Math.min(2, availableParallelism()), jobs.length));
  if (opts.stopAfter !== undefined || workers === 1) {
    for (const job of jobs) await runPhaseJob(config, dir, job, onMessage, opts.stopAfter);
    if (opts.stopAfter !== undefined) {
      const finished = await Promise.all(sources.map((_, k) => phaseDone(config, dir, k)));
      if (!finished.every(Boolean)) return { dir, file: '', reused: false, phases: [] };
    }
  } else {
    await runInWorkers(join(__dirname, 'distill-worker.js'), jobs, workers, onMessage, { config, dir });
  }
  // the union, in phase order
  const phases = [];
  const info = [];
  let dims = { img: 0, txt: 0 };
  for (let k = 0; k < sources.length; k++) {
    const f = phaseFile(dir, k);
    const st = decodeSafetensors(await readFile(f), f);
    const x = tensorOf(st, 'x', f);
    const y = tensorOf(st, 'y', f);
    const losses = tensorOf(st, 'losses', f).data as Float32Array;
    dims = { img: x.shape[1]!, txt: y.shape[1]! };
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
      source: sources[k]!,
      start: p.start,
      slice: p.source,
      lrImg: phases[k]!.lrImg,
      lrTxt: phases[k]!.lrTxt,
    });
  }
  if (phases.length === 0) throw new CorruptFileError(dir, 'no phase output');
  const set: SyntheticSet = { dImg: dims.img, dTxt: dims.txt, phases, provenance: { config, phases: info, expertBuffer: expertDir } };
  const file = join(dir, 'synthetic.safetensors');
  const digest = await writeSyntheticSet(file, set);
  await writeJsonAtomic(join(dir, 'synthetic.json'), { file: 'synthetic.safetensors', sha256: digest, phases: info, config });
  return { dir, file, reused: jobs.length === 0, phases: info };
}
