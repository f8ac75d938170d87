/**
 * `ptmst repro`: one command for the whole slice — features → buffer → convexify → distill → eval for every
 * method of a config, skipping stages whose outputs are valid, then the results table. Each method's
 * evaluation is stored in runs/<name>/<method>/eval.json with a key of its inputs, so a rerun after a crash
 * redoes only what is missing.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { ready } from '../backend';
import { parseConfig } from '../config/parse';
import { ConfigError, CorruptFileError, unusable } from '../errors';
import { BufferConfig, DataConfig, DistillConfig, EvalConfig, ModelConfig, SafeName, Workspace, inWorkspace } from '../config/schemas';
import { prepareFeatureSets } from '../features/load';
import { buildBuffer } from '../trajectory/buffer';
import { distill } from '../distill';
import { DISTILL_METHOD_NAMES, distillMethod } from '../distill/methods';
import { CORESET_NAMES, coresetRule } from '../coreset';
import { type EvalResult, evaluateMethod } from '../evaluate';
import { type CurvePoint, METRIC_KEYS, type MetricSummary, SELECTIONS, type Selection, checkpointCurve } from '../evaluate/summary';
import { type TableRow, resultsCsv, resultsMarkdown } from '../figures/tables';
import { LOSS_NAMES } from '../model/losses';
import { sha256, writeAtomic, writeJsonAtomic } from '../store/atomic';
import { readJsonFile } from '../store/json';
import { artefactKey } from '../store/key';
import type { ProgressSink } from '../util/progress';

export const ReproMethod = z.discriminatedUnion('kind', [
  z.object({ name: SafeName, kind: z.literal('distill'), distill: DistillConfig }).strict(),
  /** a named method of the registry (src/distill/methods.ts) at a budget; `overrides` are DistillConfig fields (+ `iterations`) */
  z
    .object({
      name: SafeName,
      kind: z.literal('method'),
      method: z.enum(DISTILL_METHOD_NAMES),
      budget: z.number().int().positive(),
      overrides: z.record(z.string(), z.unknown()).default({}),
    })
    .strict(),
  z
    .object({
      name: SafeName,
      kind: z.literal('coreset'),
      size: z.number().int().positive(),
      /** the coreset rule (src/coreset); absent: `random` (left absent, so older configs keep their cache keys) */
      selection: z.enum(CORESET_NAMES).optional(),
    })
    .strict(),
  z.object({ name: SafeName, kind: z.literal('full') }).strict(),
]);
export type ReproMethod = z.infer<typeof ReproMethod>;

export const ReproConfig = z
  .object({
    name: SafeName,
    /** a sentence for the results file */
    description: z.string().default(''),
    data: DataConfig.default(DataConfig.parse({})),
    model: ModelConfig.default(ModelConfig.parse({})),
    buffer: BufferConfig.default(BufferConfig.parse({})),
    eval: EvalConfig.default(EvalConfig.parse({})),
    realLoss: z.enum(LOSS_NAMES as [string, ...string[]]).default('infonce'),
    methods: z.array(ReproMethod).min(1),
    /** where the table goes: figures/<results>.json and .md; default the config name */
    results: SafeName.optional(),
    workspace: Workspace,
    workers: z.number().int().positive().optional(),
    /** recompute stored results that fail verification (otherwise such a file is an error naming it) */
    force: z.boolean().default(false),
  })
  .strict();
export type ReproConfig = z.infer<typeof ReproConfig>;

export interface MethodResult {
  readonly name: string;
  readonly kind: string;
  readonly pairs: number;
  readonly runs: number;
  readonly selections: Readonly<Record<Selection, MetricSummary>>;
  readonly wallSeconds: number | null;
  /** r_mean at every evaluation checkpoint, mean ± std over runs (for the full-data rows: the experts' epochs) */
  readonly curve: readonly CurvePoint[];
  readonly distill?: unknown;
}

/** What `repro` writes to figures/<results>.json: the results with what produced them, checksummed. */
export interface ResultsFile {
  readonly name: string;
  readonly provenance: readonly string[];
  readonly config: ReproConfig;
  readonly methods: readonly MethodResult[];
}

export interface ReproResult extends ResultsFile {
  /** the files written: figures/<results>.json, .md and .csv */
  readonly json: string;
  readonly markdown: string;
  readonly csv: string;
  readonly table: string;
}

const StoredResult = z.object({ key: z.string(), value: z.unknown(), wallSeconds: z.number().nullable(), sha256: z.string() }).strict();

/**
 * A stored result with its key, the wall time it took when it was computed, and a checksum of both; a
 * stored file that fails verification is an error naming it (with `force`, it is recomputed).
 */
