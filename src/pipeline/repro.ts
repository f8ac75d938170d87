/**
 * `ptmst repro`: one command for the whole slice — features → buffer → convexify → distill → eval for every
 * method of a config, skipping stages whose outputs are valid, then the results table. Each method's
 * evaluation is stored in runs/<name>/<method>/eval.json with a key of its inputs, so a rerun after a crash
 * redoes only what is missing.
 */
import { existsSync } from 'node:fs';
import { join, relative } from 'node:path';
import { z } from 'zod';
import { ready } from '../backend';
import { PACKAGE_ROOT } from '../config/file';
import { parseConfig } from '../config/parse';
import { ConfigError, CorruptFileError, unusable } from '../errors';
import { type Choices, type TuningOutcome, TuningConfig, TuningRecord, anyChoice, chooseOnValidation, tuningLine, tuningRows, validationScore, withChosen } from './tuning';
import { BufferConfig, DataConfig, type DistillConfig, DistillSpec, EvalConfig, KdSchema, ModelConfig, SafeName, Workspace, inWorkspace } from '../config/schemas';
import { prepareFeatureSets } from '../features/load';
import { buildBuffer } from '../trajectory/buffer';
import { distill } from '../distill';
import type { AdaptiveChoice } from '../distill/adaptive-phases';
import { DISTILL_METHOD_NAMES, distillMethod } from '../distill/methods';
import { readsExperts } from '../distill/distribution';
import { CORESET_NAMES, coresetRule } from '../coreset';
import { type EvalResult, evaluateMethod } from '../evaluate';
import { type CurvePoint, METRIC_KEYS, type MetricSummary, SELECTIONS, type Selection, checkpointCurve, summariseRuns } from '../evaluate/summary';
import type { Checkpoint } from '../evaluate/student';
import { type TableRow, resultsCsv, resultsMarkdown } from '../figures/tables';
import { LOSS_NAMES } from '../model/losses';
import { sha256, writeAtomic, writeJsonAtomic } from '../store/atomic';
import { readJsonFile } from '../store/json';
import { artefactKey } from '../store/key';
import { threadCount } from '../util/pool';
import { deriveSeed } from '../util/random';
import type { ProgressSink } from '../util/progress';
import {
  Computed,
  type GitRecord,
  Origin,
  RESULTS_FORMAT,
  type ResolvedRow,
  type RowOrigin,
  type UnitRecord,
  backendRecord,
  checkOrigin,
  gitRecord,
  hostRecord,
  packageRecord,
  provenanceFooter,
  studentRecords,
} from './origin';

/**
 * Per-method changes to the evaluation protocol (any `EvalConfig` field; absent fields keep the config's), and
 * knowledge distillation from the config's expert buffer (`kd`: teacher index, temperature, weight).
 */
const methodEval = {
  eval: overrides(EvalConfig.omit({ kd: true })).optional(),
  kd: KdSchema.optional(),
};
/**
 * Distillation seeds: each seed distils its own set (runs/<group>/<name>/seed-<s>) and is evaluated with
 * `eval.runs` students; the row pools every student of every seed. Absent: one set, the config's seed.
 */
const seeds = z.array(z.number().int().nonnegative()).min(1).optional();

/**
 * A schema of changes to `schema`'s fields: each optional and without its default (zod's `.partial()` keeps
 * defaults, which would set every absent field back to the reference value).
 */
function overrides<T extends z.ZodRawShape>(schema: z.ZodObject<T>) {
  const shape = Object.fromEntries(
    Object.entries(schema.shape).map(([k, v]) => [k, (v instanceof z.ZodDefault ? (v.removeDefault() as z.ZodTypeAny) : (v as z.ZodTypeAny)).optional()]),
  );
  return z.object(shape).strict();
}

