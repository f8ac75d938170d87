/**
 * Where a results file came from: its `origin` block (results format 2). It records the code (commit, dirty
 * flag, package version), the machine (Node, cpu model, cores), the tfjs backend with its settings (BLAS,
 * fused head kernels, threads per op), start and end times, and per row: the configuration the row ran with
 * after every default and the method registry's expansion, where each unit's result was computed (now, or
 * read from the runs/ cache), and one compact record per student (the metrics each selection rule picked, and
 * at which checkpoint). `checkOrigin` is what `readResults` verifies; `provenanceSummary` prints it.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, realpathSync } from 'node:fs';
import { arch, availableParallelism, cpus, platform, totalmem } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { BACKENDS, type BackendInfo, wasmThreadCount } from '../backend';
import { headKernelsOn } from '../backend/head-kernels';
import { PACKAGE_ROOT } from '../config/file';
import { AdaptivePhases, BufferConfig, DistillConfig, EvalConfig, ModelConfig } from '../config/schemas';
import type { Checkpoint } from '../evaluate/student';
import { METRIC_KEYS, type MetricSummary, SELECTIONS, type Selection, meanStd, selectCheckpoint } from '../evaluate/summary';
import { packageVersion } from '../util/package-version';

/** The results file format `repro` writes; files without a `format` field are format 1 (no origin). */
export const RESULTS_FORMAT = 2;

const isoTime = z.iso.datetime();
const seconds = z.number().nonnegative();
const count = z.number().int().nonnegative();

/** The git state of the package's folder; `commit` and `dirty` are null exactly where `reason` says why. */
export const GitRecord = z
  .object({
    commit: z.string().regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/).nullable(),
    /** uncommitted changes outside figures/ (where `repro` writes its results) */
    dirty: z.boolean().nullable(),
    /** `git status --porcelain` lines that made it dirty, at most 20 */
    changes: z.array(z.string()).max(20),
    reason: z.string().min(1).optional(),
  })
  .strict()
  .refine((g) => (g.commit === null) === (g.reason !== undefined) && (g.commit === null) === (g.dirty === null), {
    message: 'commit and dirty are null exactly when a reason says why',
  });
export type GitRecord = z.infer<typeof GitRecord>;

export const HostRecord = z
  .object({
    node: z.string(),
    platform: z.string(),
    arch: z.string(),
    /** the first cpu's model name (null where the system does not say) */
    cpu: z.string().nullable(),
    cores: count,
    /** os.availableParallelism(): the threads the process may use */
    parallelism: z.number().int().positive(),
    memoryGiB: z.number().positive(),
  })
  .strict();
export type HostRecord = z.infer<typeof HostRecord>;

/** The backend the main thread chose (src/backend's BackendInfo) and what the worker pools ask for. */
export const BackendRecord = z
  .object({
    name: z.enum(BACKENDS),
    provider: z.string(),
    reason: z.string(),
    /** the BLAS library that runs WebAssembly's matrix products; null: XNNPACK (or not the wasm backend) */
    blas: z.string().nullable(),
    /** the fused head kernels (backend/head-kernels) switched on */
    headKernels: z.boolean(),
    /** threads per op of the main thread's backend */
    threadsPerOp: z.number().int().positive(),
    /** worker threads of the evaluation pool (the config's `workers`, else the cores, at most 2) */
    workers: z.number().int().positive(),
    /** threads per op each pool worker asks for (PTMST_WASM_THREADS, else cores / workers; 1 beside BLAS) */
    workerThreadsPerOp: z.number().int().positive(),
    tfjs: z.string(),
    /** the PTMST_ variables that choose the backend's settings, as set (absent: unset) */
    env: z.record(z.string(), z.string()),
  })
  .strict();
export type BackendRecord = z.infer<typeof BackendRecord>;

const Pick = z
  .object({
    /** the selected checkpoint: [subset, epoch] */
    at: z.tuple([count, count]),
    ...(Object.fromEntries(METRIC_KEYS.map((k) => [k, z.number()])) as Record<(typeof METRIC_KEYS)[number], z.ZodNumber>),
  })
  .strict();
export type Pick = z.infer<typeof Pick>;

/** One student (a full-data row: one expert): its seed, and per selection rule its checkpoint and test metrics. */
export const StudentRecord = z
  .object({
    /** the distillation seed of the student's set (rows with `seeds`) */
    set: count.optional(),
    /** the student's index within its set's evaluation (full data: the expert's index) */
    run: count,
    /** the seed it trained with: deriveSeed(eval.seed, 'student', run); full data: deriveSeed(buffer.seed, 'expert', run) */
    seed: count,
    final: Pick,
    val: Pick,
    test: Pick,
  })
  .strict();
