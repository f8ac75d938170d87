/**
 * The evaluation stage (`ptmst eval`): score a training set by the retrieval of students trained on it,
 * over `runs` independent students, under the three labelled selection rules.
 *   - `synthetic`: a distilled set (its subsets in order, each with its S and learned rates);
 *   - `coreset`: N real pairs — chosen by a rule of the coreset registry (`random`: a fresh draw per run;
 *     `herding`, `kcenter`, `kmeans`, …) or given caption indices;
 *   - `full`: the full-data teacher, read from the expert buffer (each expert is one run; no extra work).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ready, tf } from '../backend';
import { parseConfig } from '../config/parse';
import { CORESET_NAMES, coresetRule, selectCoreset } from '../coreset';
import { coresetContext } from '../coreset/context';
import { DataConfig, DistillConfig, EvalConfig, ModelConfig, Workspace, inWorkspace, resolveData } from '../config/schemas';
import { readSyntheticSet } from '../distill/synthetic-file';
import { ConfigError, CorruptFileError, unusable } from '../errors';
import type { FeatureSet, SplitSets } from '../features/feature-set';
import { type DualShape, disposeDual, dualShape, unflattenTower } from '../model/dual';
import { type Retrieval, evaluateRetrieval } from '../model/retrieval';
import { LOSS_NAMES, type LossName } from '../model/losses';
import { loadFeatureSets } from '../features/load';
import { ensureDir, sha256, writeJsonAtomic } from '../store/atomic';
import { artefactKey } from '../store/key';
import { readJsonFile } from '../store/json';
import { withLock } from '../store/lock';
import { type Trajectory, readBuffer } from '../trajectory/store';
import type { ProgressSink } from '../util/progress';
import { deriveSeed, rng } from '../util/random';
import { runPool, threadCount } from '../util/pool';
import { type Checkpoint, type KdTeacher, type TrainingSubset, loadKdTeacher, trainStudent } from './student';
import { type MetricSummary, type Selection, summariseRuns } from './summary';

export const MethodSpec = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('synthetic'), file: z.string() }).strict(),
  z
    .object({
      kind: z.literal('coreset'),
      /**
       * a coreset rule (`random`: a fresh seeded draw of `size` pairs per run; `herding`, `kcenter`, `kmeans`, …:
       * see src/coreset), or `indices`: the given caption indices
       */
      selection: z.enum(['indices', ...CORESET_NAMES]).default('random'),
      size: z.number().int().positive().optional(),
      indices: z.array(z.number().int().nonnegative()).optional(),
      /** the expert buffer a rule reads its teacher (`loss-hard`, `loss-easy`) or forgetting events (`forgetting`) from */
      buffer: z.string().min(1).optional(),
      /** experts whose forgetting events are summed (default: all) */
      numExperts: z.number().int().positive().optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('full'),
      /** the expert buffer folder: each expert is one run, read from its retrieval records (no training) */
      buffer: z.string().min(1),
      /** the first N finished experts (default: all) */
      numExperts: z.number().int().positive().optional(),
    })
    .strict(),
]);
export type MethodSpec = z.infer<typeof MethodSpec>;

export const EvalStageConfig = z
  .object({
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    eval: EvalConfig.default(EvalConfig.parse({})),
    method: MethodSpec,
    /** loss students on real pairs train with (experts use InfoNCE) */
    realLoss: z.enum(LOSS_NAMES as [string, ...string[]]).default('infonce'),
    /** worker threads (runs side by side); default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
    /**
     * folder for per-run records (`run-NNN.json`): a finished student is stored there, and a rerun after a
     * crash trains only the missing ones. No records when absent.
     */
    out: z.string().optional(),
    workspace: Workspace,
    /** recompute records that fail verification (otherwise such a record is an error naming it) */
    force: z.boolean().default(false),
  })
  .strict();
export type EvalStageConfig = z.infer<typeof EvalStageConfig>;

