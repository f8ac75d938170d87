/**
 * `npm run bench -- --scale [--sizes 50000,150000,600000] [--dims 2304,768] [--stages …] [--stage-timeout S]
 * [--work DIR] [--out DIR]`: the CC3M-scale benchmark. For each size N it generates the planted-structure set
 * (src/features/planted.ts: N pairs of paired Gaussian clusters, written as the `cc3m` data set straight into the
 * feature cache), then runs each stage in a fresh child process and records its wall time and peak RSS
 * (`process.resourceUsage().maxRSS` in the child: the CLI's `--json` summary, or bench/scale-child.ts):
 * features write (generation) and read (the three splits, verified), `ptmst buffer` (1 expert × 1 epoch), one
 * distillation iteration (`ptmst distill`, one phase, 1 iteration, 100 pairs), one evaluation run (`ptmst eval
 * --random 100`, 1 student), and the k-means, herding and k-center coresets (100 pairs). Per stage it fits the
 * growth exponent against N (least-squares slope of log time and log RSS on log N) and the peak RSS over the
 * fp32 bytes of the features the stage reads (the issue's target: ≤ 1.3). The load average (shared machine) is
 * recorded before each stage. Results: bench/results/<date>-<host>.scale.json and .md, with the commit (and
 * dirty flag) that ran; a later invocation on the same day and host with the same dims adds its sizes to that
 * file (one size at a time, or a crashed size rerun alone, still gives one table; every commit is named).
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, loadavg, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { gitRecord } from '../src/pipeline/origin';
import { writeAtomic } from '../src/store/atomic';

const REPO = resolve(__dirname, '..', '..');
const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const CHILD = join(__dirname, 'scale-child.js');
const log = (line: string) => process.stderr.write(line + '\n');

export const SCALE_STAGES = ['write', 'read', 'buffer', 'distill', 'eval', 'kmeans', 'herding', 'kcenter'] as const;
type Stage = (typeof SCALE_STAGES)[number];

export interface StageResult {
  readonly stage: Stage;
  readonly pairs: number;
  readonly wallSeconds: number | null;
  /** the stage's own work, loading excluded: a distillation's phases, a coreset's selection (null: not reported) */
  readonly workSeconds?: number | null;
  readonly peakRssMiB: number | null;
  /** peak RSS / fp32 bytes of the features the stage reads (all splits) */
  readonly rssOverFeatures: number | null;
  readonly load1: number;
  readonly status: 'ok' | 'timeout' | 'failed';
  readonly note?: string;
  /** the commit that ran it (null outside a checkout), and whether the tree had changes */
  readonly commit?: string | null;
  readonly dirty?: boolean | null;
}

/** Least-squares slope of log y on log x (null with fewer than two usable points). */
export function logLogSlope(points: readonly { x: number; y: number | null }[]): number | null {
  const p = points.filter((q): q is { x: number; y: number } => q.y !== null && q.y > 0 && q.x > 0).map((q) => [Math.log(q.x), Math.log(q.y)] as const);
  if (p.length < 2) return null;
  const mx = p.reduce((s, [x]) => s + x, 0) / p.length;
  const my = p.reduce((s, [, y]) => s + y, 0) / p.length;
  const sxx = p.reduce((s, [x]) => s + (x - mx) ** 2, 0);
  if (sxx === 0) return null;
  return p.reduce((s, [x, y]) => s + (x - mx) * (y - my), 0) / sxx;
}

/** Run a child; its summary is the JSON file it writes (wallSeconds, peakRssMiB). */
type Summary = { wallSeconds: number; peakRssMiB: number; distillSeconds?: number; selectSeconds?: number };
function runChild(args: string[], cwd: string, json: string, timeoutS: number): Promise<{ status: 'ok' | 'timeout' | 'failed'; summary?: Summary; tail: string }> {
  return new Promise((done) => {
    rmSync(json, { force: true });
    const child = spawn(process.execPath, args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let tail = '';
    child.stderr.on('data', (d: Buffer) => void (tail = (tail + d.toString()).slice(-2000)));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutS * 1000);
    child.on('close', (code) => {
      clearTimeout(timer);
      if (timedOut) return done({ status: 'timeout', tail });
      if (code !== 0 || !existsSync(json)) return done({ status: 'failed', tail });
      done({ status: 'ok', summary: JSON.parse(readFileSync(json, 'utf8')) as Summary, tail });
    });
  });
}