export type StudentRecord = z.infer<typeof StudentRecord>;

/** When and by which code an evaluation was computed (stored with it in runs/…/eval.json). */
export const Computed = z.object({ at: isoTime, commit: GitRecord.shape.commit, dirty: GitRecord.shape.dirty }).strict();
export type Computed = z.infer<typeof Computed>;

/** One evaluated unit of a row (a distillation seed's set, or the row's one set). */
export const UnitRecord = z
  .object({
    set: count.optional(),
    /** read from the runs/ cache instead of computed by this run */
    cached: z.boolean(),
    /** null: a cached result stored before evaluations recorded this */
    computed: Computed.nullable(),
  })
  .strict();
export type UnitRecord = z.infer<typeof UnitRecord>;

/** Every setting a row ran with, defaults filled in, a registry method expanded; paths relative to the workspace. */
export const ResolvedRow = z
  .object({
    model: ModelConfig,
    /** the expert buffer, for rows that read it (distillation, full data, teacher-based coresets, kd) */
    buffer: BufferConfig.optional(),
    /** the evaluation protocol (every row but full data, whose runs are the experts) */
    eval: EvalConfig.optional(),
    /** loss of students trained on real pairs (coresets) */
    realLoss: z.string().optional(),
    /** full data on another dataset's test split */
    testDataset: z.string().optional(),
    /** the distillation config (seed: the first set's; `unrollDropout` resolved) */
    distill: DistillConfig.optional(),
    /** an adaptive schedule's settings (`distill.phases` holds the phases it chose) */
    schedule: AdaptivePhases.optional(),
    /** the distillation seeds, one set each */
    seeds: z.array(count).optional(),
    coreset: z.object({ selection: z.string(), size: z.number().int().positive() }).strict().optional(),
    /** a variant: the row whose sets it evaluates */
    of: z.string().optional(),
  })
  .strict();
export type ResolvedRow = z.infer<typeof ResolvedRow>;

export const RowOrigin = z
  .object({
    name: z.string(),
    kind: z.enum(['distill', 'method', 'coreset', 'full', 'variant']),
    /** this run's time on the row (a cached row: the time to verify and read it) */
    startedAt: isoTime,
    endedAt: isoTime,
    wallSeconds: seconds,
    resolved: ResolvedRow,
    units: z.array(UnitRecord).min(1),
    students: z.array(StudentRecord).min(1),
  })
  .strict();
export type RowOrigin = z.infer<typeof RowOrigin>;

export const Origin = z
  .object({
    package: z.object({ name: z.string(), version: z.string() }).strict(),
    git: GitRecord,
    host: HostRecord,
    backend: BackendRecord,
    startedAt: isoTime,
    endedAt: isoTime,
    wallSeconds: seconds,
    rows: z.array(RowOrigin).min(1),
  })
  .strict();
export type Origin = z.infer<typeof Origin>;

const firstLine = (s: unknown) => String(s ?? '').trim().split('\n')[0] ?? '';

/**
 * The commit and dirty flag of `root` (`git rev-parse HEAD`, `git status --porcelain`, excluding figures/).
 * Never throws: where there is no git, no checkout, or `root` is not the top of one (a package installed inside
 * another repository), commit and dirty are null and `reason` says why.
 */