const RUN_FORMAT = 'ptmst.eval-run/1';
/** a retrieval score is a percentage: a stored one outside [0, 100] was damaged or edited */
const Score = z.number().min(0).max(100);
const RetrievalRecord = z.object({ ir1: Score, ir5: Score, ir10: Score, tr1: Score, tr5: Score, tr10: Score, rMean: Score }).strict();
const RunRecord = z
  .object({
    format: z.literal(RUN_FORMAT),
    /** what the run depends on (method, data, model, protocol, seed); another key is another evaluation */
    key: z.string(),
    run: z.number().int().nonnegative(),
    checkpoints: z.array(
      z.object({ subset: z.number().int().nonnegative(), epoch: z.number().int().nonnegative(), val: RetrievalRecord, test: RetrievalRecord }).strict(),
    ).min(1),
    /** sha256 of JSON.stringify(checkpoints) */
    sha256: z.string(),
  })
  .strict();

const runFile = (dir: string, run: number) => join(dir, `run-${String(run).padStart(3, '0')}.json`);

export interface EvalResult {
  readonly method: MethodSpec;
  readonly runs: number;
  /** mean ± std of every metric under each selection rule */
  readonly selections: Readonly<Record<Selection, MetricSummary>>;
  /** per run, every checkpoint (for figures and for re-selection) */
  readonly checkpoints: readonly (readonly Checkpoint[])[];
  /** training pairs the method used */
  readonly pairs: number;
}

function realSubset(train: FeatureSet, captions: Int32Array, lr: number, loss: LossName): TrainingSubset {
  const n = captions.length;
  const x = new Float32Array(n * train.dImg);
  const y = new Float32Array(n * train.dTxt);
  captions.forEach((c, i) => {
    const img = train.captionToImage[c]!;
    x.set(train.img.subarray(img * train.dImg, (img + 1) * train.dImg), i * train.dImg);
    y.set(train.txt.subarray(c * train.dTxt, (c + 1) * train.dTxt), i * train.dTxt);
  });
  return { n, x, y, lrImg: lr, lrTxt: lr, loss };
}

/** A multi-phase set's subsets as `EvalConfig.subsets` asks: in sequence, as one union, or one of them alone. */
export function arrangeSubsets(subsets: readonly TrainingSubset[], how: 'sequence' | 'union' | 'first' | 'last'): TrainingSubset[] {
  if (how === 'sequence' || subsets.length === 1) return [...subsets];
  if (how === 'first') return [subsets[0]!];
  if (how === 'last') return [subsets[subsets.length - 1]!];
  const n = subsets.reduce((a, s) => a + s.n, 0);
  const cat = (pick: (s: TrainingSubset) => Float32Array) => {
    const out = new Float32Array(subsets.reduce((a, s) => a + pick(s).length, 0));
    let at = 0;
    for (const s of subsets) (out.set(pick(s), at), (at += pick(s).length));
    return out;
  };
  // S of the union: each subset's S (identity where it has none) on the diagonal, 0 between subsets
  let s: Float32Array | undefined;
  if (subsets.some((t) => t.s)) {
    s = new Float32Array(n * n);
    let o = 0;
    for (const t of subsets) {
      for (let i = 0; i < t.n; i++) for (let j = 0; j < t.n; j++) s[(o + i) * n + o + j] = t.s ? t.s[i * t.n + j]! : i === j ? 1 : 0;
      o += t.n;
    }
  }
  const mean = (pick: (t: TrainingSubset) => number) => subsets.reduce((a, t) => a + pick(t) * t.n, 0) / n;
  return [{ n, x: cat((t) => t.x), y: cat((t) => t.y), ...(s ? { s } : {}), lrImg: mean((t) => t.lrImg), lrTxt: mean((t) => t.lrTxt), loss: subsets[0]!.loss }];
}

/**
 * The training subsets of each run of a non-`full` method (shared by the main thread and the workers), and
 * with `eval.kd` the teacher: loaded here unless given (the workers get the main thread's).
 */