async function cached<T>(
  path: string,
  key: string,
  force: boolean,
  make: () => Promise<T>,
  elapsed: () => number,
): Promise<{ value: T; reused: boolean; wallSeconds: number | null }> {
  const digest = (value: unknown, wallSeconds: number | null) => sha256(JSON.stringify({ key, value, wallSeconds }));
  if (existsSync(path)) {
    try {
      const old = await readJsonFile(path, StoredResult, 'stored result');
      if (old.sha256 !== sha256(JSON.stringify({ key: old.key, value: old.value, wallSeconds: old.wallSeconds }))) {
        throw new CorruptFileError(path, 'checksum mismatch: the file is corrupted or was edited');
      }
      if (old.key === key) return { value: old.value as T, reused: true, wallSeconds: old.wallSeconds };
    } catch (e) {
      if (!force || !(e instanceof CorruptFileError)) unusable(e, path, 'rerun with --force to recompute it');
    }
  }
  const value = await make();
  const wallSeconds = elapsed();
  await writeJsonAtomic(path, { key, value, wallSeconds, sha256: digest(value, wallSeconds) });
  return { value, reused: false, wallSeconds };
}

export async function repro(input: unknown, onProgress?: ProgressSink, log: (l: string) => void = () => undefined): Promise<ReproResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const config = parseConfig(ReproConfig, input, 'repro config');
  const names = new Set<string>();
  for (const m of config.methods) {
    if (names.has(m.name)) throw new ConfigError(`methods: the name "${m.name}" is used twice`);
    names.add(m.name);
  }
  const { workspace } = config;
  const workers = config.workers ? { workers: config.workers } : {};
  // the planner chains the stages: features, then experts (when a method needs them), then each method
  const data = { ...config.data, cacheDir: inWorkspace(workspace, config.data.cacheDir) };
  const sets = await prepareFeatureSets(data, ['train', 'val', 'test'], onProgress);
  const needsBuffer = (m: ReproMethod) => m.kind !== 'coreset' || coresetRule(m.selection ?? 'random').needs.length > 0;
  const needsExperts = config.methods.some(needsBuffer);
  const experts = needsExperts
    ? await buildBuffer({ data, model: config.model, buffer: config.buffer, workspace, force: config.force }, onProgress, log)
    : undefined;
  const results: MethodResult[] = [];
  for (const m of config.methods) {
    const dir = inWorkspace(workspace, join('runs', config.name, m.name));
    const t0 = performance.now();
    let distilled: Awaited<ReturnType<typeof distill>> | undefined;
    let method: unknown;
    if (m.kind === 'distill' || m.kind === 'method') {
      const distillConfig = m.kind === 'distill' ? m.distill : parseConfig(DistillConfig, distillMethod(m.method).config(m.budget, m.overrides), `methods.${m.name}`);
      distilled = await distill(
        // the workspace too: the set's provenance names the buffer relative to it, so the set (and the
        // evaluation keys that include its digest) must not depend on the folder the process started in
        { data, expertBuffer: experts!.dir, numExperts: config.buffer.numExperts, name: `${config.name}-${m.name}`, distill: distillConfig, out: dir, workspace, force: config.force, ...workers },
        onProgress,
        { log },
      );
      method = { kind: 'synthetic', file: distilled.file };
    } else if (m.kind === 'coreset') {
      // rules that read a teacher or forgetting events get the config's expert buffer
      const buffer = needsBuffer(m) ? { buffer: experts!.dir, numExperts: config.buffer.numExperts } : {};
      method = { kind: 'coreset', selection: m.selection ?? 'random', size: m.size, ...buffer };
    } else {
      method = { kind: 'full', buffer: experts!.dir, numExperts: config.buffer.numExperts };
    }
    const evalInput = { data, model: config.model, eval: config.eval, method, realLoss: config.realLoss };
    const synthDigest = distilled?.sha256 ?? '';
    // the method's wall time (distillation + evaluation) as measured when its result was computed
    const { value: ev, reused, wallSeconds } = await cached<EvalResult>(
      join(dir, 'eval.json'),
      // what the result depends on (not where the files are): the method, data, model, protocol, experts, set
      artefactKey({
        // `selection: 'random'` spelled out hashes as its absence (configs written before rules existed)
        method: { ...m, name: undefined, ...(m.kind === 'coreset' && m.selection === 'random' ? { selection: undefined } : {}) },
        data: { ...data, dataRoot: undefined, cacheDir: undefined },
        features: sets.map((s) => s.digest),
        model: config.model,
        eval: config.eval,
        realLoss: config.realLoss,
        experts: m.kind === 'full' ? experts!.manifest.experts.filter((e) => e.index < config.buffer.numExperts).map((e) => e.sha256) : [],
        synthDigest,
      }),
      config.force,
      () =>
        evaluateMethod(
          { ...evalInput, out: join(dir, 'eval-runs'), workspace, force: config.force, ...workers },
          onProgress,
          log,
        ),
      () => (performance.now() - t0) / 1000,
    );
    log(`${m.name}: r_mean ${ev.selections.final.rMean.mean.toFixed(2)} ± ${ev.selections.final.rMean.std.toFixed(2)} (final epoch, ${ev.runs} runs)${reused ? ' [cached]' : ''}`);
    results.push({
      name: m.name,
      kind: m.kind,
      pairs: ev.pairs,
      runs: ev.runs,
      selections: ev.selections,
      wallSeconds,
      curve: checkpointCurve(ev.checkpoints),
      ...(distilled ? { distill: distilled.phases.map(({ losses: _, ...p }) => p) } : {}),
    });
  }
  const provenance = [
    config.description,
    `data: ${config.data.dataset} (train pairs for experts/coresets; retrieval on the ${config.data.dataset} test split, 5 captions per image), encoders: ${config.data.imageEncoder} + ${config.data.textEncoder}`,
    `heads: d=${config.model.dOut}, T=${config.model.temperature}; experts: ${config.buffer.numExperts} × ${config.buffer.epochs} epochs, seed ${config.buffer.seed}`,
    `evaluation: ${config.eval.runs} runs (seed ${config.eval.seed}), ${config.eval.epochs} epochs per subset, mean ± sample std`,
    'full data: each expert of the buffer is one run',
  ].filter((l) => l.length > 0);
  const file: ResultsFile = { name: config.name, provenance, config, methods: results };
  const table = resultsMarkdown(`Results: ${config.name}`, provenance, tableRows(file));
  const stem = config.results ?? config.name;
  const [json, markdown, csv] = ['json', 'md', 'csv'].map((ext) => inWorkspace(workspace, join('figures', `${stem}.${ext}`))) as [string, string, string];
  await writeJsonAtomic(json, { ...file, sha256: sha256(JSON.stringify(file)) });
  await writeAtomic(markdown, table);
  await writeAtomic(csv, resultsCsv(tableRows(file)));
  return { ...file, json, markdown, csv, table };
}