export function gitRecord(root: string, git = 'git'): GitRecord {
  const run = (...args: string[]) => execFileSync(git, ['-C', root, ...args], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  const none = (reason: string): GitRecord => ({ commit: null, dirty: null, changes: [], reason });
  let top: string;
  try {
    top = run('rev-parse', '--show-toplevel').trim();
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    return none(err.code === 'ENOENT' ? `git is not installed (${git} not found)` : `not a git checkout: ${root} (${firstLine(err.stderr) || err.message})`);
  }
  try {
    if (realpathSync(top) !== realpathSync(root)) return none(`${root} is not the top of a git checkout (it lies inside ${top})`);
    const commit = run('rev-parse', '--verify', 'HEAD').trim();
    const lines = run('status', '--porcelain', '--', '.', ':(exclude)figures').split('\n').filter((l) => l.length > 0);
    return { commit, dirty: lines.length > 0, changes: lines.slice(0, 20) };
  } catch (e) {
    return none(`git could not read ${root} (${firstLine((e as { stderr?: string }).stderr) || (e as Error).message})`);
  }
}

export function hostRecord(): HostRecord {
  const cpu = cpus();
  return {
    node: process.version,
    platform: platform(),
    arch: arch(),
    cpu: cpu[0]?.model.trim() || null,
    cores: cpu.length,
    parallelism: availableParallelism(),
    memoryGiB: +(totalmem() / 2 ** 30).toFixed(1),
  };
}

const BACKEND_ENV = ['PTMST_BACKEND', 'PTMST_BLAS', 'PTMST_WASM_THREADS', 'PTMST_HEAD_KERNELS'] as const;

/** The main thread's backend and what a pool of `workers` threads asks for (util/pool: cores / workers each). */
export function backendRecord(info: BackendInfo, workers: number): BackendRecord {
  const wasm = info.name === 'wasm';
  return {
    name: info.name,
    provider: info.provider,
    reason: info.reason,
    blas: info.blas,
    headKernels: wasm && headKernelsOn(),
    threadsPerOp: info.threads,
    workers,
    workerThreadsPerOp: wasm && info.blas === null ? wasmThreadCount(Math.floor(availableParallelism() / workers)) : 1,
    tfjs: packageVersion('@tensorflow/tfjs'),
    env: Object.fromEntries(BACKEND_ENV.flatMap((k) => (process.env[k] === undefined ? [] : [[k, process.env[k]!]]))),
  };
}

const pick = (checkpoints: readonly Checkpoint[], rule: Selection): Pick => {
  const c = selectCheckpoint(checkpoints, rule);
  return { at: [c.subset, c.epoch], ...(Object.fromEntries(METRIC_KEYS.map((k) => [k, c.test[k]])) as Record<(typeof METRIC_KEYS)[number], number>) };
};

/** One record per student of a unit: what each rule selected, with the student's seed. */
export function studentRecords(checkpoints: readonly (readonly Checkpoint[])[], seedOf: (run: number) => number, set?: number): StudentRecord[] {
  return checkpoints.map((c, run) => ({ ...(set === undefined ? {} : { set }), run, seed: seedOf(run), final: pick(c, 'final'), val: pick(c, 'val'), test: pick(c, 'test') }));
}

/** What `checkOrigin` compares a row's students with: the row as the results file reports it. */
export interface ReportedRow {
  readonly name: string;
  readonly kind: string;
  readonly runs: number;
  readonly selections: Readonly<Record<Selection, MetricSummary>>;
}

/** How far a recomputed mean or std may lie from the reported one (both are full float64 in the file). */
const agrees = (a: number, b: number) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(b));

/**
 * The first way an origin disagrees with the rows it describes, or undefined: one origin row per reported row,
 * in order, with the row's number of students, whose means and sample stds under every rule and metric are
 * the reported ones; times in order.
 */
export function checkOrigin(origin: Origin, rows: readonly ReportedRow[]): string | undefined {
  if (Date.parse(origin.endedAt) < Date.parse(origin.startedAt)) return 'origin: it ended before it started';
  if (origin.rows.length !== rows.length) return `origin: ${origin.rows.length} rows for ${rows.length} methods`;
  for (const [i, row] of rows.entries()) {
    const o = origin.rows[i]!;
    const where = `origin.rows.${i} (${row.name})`;
    if (o.name !== row.name || o.kind !== row.kind) return `${where}: names row "${o.name}" (${o.kind}), the methods list "${row.name}" (${row.kind})`;
    if (Date.parse(o.endedAt) < Date.parse(o.startedAt)) return `${where}: it ended before it started`;
    if (o.students.length !== row.runs) return `${where}: ${o.students.length} student records for ${row.runs} runs`;
    for (const sel of SELECTIONS) {
      for (const k of METRIC_KEYS) {
        const { mean, std } = meanStd(o.students.map((s) => s[sel][k]));
        const reported = row.selections[sel][k];
        if (!agrees(mean, reported.mean) || !agrees(std, reported.std)) {
          const p = (x: number) => +x.toPrecision(12);
          return `${where}: its students give ${k} ${p(mean)} ± ${p(std)} under "${sel}", the row reports ${p(reported.mean)} ± ${p(reported.std)}`;
        }
      }
    }
  }
  return undefined;
}

const duration = (s: number) => (s < 60 ? `${s.toFixed(1)} s` : s < 3600 ? `${Math.floor(s / 60)} min ${Math.round(s % 60)} s` : `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`);
const commitText = (commit: string | null, dirty: boolean | null) => (commit === null ? 'no commit' : `${commit.slice(0, 12)}${dirty ? ' (dirty)' : ''}`);
const backendText = (b: BackendRecord) =>
  `${b.name} (${b.blas ? `products on ${b.blas}` : 'no BLAS'}, head kernels ${b.headKernels ? 'on' : 'off'}, ${b.threadsPerOp} thread${b.threadsPerOp === 1 ? '' : 's'} per op; ${b.workers} worker${b.workers === 1 ? '' : 's'} × ${b.workerThreadsPerOp})`;

