import { strict as assert } from 'node:assert';
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptFileError } from '../../src/errors';
import type { Checkpoint } from '../../src/evaluate/student';
import { checkpointCurve, summariseRuns } from '../../src/evaluate/summary';
import type { Retrieval } from '../../src/model/retrieval';
import { type Origin, checkOrigin, gitRecord, hostRecord, provenanceFooter, provenanceSummary, studentRecords } from '../../src/pipeline/origin';
import { ReproConfig, readResults } from '../../src/pipeline/repro';
import { sha256 } from '../../src/store/atomic';
import { REPO, tempDir } from '../helpers';

const metrics = (r: number): Retrieval => ({ ir1: r / 4, ir5: r / 2, ir10: r, tr1: r / 3, tr5: r / 1.5, tr10: r * 1.2, rMean: r * 0.7 });
/** a student with checkpoints at epochs 0, 10, 20: test r peaks at 10 on test, val peaks at 20 */
const student = (base: number): Checkpoint[] => [
  { subset: 0, epoch: 0, val: metrics(base), test: metrics(base) },
  { subset: 0, epoch: 10, val: metrics(base + 1), test: metrics(base + 6) },
  { subset: 0, epoch: 20, val: metrics(base + 2), test: metrics(base + 3) },
];
const runs = [student(10), student(20), student(30)];

/** A hand-made format-2 results file of one random-coreset row with three students. */
function format2(): Record<string, unknown> {
  const config = ReproConfig.omit({ workspace: true, force: true }).parse({ name: 'unit', data: { dataset: 'shapes' }, methods: [{ name: 'random-2', kind: 'coreset', size: 2 }] });
  const methods = [{ name: 'random-2', kind: 'coreset', pairs: 2, runs: 3, selections: summariseRuns(runs), wallSeconds: 1.5, curve: checkpointCurve(runs) }];
  const origin: Origin = {
    package: { name: 'ptmst', version: '0.1.0' },
    git: { commit: 'a1'.repeat(20), dirty: true, changes: [' M src/x.ts'] },
    host: hostRecord(),
    backend: { name: 'wasm', provider: '@tensorflow/tfjs-backend-wasm', reason: 'fastest backend present', blas: null, headKernels: true, threadsPerOp: 1, workers: 2, workerThreadsPerOp: 1, tfjs: '4.22.0', env: { PTMST_BLAS: 'off' } },
    startedAt: '2025-01-02T03:04:05.000Z',
    endedAt: '2025-01-02T03:06:15.500Z',
    wallSeconds: 130.5,
    rows: [
      {
        name: 'random-2',
        kind: 'coreset',
        startedAt: '2025-01-02T03:04:06.000Z',
        endedAt: '2025-01-02T03:04:07.500Z',
        wallSeconds: 1.5,
        resolved: { model: config.model, eval: config.eval, realLoss: 'infonce', coreset: { selection: 'random', size: 2 } },
        units: [{ cached: false, computed: { at: '2025-01-02T03:04:07.400Z', commit: 'a1'.repeat(20), dirty: true } }],
        students: studentRecords(runs, (r) => 100 + r),
      },
    ],
  };
  return { format: 2, name: 'unit', provenance: ['data: shapes'], config, methods, origin };
}

const withDigest = (file: Record<string, unknown>) => JSON.stringify({ ...file, sha256: sha256(JSON.stringify(file)) });
function write(file: Record<string, unknown>, name = 'unit'): string {
  const dir = tempDir('ptmst-results-');
  const path = join(dir, `${name}.json`);
  writeFileSync(path, withDigest(file));
  return path;
}
const refused = (pattern: RegExp) => (e: unknown) => e instanceof CorruptFileError && pattern.test(e.message);
type Mutable = { origin: { rows: { students: { final: { rMean: number } }[] }[]; git: Record<string, unknown> } };