function options() {
  const { values } = parseArgs({
    options: {
      scale: { type: 'boolean', default: true },
      sizes: { type: 'string', default: '50000,150000,600000' },
      dims: { type: 'string', default: '2304,768' },
      stages: { type: 'string', default: SCALE_STAGES.join(',') },
      'stage-timeout': { type: 'string', default: '1800' },
      work: { type: 'string' },
      out: { type: 'string', default: join(REPO, 'bench', 'results') },
      'keep-inputs': { type: 'boolean', default: false },
    },
    strict: true,
  });
  const ints = (name: string, v: string) =>
    v.split(',').map((s) => {
      const n = Number(s);
      if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: ${s} is not an integer >= 1`);
      return n;
    });
  const stages = values.stages!.split(',') as Stage[];
  for (const s of stages) if (!SCALE_STAGES.includes(s)) throw new Error(`--stages: unknown stage ${s}; valid: ${SCALE_STAGES.join(', ')}`);
  const [dImg, dTxt] = ints('dims', values.dims!);
  if (dImg === undefined || dTxt === undefined) throw new Error('--dims: give two sizes, image,text');
  return {
    sizes: ints('sizes', values.sizes!),
    dImg,
    dTxt,
    stages,
    timeoutS: ints('stage-timeout', values['stage-timeout']!)[0]!,
    work: values.work ?? join(REPO, '.bench-scale'),
    out: values.out!,
    keep: values['keep-inputs']!,
  };
}

export async function scaleMain(): Promise<void> {
  const o = options();
  const started = new Date();
  const git = gitRecord(REPO);
  const results: StageResult[] = earlierResults(o, started);
  for (const pairs of o.sizes) {
    const ws = join(o.work, `n${pairs}`);
    rmSync(ws, { recursive: true, force: true });
    mkdirSync(ws, { recursive: true });
    const featureBytes = pairs * (o.dImg + o.dTxt) * 4;
    const config = {
      name: 'scale-bench',
      description: 'npm run bench -- --scale: the planted-structure set as cc3m',
      data: { dataset: 'cc3m', imageEncoder: 'planted-img', textEncoder: 'planted-txt' },
      buffer: { numExperts: 1, epochs: 1 },
      eval: { runs: 1 },
      distill: { phases: [{ source: [0, 2], start: [0, 0], size: 100, iterations: 1 }] },
    };
    writeFileSync(join(ws, 'config.json'), JSON.stringify(config, null, 2));
    const common = ['--config', 'config.json', '--data-root', 'root', '--cache-dir', 'cache', '--workspace', '.', '--no-progress'];
    const argsOf: Record<Stage, string[]> = {
      write: [CHILD, 'write', String(pairs), String(o.dImg), String(o.dTxt), 'root', 'cache'],
      read: [CHILD, 'read', 'root', 'cache'],
      buffer: [CLI, 'buffer', ...common],
      distill: [CLI, 'distill', ...common],
      eval: [CLI, 'eval', ...common, '--random', '100', '--runs', '1'],
      kmeans: [CLI, 'coreset', ...common, '--method', 'kmeans', '--size', '100', '--out', 'kmeans.json'],
      herding: [CLI, 'coreset', ...common, '--method', 'herding', '--size', '100', '--out', 'herding.json'],
      kcenter: [CLI, 'coreset', ...common, '--method', 'kcenter', '--size', '100', '--out', 'kcenter.json'],
    };
    const stages = o.stages.includes('write') ? o.stages : (['write', ...o.stages] as Stage[]);
    for (const stage of stages) {
      const load1 = loadavg()[0]!;
      const json = join(ws, `${stage}.summary.json`);
      const r = await runChild([...argsOf[stage], ...(stage === 'write' || stage === 'read' ? [json] : ['--json', json])], ws, json, o.timeoutS);
      const rss = r.summary?.peakRssMiB ?? null;
      const res: StageResult = {
        stage,
        pairs,
        wallSeconds: r.summary?.wallSeconds ?? null,
        workSeconds: r.summary?.distillSeconds ?? r.summary?.selectSeconds ?? null,
        peakRssMiB: rss,
        rssOverFeatures: rss === null ? null : (rss * 2 ** 20) / featureBytes,
        load1,
        status: r.status,
        commit: git.commit,
        dirty: git.dirty,
        ...(r.status === 'ok' ? {} : { note: r.status === 'timeout' ? `killed after ${o.timeoutS} s` : r.tail.trim().split('\n').slice(-2).join(' | ') }),
      };
      results.push(res);
      log(`[bench:scale] N=${pairs} ${stage}: ${res.status} ${res.wallSeconds?.toFixed(1) ?? '-'} s, ${rss?.toFixed(0) ?? '-'} MiB (${res.rssOverFeatures?.toFixed(2) ?? '-'}× features), load ${load1.toFixed(2)}${res.note ? ` — ${res.note}` : ''}`);
      if (stage === 'write' && r.status !== 'ok') break;
      await writeReport(o, started, results);
    }
    if (!o.keep) rmSync(ws, { recursive: true, force: true });
  }
  const stem = await writeReport(o, started, results);
  log(`[bench:scale] wrote ${join(o.out, stem)}.json and .md`);
}

const stemOf = (started: Date) => `${started.toISOString().slice(0, 10)}-${hostname()}.scale`;

/**
 * This day's report on this host, when it has the same dims: its results for the sizes not rerun now, each with
 * the commit it ran at (the table names every commit; a result recorded without one is dropped).
 */
function earlierResults(o: ReturnType<typeof options>, started: Date): StageResult[] {
  const file = join(o.out, `${stemOf(started)}.json`);
  if (!existsSync(file)) return [];
  const old = JSON.parse(readFileSync(file, 'utf8')) as { dims?: { img: number; txt: number }; results?: StageResult[] };
  if (old.dims?.img !== o.dImg || old.dims.txt !== o.dTxt) return [];
  const kept = (old.results ?? []).filter((r) => !o.sizes.includes(r.pairs) && typeof r.commit === 'string');
  if (kept.length > 0) log(`[bench:scale] keeping ${kept.length} results of ${file} (sizes ${[...new Set(kept.map((r) => r.pairs))].join(', ')})`);
  return kept;
}

async function writeReport(o: ReturnType<typeof options>, started: Date, results: StageResult[]): Promise<string> {
  const stem = stemOf(started);
  const stages = [...new Set(results.map((r) => r.stage))];
  const slopes = Object.fromEntries(
    stages.map((s) => {
      const rs = results.filter((r) => r.stage === s && r.status === 'ok');
      return [
        s,
        {
          wall: logLogSlope(rs.map((r) => ({ x: r.pairs, y: r.wallSeconds }))),
          work: logLogSlope(rs.map((r) => ({ x: r.pairs, y: r.workSeconds ?? null }))),
          rss: logLogSlope(rs.map((r) => ({ x: r.pairs, y: r.peakRssMiB }))),
        },
      ];
    }),
  );
  const sizes = [...new Set(results.map((r) => r.pairs))].sort((a, b) => a - b);
  const commits = [...new Set(results.map((r) => `${r.commit ?? 'no commit'}${r.dirty ? ' (uncommitted changes)' : ''} (N = ${results.filter((q) => q.commit === r.commit).map((q) => q.pairs).filter((n, i, a) => a.indexOf(n) === i).join(', ')})`))];
  const report = { started: started.toISOString(), host: hostname(), totalMemGiB: totalmem() / 2 ** 30, dims: { img: o.dImg, txt: o.dTxt }, sizes, commits, results, slopes };
  mkdirSync(o.out, { recursive: true });
  const f = (v: number | null | undefined, d = 1) => (v === null || v === undefined ? '–' : v.toFixed(d));
  const lines = [
    `# Scale benchmark ${started.toISOString()} on ${hostname()}`,
    '',
    `Commit ${commits.join(', ')}. Planted-structure set, dims ${o.dImg} + ${o.dTxt}; per stage the process's wall seconds (in brackets the stage's own work, loading excluded, where it reports it: a distillation's phases, a coreset's selection) / peak RSS MiB (× fp32 feature bytes of all splits), load average (1 min) at its start; exponents are log-log slopes against N (time: wall, then work).`,
    '',
    `| stage | ${sizes.map((n) => `N = ${n}`).join(' | ')} | exponent (time) | exponent (RSS) |`,
    `|---|${sizes.map(() => '---').join('|')}|---|---|`,
    ...stages.map((s) => {
      const cells = sizes.map((n) => {
        const r = results.find((q) => q.stage === s && q.pairs === n);
        if (r === undefined) return '';
        if (r.status !== 'ok') return `${r.status}${r.note && r.status === 'timeout' ? ` (${r.note})` : ''}`;
        const work = r.workSeconds === null || r.workSeconds === undefined ? '' : ` (${f(r.workSeconds)} s)`;
        return `${f(r.wallSeconds)} s${work} / ${f(r.peakRssMiB, 0)} MiB (${f(r.rssOverFeatures, 2)}×), load ${f(r.load1, 2)}`;
      });
      const work = slopes[s]?.work === null || slopes[s]?.work === undefined ? '' : ` (${f(slopes[s]?.work, 2)})`;
      return `| ${s} | ${cells.join(' | ')} | ${f(slopes[s]?.wall, 2)}${work} | ${f(slopes[s]?.rss, 2)} |`;
    }),
    '',
    ...results.filter((r) => r.status === 'failed').map((r) => `- N = ${r.pairs} ${r.stage} failed: ${r.note ?? ''}`),
  ];
  await writeAtomic(join(o.out, `${stem}.json`), JSON.stringify(report, null, 2) + '\n');
  await writeAtomic(join(o.out, `${stem}.md`), lines.join('\n') + '\n');
  return stem;
}