/** Every promise settled (so nothing still runs when this returns), then the values, or the first error. */
async function settledAll<T>(promises: readonly Promise<T>[]): Promise<T[]> {
  const settled = await Promise.allSettled(promises);
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** The fields a parsed partial object sets (zod keeps absent optional fields as `undefined` keys). */
const definedFields = (o: object | undefined) => Object.fromEntries(Object.entries(o ?? {}).filter(([, v]) => v !== undefined));

export const ReproMethod = z.discriminatedUnion('kind', [
  z.object({ name: SafeName, kind: z.literal('distill'), distill: DistillSpec, seeds, ...methodEval }).strict(),
  /** a named method of the registry (src/distill/methods.ts) at a budget; `overrides` are DistillConfig fields (+ `iterations`) */
  z
    .object({
      name: SafeName,
      kind: z.literal('method'),
      method: z.enum(DISTILL_METHOD_NAMES),
      budget: z.number().int().positive(),
      /** checked here, before any stage runs (0 was once read as "absent" and ran the default 500 per phase) */
      overrides: z.object({ iterations: z.number().int().positive().optional() }).catchall(z.unknown()).default({}),
      seeds,
      ...methodEval,
    })
    .strict(),
  z
    .object({
      name: SafeName,
      kind: z.literal('coreset'),
      size: z.number().int().positive(),
      /** the coreset rule (src/coreset); absent: `random` (left absent, so older configs keep their cache keys) */
      selection: z.enum(CORESET_NAMES).optional(),
      ...methodEval,
    })
    .strict(),
  /** the full-data teacher: the experts' own scores; `eval.testDataset` scores their snapshots on another dataset */
  z.object({ name: SafeName, kind: z.literal('full'), eval: z.object({ testDataset: EvalConfig.shape.testDataset }).strict().optional() }).strict(),
  /**
   * An earlier row's sets (every seed of a distilled row, or a coreset's rule and size) evaluated under another
   * protocol: knowledge distillation, or any `eval` change (the schedule study). Nothing is distilled again.
   */
  z.object({ name: SafeName, kind: z.literal('variant'), of: SafeName, ...methodEval }).strict(),
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
    /**
     * one tuning protocol for the distilled methods (src/pipeline/tuning.ts): each method's grid is distilled at
     * one budget, chosen on validation, and its choice used by every row of that method. Absent: no tuning.
     */
    tuning: TuningConfig.optional(),
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

/** A config without where it ran (`workspace`) and `force`: neither is part of the experiment, nor of its results file. */
function experimentOf<C extends { readonly workspace?: unknown; readonly force?: unknown }>(config: C): Omit<C, 'workspace' | 'force'> {
  const { workspace: _where, force: _force, ...experiment } = config;
  return experiment;
}

/**
 * What `repro` writes to figures/<results>.json: the results with what produced them, checksummed. Format 2
 * adds `origin` (src/pipeline/origin.ts: commit, backend, host, times, every row's resolved configuration and
 * per-student records); a format-1 file (written before) reads with `origin` undefined.
 */
export interface ResultsFile {
  readonly format: 1 | typeof RESULTS_FORMAT;
  /** the results file's name (`results`, else the config's `name`): figures/<name>.json */
  readonly name: string;
  /** lines describing the experiment (data, encoders, heads, experts, evaluation), shown above its tables */
  readonly provenance: readonly string[];
  /** the experiment's config; where it ran (`workspace`) and `force` are not part of the experiment, nor of the file */
  readonly config: Omit<ReproConfig, 'workspace' | 'force'>;
  readonly methods: readonly MethodResult[];
  /** where the results came from (format 2); undefined: a format-1 file, which recorded none */
  readonly origin: Origin | undefined;
  /** the tuning's grid, scores and choices (a config with `tuning`); absent otherwise */
  readonly tuning?: TuningOutcome;
}

export interface ReproResult extends ResultsFile {
  /** the files written: figures/<results>.json, .md and .csv */
  readonly json: string;
  readonly markdown: string;
  readonly csv: string;
  readonly table: string;
  /** the expert buffer folder the methods used (absent when no method needed experts) */
  readonly experts?: string;
}

/** `computed` (when and by which commit) is absent from results stored before it was recorded */
const StoredResult = z.object({ key: z.string(), value: z.unknown(), wallSeconds: z.number().nullable(), computed: Computed.optional(), sha256: z.string() }).strict();

/** The checksum of a stored result: of its key, value, wall time and (where recorded) `computed`. */
const storedDigest = (r: { key: string; value: unknown; wallSeconds: number | null; computed?: Computed | undefined }) =>
  sha256(JSON.stringify({ key: r.key, value: r.value, wallSeconds: r.wallSeconds, ...(r.computed ? { computed: r.computed } : {}) }));

/**
 * A stored result with its key, the wall time it took when it was computed, when and by which commit, and a
 * checksum of all of them; a stored file that fails verification is an error naming it (with `force`, it is
 * recomputed).
 */
async function cached<T>(
  path: string,
  key: string,
  force: boolean,
  make: () => Promise<T>,
  elapsed: () => number,
  git: GitRecord,
): Promise<{ value: T; reused: boolean; wallSeconds: number | null; computed: Computed | null }> {
  if (existsSync(path)) {
    try {
      const old = await readJsonFile(path, StoredResult, 'stored result');
      if (old.sha256 !== storedDigest(old)) throw new CorruptFileError(path, 'checksum mismatch: the file is corrupted or was edited');
      if (old.key === key) return { value: old.value as T, reused: true, wallSeconds: old.wallSeconds, computed: old.computed ?? null };
    } catch (e) {
      if (!force || !(e instanceof CorruptFileError)) unusable(e, path, 'rerun with --force to recompute it');
    }
  }
  const value = await make();
  const wallSeconds = elapsed();
  const computed: Computed = { at: new Date().toISOString(), commit: git.commit, dirty: git.dirty };
  const stored = { key, value, wallSeconds, computed };
  await writeJsonAtomic(path, { ...stored, sha256: storedDigest(stored) });
  return { value, reused: false, wallSeconds, computed };
}

/** A registry method's configuration; a registry error names the row (or `where`). */
function expandMethod(m: Pick<Extract<ReproMethod, { kind: 'method' }>, 'name' | 'method' | 'budget' | 'overrides'>, where = `methods.${m.name}`): DistillSpec {
  let input: unknown;
  try {
    input = distillMethod(m.method).config(m.budget, m.overrides);
  } catch (e) {
    if (e instanceof ConfigError) throw new ConfigError(`${where}.${e.message}`);
    throw e;
  }
  return parseConfig(DistillSpec, input, where);
}

/**
 * Run a repro config. `opts.tuningRun` marks the grid of a `tuning` section (repro calls itself with it): its
 * rows log the validation score the choice reads, not a test score.
 */
export async function repro(input: unknown, onProgress?: ProgressSink, log: (l: string) => void = () => undefined, opts: { readonly tuningRun?: boolean } = {}): Promise<ReproResult> {
  const startedAt = new Date().toISOString();
  const tStart = performance.now();
  const backend = await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const config = parseConfig(ReproConfig, input, 'repro config');
  const names = new Set<string>();
  for (const m of config.methods) {
    if (names.has(m.name)) throw new ConfigError(`methods: the name "${m.name}" is used twice`);
    names.add(m.name);
  }
  // every distilled row's configuration, resolved before any stage runs: a bad override is an error now, not
  // after the features and experts are made (the grid's points too, and a row that sets a field its method's
  // grid tunes)
  const distillOf = new Map<string, DistillSpec>();
  // an adaptive schedule's phases, as the distill stage resolved them (the rule reads the experts only: one choice for every seed)
  const chosenOf = new Map<string, AdaptiveChoice>();
  const resolveRows = (outcome: Choices | undefined) => {
    for (const m of config.methods) {
      if (m.kind === 'distill') distillOf.set(m.name, m.distill);
      else if (m.kind === 'method') distillOf.set(m.name, expandMethod({ ...m, overrides: withChosen(m.name, m.method, m.overrides, outcome) }));
    }
  };
  const stem = config.results ?? config.name;
  let tuning: TuningOutcome | undefined;
  if (config.tuning) {
    const t = config.tuning;
    const rows = tuningRows(t);
    for (const r of rows) expandMethod(r, `tuning.grids.${r.method}`);
    // the row check with every tuned field set (the values do not matter here, only which fields are tuned)
    resolveRows(anyChoice(t));
    const results = t.results ?? `${stem}-tuning`;
    log(`tuning: ${rows.length} grid points at ${t.budget} pairs (distillation seed ${t.seed}) -> figures/${results}`);
    const { tuning: _, results: __, description: ___, methods: ____, ...rest } = config;
    const grid = await repro(
      {
        ...rest,
        description: `The tuning of ${stem}: every grid point distilled at ${t.budget} pairs with distillation seed ${t.seed}, scored on validation (the best checkpoint of the students' mean validation r_mean).`,
        eval: { ...config.eval, ...(t.eval ?? {}) },
        methods: rows,
        results,
      },
      onProgress,
      log,
      { tuningRun: true },
    );
    tuning = chooseOnValidation(t, new Map(grid.methods.map((r) => [r.name, r])), results);
    log(tuningLine(tuning));
  }
  resolveRows(tuning);
  // the code that runs: read once, before anything is written
  const root = PACKAGE_ROOT;
  const git = gitRecord(root);
  const { workspace } = config;
  const workers = config.workers !== undefined ? { workers: config.workers } : {};
  // the planner chains the stages: features, then experts (when a method needs them), then each method
  const data = { ...config.data, cacheDir: inWorkspace(workspace, config.data.cacheDir) };
  const sets = await prepareFeatureSets(data, ['train', 'val', 'test'], onProgress);
  // a variant row's sets come from its base row; a knowledge-distillation teacher is one of the experts
  // distribution matching with random heads reads no experts
  const needsBuffer = (m: ReproMethod) =>
    m.kind === 'coreset' ? coresetRule(m.selection ?? 'random').needs.length > 0 : m.kind === 'distill' || m.kind === 'method' ? readsExperts(distillOf.get(m.name)!) : m.kind === 'full';
  const needsExperts = config.methods.some((m) => needsBuffer(m) || (m.kind !== 'full' && m.kd !== undefined));
  const experts = needsExperts
    ? await buildBuffer({ data, model: config.model, buffer: config.buffer, workspace, force: config.force }, onProgress, log)
    : undefined;
  const expertDigests = () => experts!.manifest.experts.filter((e) => e.index < config.buffer.numExperts).map((e) => e.sha256);
  // paths in the results file are relative to the workspace: where it ran is no part of the experiment
  const relativePath = (p: string) => relative(inWorkspace(workspace, '.'), p) || '.';
  const results: MethodResult[] = [];
  const rowOrigins: RowOrigin[] = [];
  // what each row evaluated, so a `variant` row can evaluate the same sets under another protocol
  const evaluated = new Map<string, { row: Exclude<ReproMethod, { kind: 'variant' }>; units: { seed?: number; method: unknown; synthDigest: string }[] }>();
  for (const m of config.methods) {
    const rowStartedAt = new Date().toISOString();
    const tRow = performance.now();
    const dir = inWorkspace(workspace, join('runs', config.name, m.name));
    let row: Exclude<ReproMethod, { kind: 'variant' }>;
    if (m.kind === 'variant') {
      const of = evaluated.get(m.of);
      if (!of) throw new ConfigError(`methods.${m.name}.of: "${m.of}" is not a non-variant row before it`);
      row = of.row;
    } else row = m.kind === 'method' ? { ...m, overrides: withChosen(m.name, m.method, m.overrides, tuning) } : m;
    // the row's protocol: the config's, with the row's changes and its teacher for knowledge distillation
    const evalConfig: EvalConfig =
      m.kind === 'full' ? { ...config.eval, ...definedFields(m.eval) } : EvalConfig.parse({ ...config.eval, ...definedFields(m.eval), ...(m.kd ? { kd: { ...m.kd, buffer: experts!.dir } } : {}) });
    // cross-dataset evaluation: that dataset's test features (made here when missing) are part of the key
    const otherTest = evalConfig.testDataset === undefined ? [] : await prepareFeatureSets({ ...data, dataset: evalConfig.testDataset, trainFraction: undefined }, ['test'], onProgress);
    const seedsOf = row.kind === 'distill' || row.kind === 'method' ? row.seeds : undefined;
    // one unit per distillation seed (a coreset or the full data is one unit)
    const units: { dir: string; seed?: number }[] = seedsOf ? seedsOf.map((seed) => ({ dir: join(dir, `seed-${seed}`), seed })) : [{ dir }];
    const made: { seed?: number; method: unknown; synthDigest: string }[] = [];
    const evaluations: EvalResult[] = [];
    const unitRecords: UnitRecord[] = [];
    const phases: unknown[] = [];
    let wallSeconds: number | null = 0;
    let reusedAll = true;
    // the seeds' distillations run side by side, the threads split between them (a one-phase method would
    // leave a core idle otherwise); then each set is evaluated in turn on every thread
    const tDistill = performance.now();
    // threads go to the seeds whose set is not there yet (a finished set only needs verifying)
    const pending = units.filter((u) => !existsSync(join(u.dir, 'synthetic.safetensors'))).length;
    const distilled =
      m.kind === 'distill' || m.kind === 'method'
        ? await settledAll(
            units.map((unit) => {
              const base = distillOf.get(m.name)!;
              const distillConfig = unit.seed === undefined ? base : { ...base, seed: unit.seed };
              const threads = pending > 1 ? { workers: Math.max(1, Math.floor(threadCount(config.workers, Infinity) / pending)) } : workers;
              const progress: ProgressSink | undefined = onProgress && units.length > 1 ? (e) => onProgress({ ...e, label: `seed ${unit.seed}: ${e.label}` }) : onProgress;
              return distill(
                // the workspace too: the set's provenance names the buffer relative to it, so the set (and the
                // evaluation keys that include its digest) must not depend on the folder the process started in
                // without experts (distribution matching, random heads) the heads' size comes from the model section
                { data, ...(readsExperts(base) ? { expertBuffer: experts!.dir, numExperts: config.buffer.numExperts } : { model: config.model }), name: `${config.name}-${m.name}`, distill: distillConfig, out: unit.dir, workspace, force: config.force, ...threads },
                progress,
                { log },
              );
            }),
          )
        : undefined;
    // each unit's share of the distillation's wall time
    const distillShare = (performance.now() - tDistill) / 1000 / units.length;
    for (const [u, unit] of units.entries()) {
      const t0 = performance.now();
      let method: unknown;
      let synthDigest = '';
      if (m.kind === 'variant') {
        ({ method, synthDigest } = evaluated.get(m.of)!.units[u]!);
      } else if (distilled) {
        const set = distilled[u]!;
        if (set.adaptive && u === 0) chosenOf.set(m.name, set.adaptive);
        method = { kind: 'synthetic', file: set.file };
        synthDigest = set.sha256;
        phases.push(set.phases.map(({ losses: _, ...p }) => p));
      } else if (m.kind === 'coreset') {
        // rules that read a teacher or forgetting events get the config's expert buffer
        const buffer = needsBuffer(m) ? { buffer: experts!.dir, numExperts: config.buffer.numExperts } : {};
        method = { kind: 'coreset', selection: m.selection ?? 'random', size: m.size, ...buffer };
      } else {
        method = { kind: 'full', buffer: experts!.dir, numExperts: config.buffer.numExperts };
      }
      made.push({ ...(unit.seed === undefined ? {} : { seed: unit.seed }), method, synthDigest });
      const evalInput = { data, model: config.model, eval: evalConfig, method, realLoss: config.realLoss };
      // the unit's wall time (its share of the distillation + its evaluation) as measured when computed
      const stored = await cached<EvalResult>(
        join(unit.dir, 'eval.json'),
        // what the result depends on (not where the files are): the method, data, model, protocol, experts, set
        artefactKey({
          // `selection: 'random'` spelled out hashes as its absence (configs written before rules existed)
          method: { ...row, name: undefined, eval: undefined, kd: undefined, seeds: undefined, ...(row.kind === 'coreset' && row.selection === 'random' ? { selection: undefined } : {}) },
          seed: unit.seed,
          data: { ...data, dataRoot: undefined, cacheDir: undefined },
          features: [...sets, ...otherTest].map((s) => s.digest),
          model: config.model,
          eval: evalConfig.kd ? { ...evalConfig, kd: { ...evalConfig.kd, buffer: undefined } } : evalConfig,
          realLoss: config.realLoss,
          experts: row.kind === 'full' || evalConfig.kd ? expertDigests() : [],
          synthDigest,
        }),
        config.force,
        () => evaluateMethod({ ...evalInput, out: join(unit.dir, 'eval-runs'), workspace, force: config.force, ...workers }, onProgress, log),
        () => distillShare + (performance.now() - t0) / 1000,
        git,
      );
      evaluations.push(stored.value);
      unitRecords.push({ ...(unit.seed === undefined ? {} : { set: unit.seed }), cached: stored.reused, computed: stored.computed });
      wallSeconds = wallSeconds === null || stored.wallSeconds === null ? null : wallSeconds + stored.wallSeconds;
      reusedAll &&= stored.reused;
    }
    if (m.kind !== 'variant') evaluated.set(m.name, { row: m, units: made });
    // every student of every seed, pooled
    const checkpoints: (readonly Checkpoint[])[] = evaluations.flatMap((e) => e.checkpoints);
    const selections = summariseRuns(checkpoints);
    const curve = checkpointCurve(checkpoints);
    const shown = opts.tuningRun
      ? `validation score ${validationScore({ curve }).toFixed(2)} (best checkpoint of the ${checkpoints.length} students' mean validation r_mean)`
      : `r_mean ${selections.final.rMean.mean.toFixed(2)} ± ${selections.final.rMean.std.toFixed(2)} (final epoch, ${checkpoints.length} runs)`;
    log(`${m.name}: ${shown}${reusedAll ? ' [cached]' : ''}`);
    results.push({
      name: m.name,
      kind: m.kind,
      pairs: evaluations[0]!.pairs,
      runs: checkpoints.length,
      selections,
      wallSeconds,
      curve,
      ...(phases.length === 0 ? {} : { distill: units.length > 1 ? phases : phases[0] }),
    });
    // the full data's runs are the experts, every other row's are students seeded from the protocol's seed
    const seedOf = (run: number) => (row.kind === 'full' ? deriveSeed(config.buffer.seed, 'expert', run) : deriveSeed(evalConfig.seed, 'student', run));
    rowOrigins.push({
      name: m.name,
      kind: m.kind,
      startedAt: rowStartedAt,
      endedAt: new Date().toISOString(),
      wallSeconds: (performance.now() - tRow) / 1000,
      resolved: resolvedRow(config, row, m, evalConfig, distillOf, chosenOf, needsBuffer(row) || evalConfig.kd !== undefined, relativePath),
      units: unitRecords,
      students: evaluations.flatMap((e, u) => studentRecords(e.checkpoints, seedOf, units[u]!.seed)),
    });
  }
  const provenance = [
    config.description,
    `data: ${config.data.dataset} (${config.data.trainFraction === undefined ? 'train pairs' : `${+(100 * config.data.trainFraction).toFixed(2)}% of the train images with their captions`} for experts/coresets; retrieval on the ${config.data.dataset} test split, 5 captions per image), encoders: ${config.data.imageEncoder} + ${config.data.textEncoder}`,
    `heads: d=${config.model.dOut}, T=${config.model.temperature}; experts: ${config.buffer.numExperts} × ${config.buffer.epochs} epochs${(config.buffer.passesPerEpoch ?? 1) === 1 ? '' : ` of ${config.buffer.passesPerEpoch} passes each`}, seed ${config.buffer.seed}`,
    `evaluation: ${config.eval.runs} runs (seed ${config.eval.seed}), ${config.eval.epochs} epochs per subset, mean ± sample std`,
    'full data: each expert of the buffer is one run',
    ...(tuning ? [tuningLine(tuning)] : []),
  ].filter((l) => l.length > 0);
  const origin: Origin = {
    package: packageRecord(root),
    git,
    host: hostRecord(),
    backend: backendRecord(backend, threadCount(config.workers, Infinity)),
    startedAt,
    endedAt: new Date().toISOString(),
    wallSeconds: (performance.now() - tStart) / 1000,
    rows: rowOrigins,
  };
  // what readResults will check, checked before the file is written (a defect here is not the user's)
  const checked = Origin.safeParse(origin);
  if (!checked.success) throw new Error(`repro: the origin it built does not parse: ${checked.error.issues[0]?.path.join('.')}: ${checked.error.issues[0]?.message}`);
  const problem = checkOrigin(origin, results);
  if (problem) throw new Error(`repro: the origin it built disagrees with its results: ${problem}`);
  // the results' name is their file's: configs that share a run folder (`name`) write different results
  const file: ResultsFile = { format: RESULTS_FORMAT, name: stem, provenance, config: experimentOf(config), methods: results, origin, ...(tuning ? { tuning } : {}) };
  const table = `${resultsMarkdown(`Results: ${stem}`, provenance, tableRows(file))}\n${provenanceFooter(origin)}\n`;
  const [json, markdown, csv] = ['json', 'md', 'csv'].map((ext) => inWorkspace(workspace, join('figures', `${stem}.${ext}`))) as [string, string, string];
  await writeJsonAtomic(json, { ...file, sha256: sha256(JSON.stringify(file)) });
  await writeAtomic(markdown, table);
  await writeAtomic(csv, resultsCsv(tableRows(file)));
  return { ...file, json, markdown, csv, table, ...(experts ? { experts: experts.dir } : {}) };
}

/**
 * Every setting a row ran with: the model, the experts it read, the protocol (the config's with the row's
 * changes; a kd teacher's buffer relative to the workspace), the distillation config after the registry's
 * expansion and every default (`unrollDropout` resolved to the model's dropout where unset), the seeds, the
 * coreset rule. A variant gets its base row's sets (distillation, seeds, coreset) under its own protocol.
 */
function resolvedRow(
  config: ReproConfig,
  row: Exclude<ReproMethod, { kind: 'variant' }>,
  m: ReproMethod,
  evalConfig: EvalConfig,
  distillOf: ReadonlyMap<string, DistillSpec>,
  chosenOf: ReadonlyMap<string, AdaptiveChoice>,
  readsExperts: boolean,
  relativePath: (p: string) => string,
): ResolvedRow {
  const spec = distillOf.get(row.name);
  // an adaptive schedule is recorded as the phases it resolved to, beside its settings
  const schedule = spec && !Array.isArray(spec.phases) ? spec.phases : undefined;
  const chosen = chosenOf.get(row.name);
  if (schedule && !chosen) throw new Error(`methods.${row.name}: adaptive phases were not resolved before the row's record`);
  const d = spec && (schedule ? { ...spec, phases: chosen!.phases } : (spec as DistillConfig));
  const seedsOf = row.kind === 'distill' || row.kind === 'method' ? row.seeds : undefined;
  return {
    model: config.model,
    ...(readsExperts ? { buffer: config.buffer } : {}),
    ...(row.kind === 'full'
      ? evalConfig.testDataset === undefined ? {} : { testDataset: evalConfig.testDataset }
      : { eval: evalConfig.kd ? { ...evalConfig, kd: { ...evalConfig.kd, buffer: relativePath(evalConfig.kd.buffer) } } : evalConfig, realLoss: config.realLoss }),
    ...(d ? { distill: { ...d, unrollDropout: d.unrollDropout ?? config.model.dropout } } : {}),
    ...(schedule ? { schedule } : {}),
    ...(seedsOf ? { seeds: [...seedsOf] } : {}),
    ...(row.kind === 'coreset' ? { coreset: { selection: row.selection ?? 'random', size: row.size } } : {}),
    ...(m.kind === 'variant' ? { of: m.of } : {}),
  };
}

/** The table rows of a results file (full data shows "all" pairs). */
export const tableRows = (r: Pick<ResultsFile, 'methods'>): TableRow[] =>
  r.methods.map((m) => ({ method: m.name, pairs: m.pairs < 0 ? 'all' : m.pairs, summary: m.selections, runs: m.runs }));

const MeanStdSchema = z.object({ mean: z.number(), std: z.number() }).strict();
const SummarySchema = z.object(Object.fromEntries(METRIC_KEYS.map((k) => [k, MeanStdSchema])) as Record<(typeof METRIC_KEYS)[number], typeof MeanStdSchema>).strict();
const MethodSchema = z
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
  .strict();
const ResultsBody = { name: z.string(), provenance: z.array(z.string()), config: z.record(z.string(), z.unknown()), methods: z.array(MethodSchema) };
/** format 1: no `format` field, no origin */
const ResultsV1 = z.object(ResultsBody).strict();
const ResultsV2 = z.object({ format: z.literal(RESULTS_FORMAT), ...ResultsBody, origin: Origin, tuning: TuningRecord.optional() }).strict();

/**
 * A results file written by `repro` (figures/<name>.json), verified: its checksum (over the bytes' fields as
 * written), its schema, its config, and in format 2 its origin: schema-valid, one origin row per method whose
 * per-student records give the method's means and sample stds under every rule and metric. A format-1 file
 * (written before results recorded provenance) reads with `format: 1` and `origin` undefined; a file without a
 * checksum is an error naming it. `nameOrPath` is a path, or a bare name looked up under `<workspace>/figures/`.
 */
export async function readResults(nameOrPath: string, workspace = '.'): Promise<ResultsFile> {
  const path = nameOrPath.endsWith('.json') ? nameOrPath : inWorkspace(workspace, join('figures', `${nameOrPath}.json`));
  const raw = await readJsonFile(path, z.record(z.string(), z.unknown()), 'results file');
  const { sha256: digest, ...content } = raw;
  if (typeof digest !== 'string') {
    throw new CorruptFileError(path, 'the results file has no checksum (sha256): it was written before results files were checksummed and cannot be verified; regenerate it with ptmst repro');
  }
  if (digest !== sha256(JSON.stringify(content))) throw new CorruptFileError(path, 'checksum mismatch: the file is corrupted or was edited; rerun ptmst repro');
  const format = content.format ?? 1;
  if (format !== 1 && format !== RESULTS_FORMAT) throw new CorruptFileError(path, `results format ${JSON.stringify(format)}: this version reads formats 1 and ${RESULTS_FORMAT}`);
  const parsed = format === 1 ? ResultsV1.safeParse(content) : ResultsV2.safeParse(content);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CorruptFileError(path, `results file field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  const file: z.infer<typeof ResultsV1> & { origin?: Origin } = parsed.data;
  // files written before the config left out where it ran still carry `workspace` and `force`
  const config = ReproConfig.omit({ workspace: true, force: true }).safeParse(experimentOf(file.config));
  if (!config.success) throw new CorruptFileError(path, `its config does not parse: ${config.error.issues[0]?.message ?? ''}`);
  const origin = file.origin;
  if (origin) {
    const problem = checkOrigin(origin, file.methods);
    if (problem) throw new CorruptFileError(path, `its provenance disagrees with its results: ${problem}`);
  }
  const tuning = format === 1 ? undefined : (parsed.data as z.infer<typeof ResultsV2>).tuning;
  return { format: format as ResultsFile['format'], name: file.name, provenance: file.provenance, config: config.data, methods: file.methods, origin, ...(tuning ? { tuning } : {}) };
}