describe('results files: provenance (format 2) and older files', () => {
  it('every committed figures/*.json reads: format 1 without provenance, the two written before checksums refused by name', async () => {
    const files = readdirSync(join(REPO, 'figures')).filter((f) => f.endsWith('.json') && !f.endsWith('.vl.json'));
    // written before results files had checksums and learning curves: they cannot be verified (regenerate them)
    const unverifiable = ['flickr8k-main-d128.json', 'flickr8k-ptmst-100-reference-counts.json'];
    assert.ok(files.length >= 9, files.join(', '));
    for (const f of files) {
      const path = join(REPO, 'figures', f);
      if (unverifiable.includes(f)) {
        await assert.rejects(readResults(path), refused(/no checksum \(sha256\).*regenerate it with ptmst repro/), f);
        continue;
      }
      const r = await readResults(path);
      const format = (JSON.parse(readFileSync(path, 'utf8')) as { format?: number }).format ?? 1;
      assert.equal(r.format, format, f);
      if (format === 1) {
        assert.equal(r.origin, undefined, f);
        assert.match(provenanceSummary(r), /results format 1, written before results files recorded provenance/, f);
      } else assert.ok(r.origin, f);
    }
  });

  it('a format-2 file reads back with its origin; the per-student records give the row means and sample stds', async () => {
    const file = format2();
    const r = await readResults(write(file));
    assert.equal(r.format, 2);
    assert.deepEqual(r.origin, JSON.parse(JSON.stringify(file.origin)));
    const s = r.origin!.rows[0]!.students;
    // test r_mean of the three students: 0.7 × (10, 20, 30) at the final epoch (base + 3), at epoch 10 on test (+6)
    assert.deepEqual(s.map((x) => [x.run, x.seed, x.final.at, x.val.at, x.test.at]), [0, 1, 2].map((i) => [i, 100 + i, [0, 20], [0, 20], [0, 10]]));
    assert.deepEqual(s.map((x) => +x.final.rMean.toFixed(6)), [9.1, 16.1, 23.1]);
    assert.deepEqual(s.map((x) => +x.test.rMean.toFixed(6)), [11.2, 18.2, 25.2]);
    // mean 16.1, sample std 7 (population std would be 5.72)
    assert.ok(Math.abs(r.methods[0]!.selections.final.rMean.mean - 16.1) < 1e-9);
    assert.ok(Math.abs(r.methods[0]!.selections.final.rMean.std - 7) < 1e-9);
  });

  it('checkOrigin: the sample std (n − 1), not the population std; a student count that is not the runs', () => {
    const file = format2() as unknown as { origin: Origin; methods: { name: string; kind: string; runs: number; selections: ReturnType<typeof summariseRuns> }[] };
    const m = file.methods[0]!;
    assert.equal(checkOrigin(file.origin, file.methods), undefined);
    const population = Math.sqrt(((9.1 - 16.1) ** 2 + (23.1 - 16.1) ** 2) / 3);
    const wrongStd = { ...m, selections: { ...m.selections, final: { ...m.selections.final, rMean: { mean: 16.1, std: population } } } };
    assert.match(checkOrigin(file.origin, [wrongStd]) ?? '', /rMean 16\.1 ± 7 under "final", the row reports 16\.1 ± 5\.71547606649$/);
    assert.match(checkOrigin(file.origin, [{ ...m, runs: 4 }]) ?? '', /3 student records for 4 runs/);
    assert.match(checkOrigin(file.origin, [{ ...m, name: 'other' }]) ?? '', /names row "random-2"/);
    assert.match(checkOrigin(file.origin, [m, m]) ?? '', /1 rows for 2 methods/);
  });

  it('a student record that disagrees with the row is refused even with a valid checksum; so is an origin off its schema', async () => {
    const edited = format2() as unknown as Mutable;
    edited.origin.rows[0]!.students[1]!.final.rMean += 0.01;
    await assert.rejects(readResults(write(edited as unknown as Record<string, unknown>)), refused(/provenance disagrees with its results: origin\.rows\.0 \(random-2\): its students give rMean/));
    const noReason = format2() as unknown as Mutable;
    noReason.origin.git = { commit: null, dirty: null, changes: [] };
    await assert.rejects(readResults(write(noReason as unknown as Record<string, unknown>)), refused(/field origin\.git: commit and dirty are null exactly when a reason says why/));
    const missing = format2() as unknown as { origin: Record<string, unknown> };
    delete missing.origin.backend;
    await assert.rejects(readResults(write(missing as unknown as Record<string, unknown>)), refused(/field origin\.backend/));
  });

  it('older and newer formats: format 1 (no format field, no origin) reads; format 3 and a format-1 file with an origin are refused', async () => {
    const { format: _f, origin: _o, ...v1 } = format2();
    const r = await readResults(write(v1));
    assert.deepEqual([r.format, r.origin], [1, undefined]);
    await assert.rejects(readResults(write({ ...format2(), format: 3 })), refused(/results format 3: this version reads formats 1 and 2/));
    await assert.rejects(readResults(write({ ...v1, origin: format2().origin })), refused(/unrecognized key|Unrecognized key/i));
    // the checksum covers the fields as written: an edit fails it
    const path = write(format2());
    writeFileSync(path, readFileSync(path, 'utf8').replace('"wallSeconds":130.5', '"wallSeconds":13.5'));
    await assert.rejects(readResults(path), refused(/checksum mismatch/));
  });

  it('provenanceSummary and the table footer: commit, dirty, backend, host, times, a line per row', async () => {
    const r = await readResults(write(format2()));
    const text = provenanceSummary(r).split('\n');
    assert.equal(text[0], 'figures/unit.json: results format 2, 2025-01-02T03:04:05.000Z to 2025-01-02T03:06:15.500Z (2 min 11 s)');
    assert.equal(text[1], `code: ptmst 0.1.0, commit ${'a1'.repeat(20)} with uncommitted changes (1 paths)`);
    assert.match(text[2]!, new RegExp(`^machine: Node ${process.version.replace(/\./g, '\\.')} on `));
    assert.equal(text[3], 'backend: wasm (no BLAS, head kernels on, 1 thread per op; 2 workers × 1), tfjs 4.22.0; PTMST_BLAS=off');
    assert.equal(text[4], '- random-2 (coreset): 3 students, 100 epochs each; computed in this run, 1.5 s; random coreset of 2');
    assert.equal(text.length, 5);
    assert.equal(
      provenanceFooter(r.origin),
      `Provenance: commit a1a1a1a1a1a1, dirty; ptmst 0.1.0; backend wasm (no BLAS, head kernels on, 1 thread per op; 2 workers × 1); Node ${process.version}; written 2025-01-02T03:06:15.500Z (2 min 11 s).`,
    );
    assert.equal(provenanceFooter(undefined), undefined);
  });
});