export async function planRuns(
  config: EvalStageConfig,
  sets: SplitSets,
  kdTeacher?: KdTeacher,
): Promise<{
  subsetsFor: (run: number) => TrainingSubset[];
  pairs: number;
  sets: SplitSets;
  shape: DualShape;
  /** sha256 of the synthetic set's content ('' for coresets) */
  digest: string;
  teacher?: KdTeacher;
}> {
  const { method, eval: ev } = config;
  if (method.kind === 'full') throw new ConfigError('planRuns: the full-data teacher has no training subsets');
  const { train } = sets;
  const shape = dualShape(train.dImg, train.dTxt, config.model.dOut);
  let subsetsFor: (run: number) => TrainingSubset[];
  let pairs: number;
  let digest = '';
  if (method.kind === 'synthetic') {
    const set = await readSyntheticSet(method.file);
    digest = set.digest;
    if (set.dImg !== train.dImg || set.dTxt !== train.dTxt) {
      throw new CorruptFileError(method.file, `synthetic vectors are ${set.dImg}/${set.dTxt}-d, the features are ${train.dImg}/${train.dTxt}-d`);
    }
    // the loss the set was distilled with trains its students (a set without provenance: the schema's default)
    const distilled = ((set.provenance.config as { distill?: { loss?: LossName } } | undefined)?.distill?.loss ??
      DistillConfig.shape.loss.parse(undefined)) as LossName;
    const last = set.phases[set.phases.length - 1]!;
    const subsets = set.phases.map((p) => ({
      n: p.n,
      x: p.x,
      y: p.y,
      s: p.s,
      lrImg: ev.lrUse === 'last' ? last.lrImg : p.lrImg,
      lrTxt: ev.lrUse === 'last' ? last.lrTxt : p.lrTxt,
      loss: distilled,
    }));
    const used = arrangeSubsets(subsets, ev.subsets ?? 'sequence');
    subsetsFor = () => used;
    pairs = used.reduce((a, s) => a + s.n, 0);
  } else {
    const loss = config.realLoss as LossName;
    if (method.selection === 'indices') {
      if (!method.indices?.length) throw new ConfigError('method.indices: give the caption indices of the coreset');
      const bad = method.indices.find((i) => i >= train.numCaptions);
      if (bad !== undefined) throw new ConfigError(`method.indices: ${bad} is out of range (${train.numCaptions} training pairs)`);
      if (new Set(method.indices).size !== method.indices.length) throw new ConfigError('method.indices: an index is listed twice');
      const fixed = realSubset(train, Int32Array.from(method.indices), ev.realLr, loss);
      subsetsFor = () => [fixed];
      pairs = method.indices.length;
    } else {
      const selection = method.selection;
      if (!method.size) throw new ConfigError(`method.size: a ${selection} coreset needs its size`);
      const size = method.size;
      if (size > train.numCaptions) {
        throw new ConfigError(`method.size: a coreset of ${size} pairs is larger than the ${train.numCaptions} training pairs`);
      }
      // a rule that needs a teacher or forgetting record reads it from method.buffer, before any student trains
      const buffer = method.buffer === undefined ? {} : { buffer: inWorkspace(config.workspace, method.buffer) };
      const ctx = await coresetContext(coresetRule(selection), train, { ...buffer, ...(method.numExperts ? { numExperts: method.numExperts } : {}), temperature: config.model.temperature });
      // each run draws with its own seed (the `random` rule: the same draws as before the registry existed)
      // a rule without randomness gives every run the same pairs: selected once (herding, k-center, … on Flickr8k
      // take seconds to minutes), a randomised one per run with the run's own seed
      const once = coresetRule(selection).randomised ? undefined : realSubset(train, selectCoreset(selection, ctx, size, rng(0)), ev.realLr, loss);
      subsetsFor = (run) => [once ?? realSubset(train, selectCoreset(selection, ctx, size, rng(deriveSeed(ev.seed, 'coreset', run))), ev.realLr, loss)];
      pairs = size;
    }
  }
  const teacher = ev.kd ? kdTeacher ?? (await loadKdTeacher(ev.kd, train, config.model.temperature)) : undefined;
  return { subsetsFor, pairs, sets, shape, digest, ...(teacher ? { teacher } : {}) };
}