/** The one line a results table ends with: commit, dirty, backend, date (undefined without an origin). */
export function provenanceFooter(origin: Origin | undefined): string | undefined {
  if (!origin) return undefined;
  const g = origin.git;
  return `Provenance: commit ${g.commit === null ? `none (${g.reason})` : `${g.commit.slice(0, 12)}${g.dirty ? ', dirty' : ', clean'}`}; ptmst ${origin.package.version}; backend ${backendText(origin.backend)}; Node ${origin.host.node}; written ${origin.endedAt} (${duration(origin.wallSeconds)}).`;
}

/** What `provenanceSummary` reads of a results file (readResults' answer). */
export interface WithOrigin {
  readonly name: string;
  readonly format: number;
  readonly origin?: Origin | undefined;
}

/**
 * A results file's provenance as text (docs generation, notebooks): the code, machine, backend and times, then a
 * line per row (its units' origin, students, wall time, main settings). A format-1 file says it has none.
 */
export function provenanceSummary(file: WithOrigin): string {
  const o = file.origin;
  if (!o) return `figures/${file.name}.json: results format ${file.format}, written before results files recorded provenance (no commit, backend, per-row configuration or per-student records)`;
  const g = o.git;
  const h = o.host;
  const lines = [
    `figures/${file.name}.json: results format ${file.format}, ${o.startedAt} to ${o.endedAt} (${duration(o.wallSeconds)})`,
    `code: ptmst ${o.package.version}, ${g.commit === null ? `no commit (${g.reason})` : `commit ${g.commit}${g.dirty ? ` with uncommitted changes (${g.changes.length}${g.changes.length === 20 ? '+' : ''} paths)` : ', clean'}`}`,
    `machine: Node ${h.node} on ${h.platform}/${h.arch}, ${h.cpu ?? 'unknown cpu'}, ${h.cores} cores (${h.parallelism} usable), ${h.memoryGiB} GiB`,
    `backend: ${backendText(o.backend)}, tfjs ${o.backend.tfjs}${Object.keys(o.backend.env).length ? `; ${Object.entries(o.backend.env).map(([k, v]) => `${k}=${v}`).join(' ')}` : ''}`,
  ];
  for (const r of o.rows) {
    const cached = r.units.filter((u) => u.cached);
    const by = [...new Set(cached.map((u) => (u.computed ? `${commitText(u.computed.commit, u.computed.dirty)} at ${u.computed.at}` : 'an unrecorded commit')))].join(', ');
    const where =
      cached.length === 0 ? 'computed in this run' : cached.length === r.units.length ? `from the cache (computed by ${by})` : `${cached.length} of ${r.units.length} sets from the cache (computed by ${by})`;
    const d = r.resolved.distill;
    const settings = d
      ? `${r.resolved.schedule ? `adaptive phases (${d.phases.map((p) => `${p.source === 'experts' ? 'experts' : `ST [${p.source[0]}, ${p.source[1]})`} starts ${p.start[0]}–${p.start[1]}`).join(', ')}): ` : ''}${d.phases.map((p) => `${p.size}×${p.iterations}`).join(' + ')} pairs×iterations, ${d.gradient}, S ${d.similarity}, EMA ${d.ema}, lr X/Y/S/α ${d.lrX}/${d.lrY}/${d.lrS}/${d.lrAlpha}, ${d.synSteps} steps × ${d.batchSyn}`
      : r.resolved.coreset
        ? `${r.resolved.coreset.selection} coreset of ${r.resolved.coreset.size}`
        : r.kind === 'full'
          ? `experts: ${r.resolved.buffer?.numExperts} × ${r.resolved.buffer?.epochs} epochs`
          : '';
    const ev = r.resolved.eval;
    lines.push(
      `- ${r.name} (${r.kind}${r.resolved.of ? ` of ${r.resolved.of}` : ''}): ${r.students.length} ${r.kind === 'full' ? 'experts' : 'students'}${ev ? `, ${ev.epochs} epochs each` : ''}; ` +
        `${where}, ${duration(r.wallSeconds)}` +
        (settings ? `; ${settings}` : ''),
    );
  }
  return lines.join('\n');
}

/** This package's name and version, from the package.json at `root`. */
export function packageRecord(root = PACKAGE_ROOT): { name: string; version: string } {
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { name: string; version: string };
  return { name: pkg.name, version: pkg.version };
}
