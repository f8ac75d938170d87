/**
 * `npm run bench [-- --quick]`: wall time and peak RSS of this project's hot paths, next to a PyTorch peer
 * (bench/peer.py) on the same inputs, written to `bench/results/<date>-<host>.json` and `.md` (quick runs:
 * `<date>-<host>.quick.*`) and printed as a Markdown table.
 *
 * Every repetition is a fresh child process that reads the inputs, warms up once (the same work, or for the
 * expert epoch a few batches of the same shapes) and times the work once; ours and the peer's repetitions
 * alternate (ours, peer, ours, peer, …), so a slow spell of a shared machine hits both sides alike. `--quick`
 * runs every case at small sizes and checks the peer's gradients against ours (fails loudly above 1e-3).
 *
 * `--scale`: the CC3M-scale benchmark instead (bench/scale.ts).
 *
 * Options: --quick · --reps N (default 5; quick 2) · --peer-threads N (default 2) · --no-peer ·
 * --only SUBSTRING (cases whose id contains it) · --data-root DIR (photos for feature extraction; default
 * $PTMST_DATA_ROOT, else ../shared/data) · --out DIR (default bench/results) · --seed N · --keep-inputs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, hostname, loadavg, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { ready } from '../src/backend';
import { writeAtomic } from '../src/store/atomic';
import { type BenchCase, type GradcheckCase, type IterationCase, type PlannedCase, plan } from './cases';
import type { ChildResult } from './child';
import { iterationFlops, sgemmFlops } from './flops';
import { writeEvalInputs, writeExpertInputs, writeIterationInputs } from './inputs';
import { PEER_PYTHON, ensurePeer, parseResult, peerEnv, runProcess } from './processes';
import { type CaseReport, type CheckReport, type Side, freeStem, gflops, measured, ratio, reportMarkdown } from './report';
import { scaleSummary, summarise } from './stats';

/** Repository root (this file runs from dist/bench/). */
const REPO = resolve(__dirname, '..', '..');
const PEER_SCRIPT = join(REPO, 'bench', 'peer.py');
/** The gradient check fails above this max relative error against the peer in float64. */
export const GRAD_TOLERANCE = 1e-3;
/** A child that runs longer than this is killed (a full evaluation run takes minutes on a busy machine). */
const CHILD_TIMEOUT_MS = 60 * 60 * 1000;

interface PeerInfo {
  readonly python: string;
  readonly torch: string;
  readonly numpy: string;
  readonly threads: number;
  readonly blasLibraries: readonly string[];
  readonly torchConfig: string;
  readonly parallelInfo: string;
  readonly numpyConfig: string;
}

const log = (line: string) => process.stderr.write(line + '\n');

/** torch's build-time BLAS setting and the BLAS libraries actually mapped into the peer's process. */
function blasLine(p: PeerInfo): string {
  const built = /BLAS_INFO=([^,\s]+)/.exec(p.torchConfig)?.[1] ?? 'unknown';
  return `torch built with BLAS_INFO=${built}; BLAS mapped at run time: ${p.blasLibraries.join(', ') || 'none'}`;
}