describe('results files: the git state of the code that ran', () => {
  const git = (cwd: string, ...args: string[]) => execFileSync('git', ['-c', 'user.email=t@example.org', '-c', 'user.name=t', '-c', 'init.defaultBranch=main', ...args], { cwd, encoding: 'utf8' }).trim();

  it('a clean checkout, a dirty one, and changes under figures/ only (where repro writes) that leave it clean', () => {
    const dir = tempDir('ptmst-git-');
    git(dir, 'init', '-q');
    mkdirSync(join(dir, 'figures'));
    writeFileSync(join(dir, 'package.json'), '{}');
    writeFileSync(join(dir, 'figures', 'x.json'), '{}');
    git(dir, 'add', '.');
    git(dir, 'commit', '-q', '-m', 'one');
    const head = git(dir, 'rev-parse', 'HEAD');
    assert.deepEqual(gitRecord(dir), { commit: head, dirty: false, changes: [] });
    writeFileSync(join(dir, 'figures', 'x.json'), '{"a":1}');
    writeFileSync(join(dir, 'figures', 'y.md'), 'new');
    assert.deepEqual(gitRecord(dir), { commit: head, dirty: false, changes: [] });
    writeFileSync(join(dir, 'package.json'), '{"b":2}');
    writeFileSync(join(dir, 'new.ts'), '');
    assert.deepEqual(gitRecord(dir), { commit: head, dirty: true, changes: [' M package.json', '?? new.ts'] });
  });

  it('no checkout, a folder inside another checkout, no commit yet, no git: null with the reason, never a throw', () => {
    const plain = tempDir('ptmst-nogit-');
    const r = gitRecord(plain);
    assert.deepEqual([r.commit, r.dirty, r.changes], [null, null, []]);
    assert.match(r.reason!, /^not a git checkout: /);
    const outer = tempDir('ptmst-outer-');
    git(outer, 'init', '-q');
    mkdirSync(join(outer, 'node_modules', 'ptmst'), { recursive: true });
    assert.match(gitRecord(join(outer, 'node_modules', 'ptmst')).reason!, /is not the top of a git checkout \(it lies inside .*ptmst-outer-/);
    assert.match(gitRecord(outer).reason!, /^git could not read /, 'a repository without a commit');
    assert.match(gitRecord(plain, '/nonexistent/git').reason!, /^git is not installed/);
  });

  it("this package's own state: its checkout's HEAD, or a reason", () => {
    const r = gitRecord(REPO);
    if (r.commit !== null) assert.equal(r.commit, git(REPO, 'rev-parse', 'HEAD'));
    else assert.ok(r.reason);
  });
});