/** Label of a method in messages: `random coreset (40 pairs)`, `synthetic runs/x/synthetic.safetensors`. */
export function methodLabel(method: MethodSpec): string {
  if (method.kind === 'synthetic') return `synthetic set ${method.file}`;
  if (method.kind === 'full') return `full data (${method.buffer})`;
  return method.selection === 'indices' ? `coreset (${method.indices?.length ?? 0} given pairs)` : `${method.selection} coreset (${method.size} pairs)`;
}

/** Train and score one student (the body of both the in-process path and the worker). */
export async function runStudent(
  config: EvalStageConfig,
  plan: Awaited<ReturnType<typeof planRuns>>,
  run: number,
): Promise<Checkpoint[]> {
  const r = await trainStudent(
    plan.subsetsFor(run),
    { val: plan.sets.val, test: plan.sets.test },
    plan.shape,
    config.model,
    config.eval,
    rng(deriveSeed(config.eval.seed, 'student', run)),
    `${methodLabel(config.method)}, run ${run + 1}`,
    plan.teacher,
  );
  return [...r.checkpoints];
}

/** What every run's result depends on: a record with another key belongs to another evaluation. */
function runKey(config: EvalStageConfig, digest: string, sets: SplitSets, teacher?: KdTeacher): string {
  const method = config.method.kind === 'synthetic' ? { kind: 'synthetic', sha256: digest } : config.method;
  // a KD teacher counts by its content, not by where its buffer lies; absent, the key is as before KD existed
  const kd = config.eval.kd && { ...config.eval.kd, buffer: undefined, teacher: teacher?.sha256 };
  return artefactKey({
    method,
    data: { ...config.data, dataRoot: undefined, cacheDir: undefined },
    features: [sets.train.digest, sets.val.digest, sets.test.digest],
    model: config.model,
    eval: { ...config.eval, runs: undefined, kd },
    realLoss: config.realLoss,
  });
}

/** A finished run's checkpoints, verified; undefined when absent or made for another key. */
async function readRun(dir: string, run: number, key: string, force: boolean): Promise<Checkpoint[] | undefined> {
  const file = runFile(dir, run);
  if (!existsSync(file)) return undefined;
  try {
    const r = await readJsonFile(file, RunRecord, 'evaluation record');
    if (r.sha256 !== sha256(JSON.stringify(r.checkpoints))) throw new CorruptFileError(file, 'checksum mismatch: the record is corrupted or was edited');
    if (r.run !== run) throw new CorruptFileError(file, `holds run ${r.run}, expected ${run}`);
    return r.key === key ? r.checkpoints : undefined;
  } catch (e) {
    if (force && e instanceof CorruptFileError) return undefined;
    unusable(e, file, 'rerun with --force to recompute it');
  }
}

/**
 * Train and score `runs` students on the method's data. With `out`, each finished run is stored (and the
 * folder locked while this runs), so an interrupted evaluation continues at the first missing run.
 */