function options() {
  const { values } = parseArgs({
    options: {
      quick: { type: 'boolean', default: false },
      reps: { type: 'string' },
      'peer-threads': { type: 'string', default: '2' },
      'no-peer': { type: 'boolean', default: false },
      only: { type: 'string' },
      'data-root': { type: 'string' },
      out: { type: 'string', default: join(REPO, 'bench', 'results') },
      seed: { type: 'string', default: '0' },
      'keep-inputs': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const int = (name: string, v: string | undefined, fallback: number, min = 1) => {
    const n = v === undefined ? fallback : Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: ${v} is not an integer >= ${min}`);
    return n;
  };
  return {
    quick: values.quick!,
    reps: int('reps', values.reps, values.quick ? 2 : 5),
    peerThreads: int('peer-threads', values['peer-threads'], 2),
    peer: !values['no-peer'],
    only: values.only,
    dataRoot: values['data-root'] ?? (process.env.PTMST_DATA_ROOT || resolve(REPO, '..', 'shared', 'data')),
    out: resolve(values.out!),
    seed: int('seed', values.seed, 0, 0),
    keepInputs: values['keep-inputs']!,
  };
}

/** Flickr8k photos for the feature-extraction case, or why there are none. */
function photos(dataRoot: string): readonly string[] | { skipped: string } {
  const dir = join(dataRoot, 'flickr8k', 'images');
  if (!existsSync(dir)) return { skipped: `no Flickr8k photos at ${dir} (set PTMST_DATA_ROOT or --data-root to a folder holding flickr8k/)` };
  const files = readdirSync(dir).filter((f) => f.endsWith('.jpg')).sort();
  return files.length > 0 ? files.map((f) => join(dir, f)) : { skipped: `no .jpg files in ${dir}` };
}

function gitCommit(): string {
  try {
    return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return 'unknown';
  }
}

const ours = (c: BenchCase) => runProcess(process.execPath, [join(__dirname, 'child.js'), JSON.stringify(c)], process.env, CHILD_TIMEOUT_MS);
const peer = (command: 'info' | 'run' | 'check', threads: number, c?: BenchCase) =>
  runProcess(PEER_PYTHON, [PEER_SCRIPT, command, ...(c ? [JSON.stringify(c)] : []), '--threads', String(threads)], peerEnv(threads), CHILD_TIMEOUT_MS);

/** Our gradients of one iteration against the peer's (float64 and float32). */
async function gradcheck(c: GradcheckCase, threads: number): Promise<CheckReport> {
  parseResult(`ours ${c.id}`, await ours(c));
  const r = parseResult<{ errors: CheckReport['errors'] }>(`peer ${c.id}`, await peer('check', threads, c));
  return { label: `${c.iteration.mode}, ${c.iteration.similarity} S, d ${c.iteration.width}, N ${c.iteration.n}`, errors: r.errors };
}

type Runs = { ok: ChildResult[] } | { failed: string };

function side(runs: Runs | undefined, why: string, scale: number): Side & { warmupSeconds?: number[]; baseRssMiB?: number[] } {
  if (runs === undefined) return { skipped: why };
  if ('failed' in runs) return { skipped: `failed: ${runs.failed}` };
  const seconds = runs.ok.map((r) => r.seconds * scale);
  return {
    seconds,
    time: summarise(seconds),
    peakRssMiB: scaleSummary(summarise(runs.ok.map((r) => r.peakRssKiB)), 1 / 1024),
    runtime: runs.ok[0]!.runtime,
    warmupSeconds: runs.ok.map((r) => r.warmupSeconds),
    baseRssMiB: runs.ok.map((r) => r.baseRssKiB / 1024),
  };
}

/** From a child's timed seconds to the row's unit: per 100 images (features), per iteration (the mean of the timed ones). */
function unitScale(spec: PlannedCase['spec']): number {
  if (spec.kind === 'features') return 100 / spec.images.length;
  if (spec.kind === 'iteration') return 1 / spec.timedIterations;
  return 1;
}

/** Repetitions of one case, ours and the peer's alternating. */
async function measure(p: PlannedCase, reps: number, peerThreads: number | undefined): Promise<{ ours?: Runs; peer?: Runs }> {
  const runs: { ours?: Runs; peer?: Runs } = {};
  const sides = [...(p.ours ? (['ours'] as const) : []), ...(p.peer === true && peerThreads !== undefined ? (['peer'] as const) : [])];
  for (const s of sides) runs[s] = { ok: [] };
  for (let rep = 0; rep < reps; rep++) {
    const line: string[] = [];
    for (const s of sides) {
      const r = runs[s]!;
      if ('failed' in r) continue;
      try {
        const out = s === 'ours' ? await ours(p.spec) : await peer('run', peerThreads!, p.spec);
        const res = parseResult<ChildResult>(`${s} ${p.spec.id}`, out);
        r.ok.push(res);
        line.push(`${s} ${(res.seconds * unitScale(p.spec)).toFixed(3)} s, ${(res.peakRssKiB / 1024).toFixed(0)} MiB`);
      } catch (e) {
        runs[s] = { failed: (e as Error).message.split('\n').slice(-1)[0]! };
        log(`[bench] ${(e as Error).message}`);
      }
    }
    log(`[bench] ${p.spec.id} rep ${rep + 1}/${reps}: ${line.join(' · ')}`);
  }
  return runs;
}

/** A case as the results file records it: without the temporary input path, photos as a count. */
function recordedSpec(c: BenchCase): Record<string, unknown> {
  const { file: _file, ...rest } = c as BenchCase & { file?: string };
  return c.kind === 'features' ? { ...rest, images: c.images.length } : rest;
}

function flopsOf(c: BenchCase): number | undefined {
  if (c.kind === 'sgemm') return sgemmFlops(c.n);
  if (c.kind === 'iteration') {
    return iterationFlops({ dImg: c.dImg, dTxt: c.dTxt, width: c.width, batch: c.batch, synSteps: c.synSteps, rank: c.similarity === 'lowrank' ? c.rank : 0 }, c.mode);
  }
  return undefined;
}

type Options = ReturnType<typeof options>;

async function main(): Promise<void> {
  const o = options();
  const work = mkdtempSync(join(tmpdir(), 'ptmst-bench-'));
  const cleanUp = () => {
    if (!o.keepInputs) rmSync(work, { recursive: true, force: true });
    else log(`[bench] inputs kept in ${work}`);
  };
  // stopped by a signal: the inputs go too (a running child fails on its missing files), no result is written
  for (const [signal, code] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      log(`[bench] stopped by ${signal}; no results written`);
      cleanUp();
      process.exit(code);
    });
  }
  try {
    await bench(o, work);
  } finally {
    cleanUp();
  }
}

/** How the iteration rows are timed (the same for ours and the peer), when there are any. */
function iterationRule(it: IterationCase | undefined): string[] {
  return it ? [`iteration rows: the mean of ${it.timedIterations} iteration(s) after ${it.warmIterations} warm-up iteration(s) in each process, both sides`] : [];
}

/** The whole run: peer set-up, inputs, gradient check (quick), the cases, the report; throws on any failure. */
async function bench(o: Options, work: string): Promise<void> {
  const started = new Date();
  const commit = gitCommit(); // the code that runs, read once at the start
  const loadStart = loadavg();
  const backend = await ready(() => undefined);
  const p = plan({ quick: o.quick, work, images: photos(o.dataRoot) });
  const cases = p.cases.filter((c) => o.only === undefined || c.spec.id.includes(o.only));
  const checks = p.gradchecks.filter((c) => o.only === undefined || c.iteration.id.includes(o.only));
  const iterationCase = cases.map((c) => c.spec).find((s): s is IterationCase => s.kind === 'iteration');
  if (cases.length === 0 && checks.length === 0) {
    throw new Error(`--only ${o.only}: no case id contains it; the ids: ${p.cases.map((c) => c.spec.id).join(', ')}`);
  }

  // the peer: packages present (installed when root), its versions and BLAS
  let peerInfo: PeerInfo | { skipped: string } = { skipped: '--no-peer' };
  if (o.peer) {
    const ok = ensurePeer(log);
    if (!ok.ok) throw new Error(`${ok.why}\n(or rerun with --no-peer to measure this project alone)`);
    peerInfo = parseResult<PeerInfo>('peer info', await peer('info', o.peerThreads));
  }
  const peerThreads = 'skipped' in peerInfo ? undefined : o.peerThreads;
  if (!('skipped' in peerInfo)) log(`[bench] peer: torch ${peerInfo.torch}, numpy ${peerInfo.numpy}, ${peerInfo.threads} thread(s); ${blasLine(peerInfo)}`);

  // inputs from fixed seeds, written once, read by both sides
  const needs = new Set(cases.map((c) => c.spec.kind));
  for (const it of p.iterationInputs) {
    if (cases.some((c) => c.spec.kind === 'iteration' && c.spec.file === it.file) || checks.some((c) => c.iteration.file === it.file)) await writeIterationInputs(it, o.seed);
  }
  if (needs.has('expert')) await writeExpertInputs(p.expert, o.seed);
  if (needs.has('eval') || needs.has('retrieval')) await writeEvalInputs(p.eval, o.seed);

  const checkReports: CheckReport[] = [];
  if (peerThreads !== undefined) {
    for (const c of checks) {
      const r = await gradcheck(c, peerThreads);
      checkReports.push(r);
      const worst = Math.max(...Object.values(r.errors).map((e) => e.f64));
      log(`[bench] gradient check ${r.label}: max relative error ${worst.toExponential(2)} against float64`);
    }
  }

  const reports: (CaseReport & { kind: string; spec: BenchCase; ours: Side; peer: Side })[] = [];
  for (const c of cases) {
    const runs = await measure(c, o.reps, peerThreads);
    const scale = unitScale(c.spec);
    const peerWhy = c.peer === true ? 'no peer (--no-peer)' : c.peer.skipped;
    const flops = flopsOf(c.spec);
    reports.push({
      id: c.spec.id,
      label: c.label,
      kind: c.spec.kind,
      spec: c.spec,
      ...(flops !== undefined ? { flops } : {}),
      ours: side(runs.ours, 'peer-only row', scale),
      peer: side(runs.peer, peerWhy, scale),
    });
  }

  const loadEnd = loadavg();
  // each side's own SGEMM rate: tfjs on our backend, torch on the peer's BLAS
  const sgemmRow = reports.find((r) => r.spec.kind === 'sgemm' && r.spec.library === 'torch');
  const sgemm = sgemmRow ? { ours: gflops(sgemmRow, sgemmRow.ours), peer: gflops(sgemmRow, sgemmRow.peer) } : {};
  const oursRuntime = reports.map((r) => r.ours).find(measured)?.runtime ?? `tfjs ${backend.name}`;
  const failedChecks = checkReports.filter((c) => Object.values(c.errors).some((e) => !(e.f64 <= GRAD_TOLERANCE)));
  const cpu = cpus()[0]?.model ?? 'unknown CPU';
  const header = [
    `${started.toISOString()} on ${hostname()}: ${cpu}, ${availableParallelism()} cores, ${(totalmem() / 2 ** 30).toFixed(1)} GiB; commit ${commit}`,
    // the end's load counts the bench's own processes (the peer runs on two threads), so only the start's says whether
    // something else was running
    `load average (1 min) at start ${loadStart[0]!.toFixed(2)}${loadStart[0]! > 0.5 ? ' — the machine was busy: these timings are not representative' : ''}; at the end ${loadEnd[0]!.toFixed(2)}, the bench's own processes included`,
    `mode ${o.quick ? 'quick (small sizes: a smoke test, not a measurement)' : 'full'}; ${o.reps} repetition(s) per side, each a fresh process after one warm-up; ours and the peer alternate`,
    ...iterationRule(iterationCase),
    `ours: node ${process.version}, ${oursRuntime}`,
    'skipped' in peerInfo
      ? `peer: skipped (${peerInfo.skipped})`
      : `peer: ${PEER_PYTHON} ${peerInfo.python}, torch ${peerInfo.torch}, numpy ${peerInfo.numpy}, ${peerInfo.threads} thread(s), OMP_WAIT_POLICY=${peerEnv(o.peerThreads).OMP_WAIT_POLICY}; ${blasLine(peerInfo)}`,
    'ours / peer: ratio of median times (above 1: the peer is faster); GFLOP/s: analytic matrix-product FLOPs (bench/flops.ts) / median time, in brackets the share of that side\'s SGEMM row',
  ];
  const markdown = reportMarkdown({
    title: `ptmst benchmark (${o.quick ? 'quick' : 'full'})`,
    header,
    cases: reports,
    sgemm,
    skipped: p.skipped,
    checks: checkReports,
    tolerance: GRAD_TOLERANCE,
  });
  const base = `${started.toISOString().slice(0, 10)}-${hostname().replace(/[^A-Za-z0-9._-]/g, '_')}-${commit}${o.quick ? '.quick' : ''}`;
  mkdirSync(o.out, { recursive: true });
  const stem = freeStem(o.out, base);
  const json = {
    format: 'ptmst.bench/1',
    mode: o.quick ? 'quick' : 'full',
    date: started.toISOString(),
    host: hostname(),
    commit,
    machine: { cpu, cores: availableParallelism(), memoryGiB: totalmem() / 2 ** 30, loadAverageStart: loadStart, loadAverageEnd: loadEnd },
    settings: {
      reps: o.reps,
      warmup: 1,
      // the iteration rows' own rule (iterationRule): warm-up and timed iterations per process
      iterations: iterationCase ? { warm: iterationCase.warmIterations, timed: iterationCase.timedIterations } : null,
      seed: o.seed,
      peerThreads: o.peerThreads,
      only: o.only ?? null,
    },
    ours: { node: process.version, backend: backend.name, runtime: oursRuntime },
    peer: peerInfo,
    sgemmGflops: sgemm,
    cases: reports.map((r) => ({ ...r, spec: recordedSpec(r.spec), ratio: ratio(r) ?? null, gflops: { ours: gflops(r, r.ours) ?? null, peer: gflops(r, r.peer) ?? null } })),
    skipped: p.skipped,
    gradcheck: { tolerance: GRAD_TOLERANCE, checks: checkReports },
  };
  await writeAtomic(join(o.out, `${stem}.json`), JSON.stringify(json, null, 2) + '\n');
  await writeAtomic(join(o.out, `${stem}.md`), markdown);
  process.stdout.write(markdown);
  log(`[bench] wrote ${join(o.out, `${stem}.json`)} and .md`);

  const failedRuns = reports.filter((r) => [r.ours, r.peer].some((s) => 'skipped' in s && s.skipped.startsWith('failed')));
  if (failedChecks.length > 0) {
    throw new Error(`GRADIENT CHECK FAILED: ours differs from the peer by more than ${GRAD_TOLERANCE} (relative) in ${failedChecks.map((c) => c.label).join('; ')}`);
  }
  if (failedRuns.length > 0) throw new Error(`some repetitions failed: ${failedRuns.map((r) => r.id).join(', ')}`);
}

if (require.main === module) {
  // `npm run bench -- --scale …`: the CC3M-scale benchmark (bench/scale.ts)
  (process.argv.includes('--scale') ? (require('./scale') as typeof import('./scale')).scaleMain() : main()).catch((e: unknown) => {
    process.stderr.write(`[bench] ${(e as Error).message}\n`);
    process.exit(1);
  });
}
