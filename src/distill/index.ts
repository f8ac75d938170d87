/**
 * The distillation stage (`ptmst distill`): plan (validate the config, make sure the expert buffer and
 * every phase's shortcut trajectories exist), distil each phase (phases are independent sub-problems,
 * so they run on worker threads side by side), then write their union, in order, as one synthetic set.
 * Each phase writes `phase-<k>.safetensors` when done and checkpoints while running, so a rerun skips
 * finished phases and resumes unfinished ones.
 */
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ready, tf } from '../backend';
import { parseConfig } from '../config/parse';
import { BufferConfig, DataConfig, DistillConfig, ModelConfig, type PhaseConfig, SafeName } from '../config/schemas';
import { prepareFeatureSets } from '../features/load';
import { CorruptFileError, unusable } from '../errors';
import { ensureDir, sha256, writeJsonAtomic } from '../store/atomic';
import { withLock } from '../store/lock';
import { type SafetensorsFile, readSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
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
    name: SafeName.default('distill'),
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    distill: DistillConfig,
    out: z.string().optional(),
    /** worker threads for phases; default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
    /** redo phases whose output file fails verification (otherwise such a file is an error naming it) */
    force: z.boolean().default(false),
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
  | { readonly type: 'warning'; readonly line: string }
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
    log: (line) => post({ type: 'warning', line }),
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
  return sha256(JSON.stringify({ data: { ...c.data, dataRoot: undefined }, model: c.model, buffer: { ...c.buffer, workers: 0 }, distill: { ...c.distill, checkpointEvery: 0, phases: undefined }, phase: c.distill.phases[k], k }));
}

const PHASE_TENSORS = ['x', 'y', 's', 'lrImg', 'lrTxt', 'losses', 'initPairs'] as const;

/** A finished phase's file, verified (digest, tensors, shapes, finite values); an error names the file. */
async function readPhaseFile(c: DistillStageConfig, f: string, k: number): Promise<SafetensorsFile> {
  const st = await readSafetensors(f, { requireDigest: true });
  const n = c.distill.phases[k]!.size;
  for (const name of PHASE_TENSORS) tensorOf(st, name, f);
  const shape = (name: string) => JSON.stringify(st.tensors.get(name)!.shape);
  if (shape('x').startsWith(`[${n},`) === false || shape('y').startsWith(`[${n},`) === false || shape('s') !== `[${n},${n}]`) {
    throw new CorruptFileError(f, `x ${shape('x')}, y ${shape('y')}, s ${shape('s')} do not hold the phase's ${n} pairs`);
  }
  for (const name of ['x', 'y', 's', 'lrImg', 'lrTxt'] as const) {
    if (!(st.tensors.get(name)!.data as Float32Array).every(Number.isFinite)) throw new CorruptFileError(f, `${name} holds NaN or infinite values`);
  }
  return st;
}

/** Whether phase k is finished: its file exists, verifies, and was made by this configuration. */
async function phaseDone(c: DistillStageConfig, dir: string, k: number): Promise<boolean> {
  const f = phaseFile(dir, k);
  if (!existsSync(f)) return false;
  try {
    const st = await readPhaseFile(c, f, k);
    return st.metadata.key === phaseKey(c, k);
  } catch (e) {
    if (c.force && e instanceof CorruptFileError) return false;
    unusable(e, f, 'rerun with --force to distil this phase again');
  }
}

/**
 * Validate, build what is missing upstream, distil every unfinished phase, write the union. The run folder
 * is locked while this runs, so a second process on the same run waits and then finds the work done.
 */
export async function distill(
  input: unknown,
  onProgress?: ProgressSink,
  opts: { stopAfter?: number; log?: (line: string) => void } = {},
): Promise<DistillResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const config = parseConfig(DistillStageConfig, input, 'distill config');
  const dir = runDir(config);
  await ensureDir(dir);
  return withLock(dir, 'distill', () => distillLocked(config, dir, onProgress, opts), opts.log);
}

async function distillLocked(
  config: DistillStageConfig,
  dir: string,
  onProgress: ProgressSink | undefined,
  opts: { stopAfter?: number; log?: (line: string) => void },
): Promise<DistillResult> {
  const log = opts.log ?? (() => undefined);
  const { dir: expertDir } = await buildBuffer({ data: config.data, model: config.model, buffer: config.buffer }, onProgress, log);
  const sources = [];
  for (const p of config.distill.phases) sources.push(await phaseSource(expertDir, p));
  const jobs: PhaseJob[] = [];
  for (let k = 0; k < sources.length; k++) if (!(await phaseDone(config, dir, k))) jobs.push({ index: k, source: sources[k]! });
  const onMessage = (m: PhaseMessage) => {
    if (m.type === 'warning') log(m.line);
    else if (m.type === 'progress') onProgress?.({ label: `phase ${m.index + 1}/${sources.length}`, done: m.done, total: m.total, info: { loss: m.loss } });
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
    const st = await readPhaseFile(config, f, k);
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
  // provenance holds what determines the set, not how it was run (threads, --force), so reruns are byte-identical
  const recorded = { ...config, workers: undefined, force: undefined };
  const set: SyntheticSet = { dImg: dims.img, dTxt: dims.txt, phases, provenance: { config: recorded, phases: info, expertBuffer: expertDir } };
  const file = join(dir, 'synthetic.safetensors');
  const digest = await writeSyntheticSet(file, set);
  await writeJsonAtomic(join(dir, 'synthetic.json'), { file: 'synthetic.safetensors', sha256: digest, phases: info, config: recorded });
  return { dir, file, reused: jobs.length === 0, phases: info };
}