/** The table rows of a results file (full data shows "all" pairs). */
export const tableRows = (r: Pick<ResultsFile, 'methods'>): TableRow[] =>
  r.methods.map((m) => ({ method: m.name, pairs: m.pairs < 0 ? 'all' : m.pairs, summary: m.selections, runs: m.runs }));

const MeanStdSchema = z.object({ mean: z.number(), std: z.number() }).strict();
const SummarySchema = z.object(Object.fromEntries(METRIC_KEYS.map((k) => [k, MeanStdSchema])) as Record<(typeof METRIC_KEYS)[number], typeof MeanStdSchema>).strict();
const StoredResults = z
  .object({
    name: z.string(),
    provenance: z.array(z.string()),
    config: z.record(z.string(), z.unknown()),
    methods: z.array(
      z
        .object({
          name: z.string(),
          kind: z.string(),
          pairs: z.number(),
          runs: z.number().int().positive(),
          selections: z.object(Object.fromEntries(SELECTIONS.map((k) => [k, SummarySchema])) as Record<Selection, typeof SummarySchema>).strict(),
          /** null when the method's result was computed before wall times were stored */
          wallSeconds: z.number().nullable(),
          curve: z.array(z.object({ subset: z.number().int(), epoch: z.number().int(), val: MeanStdSchema, test: MeanStdSchema }).strict()),
          distill: z.unknown().optional(),
        })
        .strict(),
    ),
    sha256: z.string(),
  })
  .strict();

/**
 * A results file written by `repro` (figures/<name>.json), verified: its schema, its checksum and its config.
 * `nameOrPath` is a path, or a bare name looked up under `<workspace>/figures/`.
 */
export async function readResults(nameOrPath: string, workspace = '.'): Promise<ResultsFile> {
  const path = nameOrPath.endsWith('.json') ? nameOrPath : inWorkspace(workspace, join('figures', `${nameOrPath}.json`));
  const stored = await readJsonFile(path, StoredResults, 'results file');
  const { sha256: digest, ...file } = stored;
  if (digest !== sha256(JSON.stringify(file))) throw new CorruptFileError(path, 'checksum mismatch: the file is corrupted or was edited; rerun ptmst repro');
  const config = ReproConfig.safeParse(file.config);
  if (!config.success) throw new CorruptFileError(path, `its config does not parse: ${config.error.issues[0]?.message ?? ''}`);
  return { ...file, config: config.data };
}