export async function evaluateMethod(input: unknown, onProgress?: ProgressSink, log: (line: string) => void = () => undefined): Promise<EvalResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const parsed = parseConfig(EvalStageConfig, input, 'eval config');
  // resolved once, here: workers get absolute folders and never resolve anything again
  const m = parsed.method;
  const config: EvalStageConfig = {
    ...parsed,
    data: resolveData(parsed.data, parsed.workspace),
    method:
      m.kind === 'synthetic' ? { ...m, file: inWorkspace(parsed.workspace, m.file) }
      : m.kind === 'full' ? { ...m, buffer: inWorkspace(parsed.workspace, m.buffer) }
      : m,
    ...(parsed.out !== undefined ? { out: inWorkspace(parsed.workspace, parsed.out) } : {}),
    ...(parsed.eval.kd ? { eval: { ...parsed.eval, kd: { ...parsed.eval.kd, buffer: inWorkspace(parsed.workspace, parsed.eval.kd.buffer) } } } : {}),
  };
  const { method, eval: ev } = config;
  // cross-dataset evaluation: another dataset's test split (whole: a train fraction is no part of it)
  const otherTest = ev.testDataset === undefined ? undefined : (await loadFeatureSets({ ...config.data, dataset: ev.testDataset, trainFraction: undefined }, ['test']))[0]!;
  if (method.kind === 'full') {
    const { trajectories } = await readBuffer(method.buffer, method.numExperts);
    const checkpoints = await Promise.all(
      trajectories.map(async (t, k) => {
        const tests = otherTest ? await snapshotRetrieval(t, otherTest, `expert ${k} on ${otherTest.dataset}`) : t.retrieval;
        return tests.map((test, epoch) => ({ subset: 0, epoch, test, val: t.retrievalVal[epoch] ?? test }));
      }),
    );
    return { method, runs: checkpoints.length, selections: summariseRuns(checkpoints), checkpoints, pairs: -1 };
  }
  const [train, val, test] = await loadFeatureSets(config.data, ['train', 'val', 'test']);
  const sets: SplitSets = { train: train!, val: val!, test: otherTest ?? test! };
  const plan = await planRuns(config, sets);
  const body = async () => {
    const dir = config.out;
    const key = runKey(config, plan.digest, sets, plan.teacher);
    const checkpoints: Checkpoint[][] = new Array(ev.runs);
    const runs: number[] = [];
    for (let run = 0; run < ev.runs; run++) {
      const stored = dir === undefined ? undefined : await readRun(dir, run, key, config.force);
      if (stored) checkpoints[run] = stored;
      else runs.push(run);
    }
    let done = ev.runs - runs.length;
    if (done > 0) log(`[ptmst] eval: ${done} of ${ev.runs} runs already stored in ${dir}`);
    const record = async (run: number, c: Checkpoint[]) => {
      checkpoints[run] = c;
      if (dir !== undefined) {
        await writeJsonAtomic(runFile(dir, run), { format: RUN_FORMAT, key, run, checkpoints: c, sha256: sha256(JSON.stringify(c)) });
      }
      onProgress?.({ label: `eval ${method.kind} (${plan.pairs} pairs)`, done: ++done, total: ev.runs, info: { rMean: c[c.length - 1]!.test.rMean } });
    };
    const workers = threadCount(config.workers, runs.length);
    if (runs.length === 0) {
      // every run was stored already
    } else if (workers === 1) {
      for (const run of runs) await record(run, await runStudent(config, plan, run));
    } else {
      const onMessage = (m: { run: number; checkpoints: Checkpoint[] }) => record(m.run, m.checkpoints);
      await runPool(join(__dirname, 'eval-worker.js'), runs, workers, onMessage, { config, sets, teacher: plan.teacher });
    }
    return { method, runs: ev.runs, selections: summariseRuns(checkpoints), checkpoints, pairs: plan.pairs };
  };
  if (config.out === undefined) return body();
  await ensureDir(config.out);
  return withLock(config.out, 'eval', body, log);
}

/** Retrieval of every snapshot of a trajectory on a split (the full-data teacher on another dataset). */
async function snapshotRetrieval(t: Trajectory, split: FeatureSet, label: string): Promise<Retrieval[]> {
  if (split.dImg !== t.shape.img.dIn || split.dTxt !== t.shape.txt.dIn) {
    throw new ConfigError(`eval.testDataset: ${split.dataset} features are ${split.dImg}/${split.dTxt}-d, the experts take ${t.shape.img.dIn}/${t.shape.txt.dIn}-d`);
  }
  const out: Retrieval[] = [];
  for (let e = 0; e < t.snapshots; e++) {
    const at = (flat: Float32Array) => flat.subarray((e * flat.length) / t.snapshots, ((e + 1) * flat.length) / t.snapshots);
    const theta = tf.tidy(() => ({ img: unflattenTower(tf.tensor1d(at(t.img)), t.shape.img), txt: unflattenTower(tf.tensor1d(at(t.txt)), t.shape.txt) }));
    try {
      out.push(await evaluateRetrieval(theta, split, `${label}, epoch ${e}`));
    } finally {
      disposeDual(theta);
    }
  }
  return out;
}
