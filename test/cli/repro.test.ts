import { strict as assert } from 'node:assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptFileError } from '../../src/errors';
import { BACKENDS } from '../../src/backend';
import { provenanceSummary } from '../../src/pipeline/origin';
import { type ResultsFile, readResults } from '../../src/pipeline/repro';
import { sha256 } from '../../src/store/atomic';
import { REPO, tempDir } from '../helpers';

/** The README's main command, end to end on the generated shapes set, in a fresh working folder. */
describe('ptmst repro on the generated shapes set (end to end)', function () {
  this.timeout(900000);
  const cwd = tempDir('ptmst-repro-');
  const run = (...args: string[]) =>
    spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'repro', '--json', join(cwd, 'summary.json'), ...args], {
      cwd: args.length ? tempDir('ptmst-elsewhere-') : cwd,
      encoding: 'utf8',
      env: { ...process.env, PTMST_DATA_ROOT: '' },
    });

  it('runs features → buffer → convexify → distill → eval and writes the table', () => {
    const r = run();
    assert.equal(r.status, 0, r.stderr);
    for (const f of ['figures/shapes-quick.json', 'figures/shapes-quick.md', 'runs/shapes-quick/ptmst-50/synthetic.safetensors']) {
      assert.ok(existsSync(join(cwd, f)), `${f} exists`);
    }
    const res = JSON.parse(readFileSync(join(cwd, 'figures', 'shapes-quick.json'), 'utf8')) as {
      methods: { name: string; selections: { final: { rMean: { mean: number } } } }[];
    };
    const score = (name: string) => res.methods.find((m) => m.name === name)!.selections.final.rMean.mean;
    // chance r_mean on 100 test images / 500 captions is about 3
    assert.ok(score('full') > 25, `full-data teacher ${score('full')}`);
    // students of both 50-pair sets learn. Not PTM-ST > random: on this set at 50 pairs that is within the noise of
    // the distillation seed and of float32 rounding (README "Tests": 6.5 to 21.5 over 20 distillations, against
    // 13.1 for random pairs), so a test of it would pass or fail by luck
    for (const m of ['ptmst-50', 'random-50']) assert.ok(score(m) > 5, `${m}: ${score(m)}, chance is about 3`);
    assert.match(readFileSync(join(cwd, 'figures', 'shapes-quick.md'), 'utf8'), /best on test \(reference rule; selected on the test split\)/);
  });

  let first: ResultsFile | undefined;
  it('the results file reads back verified, with learning curves and a tidy CSV; an edit is refused', async () => {
    const res = await readResults('shapes-quick', cwd);
    first = res;
    // where it ran is not part of the experiment: the same run elsewhere writes the same file
    assert.deepEqual(['workspace', 'force'].filter((k) => k in res.config), []);
    const ptmst = res.methods.find((m) => m.name === 'ptmst-50')!;
    const random = res.methods.find((m) => m.name === 'random-50')!;
    // checkpoints every 10 of 50 epochs: 6 per subset; PTM-ST trains on two subsets, the coreset on one
    assert.deepEqual([ptmst.curve.length, random.curve.length], [12, 6]);
    assert.deepEqual(ptmst.curve.map((p) => p.subset), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    // the final-epoch rule reports the last checkpoint's test score: the curve ends there
    assert.ok(Math.abs(ptmst.curve.at(-1)!.test.mean - ptmst.selections.final.rMean.mean) < 1e-9);
    const csv = readFileSync(join(cwd, 'figures', 'shapes-quick.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 1 + 3 * res.methods.length);
    // the columns the notebooks and figures read, unchanged by provenance
    assert.equal(csv[0], 'method,pairs,runs,selection,ir1_mean,ir1_std,ir5_mean,ir5_std,ir10_mean,ir10_std,tr1_mean,tr1_std,tr5_mean,tr5_std,tr10_mean,tr10_std,rMean_mean,rMean_std');
    assert.match(readFileSync(join(cwd, 'figures', 'shapes-quick.md'), 'utf8'), /\n\nProvenance: commit [^;]+; ptmst \d+\.\d+\.\d+; backend \w+ .*; written \d{4}-\d\d-\d\dT.*\.\n$/);
    const file = join(cwd, 'figures', 'shapes-quick.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/"mean": (\d)/, '"mean": 9$1'));
    await assert.rejects(readResults('shapes-quick', cwd), (e: unknown) => e instanceof CorruptFileError && /checksum mismatch/.test(String(e)));
    writeFileSync(file, text);
  });

  it('provenance: the commit, the backend, every row with its resolved settings and one record per student', () => {
    const o = first!.origin!;
    assert.equal(first!.format, 2);
    let head: string | undefined;
    try {
      head = execFileSync('git', ['-C', REPO, 'rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      // not a checkout: the origin says why
    }
    if (head) assert.equal(o.git.commit, head);
    else assert.deepEqual([o.git.commit, typeof o.git.reason], [null, 'string']);
    assert.ok((BACKENDS as readonly string[]).includes(o.backend.name));
    assert.equal(o.package.name, 'ptmst');
    assert.ok(Date.parse(o.endedAt) - Date.parse(o.startedAt) >= 1000 * o.rows.reduce((a, r) => a + r.wallSeconds, 0) - 1000);
    // four experts are the full row's runs, three students each for the others
    assert.deepEqual(o.rows.map((r) => [r.name, r.kind, r.students.length]), [['full', 'full', 4], ['random-50', 'coreset', 3], ['ptmst-50', 'distill', 3]]);
    assert.deepEqual(o.rows[0]!.resolved.buffer && [o.rows[0]!.resolved.buffer.numExperts, o.rows[0]!.resolved.buffer.epochs], [4, 6]);
    assert.deepEqual(o.rows[1]!.resolved.coreset, { selection: 'random', size: 50 });
    assert.deepEqual([o.rows[1]!.resolved.eval!.epochs, o.rows[1]!.resolved.eval!.runs, o.rows[1]!.resolved.eval!.batchSize], [50, 3, 128]);
    // configs/shapes-quick.json sets phases and batchSyn; every other setting is the schema's default
    const d = o.rows[2]!.resolved.distill!;
    assert.deepEqual(d.phases.map((p) => [p.size, p.iterations]), [[25, 80], [25, 80]]);
    assert.deepEqual([d.batchSyn, d.synSteps, d.lrX, d.lrY, d.lrS, d.lrAlpha, d.ema, d.gradient, d.similarity, d.unrollDropout], [16, 8, 30, 30, 0.03, 1e-5, 0.99, 'tesla', 'full', 0.1]);
    for (const r of o.rows) assert.deepEqual(r.units.map((u) => [u.cached, u.computed?.commit]), [[false, o.git.commit]], r.name);
    // the final-epoch rule selects each student's last checkpoint (50 epochs of each of PTM-ST's two subsets)
    assert.deepEqual(o.rows[2]!.students.map((s) => s.final.at), [[1, 50], [1, 50], [1, 50]]);
  });

  it('a second run, started in another folder with --workspace, reuses every stage', () => {
    const r = run('--workspace', cwd);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stderr.match(/\[cached\]/g) ?? []).length, 3, r.stderr);
  });

  it('a rerun from the cache records each set as cached, computed by the first run', async () => {
    const again = await readResults('shapes-quick', cwd);
    assert.deepEqual(again.methods, first!.methods);
    assert.deepEqual(
      again.origin!.rows.map((r) => r.units),
      first!.origin!.rows.map((r) => r.units.map((u) => ({ ...u, cached: true }))),
    );
    assert.deepEqual(again.origin!.rows.map((r) => r.students), first!.origin!.rows.map((r) => r.students));
    assert.ok(again.origin!.startedAt > first!.origin!.endedAt);
  });

  it('a stored evaluation written before it recorded its commit is reused, its unit saying so (computed: null)', async () => {
    // the runs/ cache of earlier versions: key, value, wall time and a checksum of those three
    const file = join(cwd, 'runs', 'shapes-quick', 'random-50', 'eval.json');
    const { computed: _c, sha256: _s, ...old } = JSON.parse(readFileSync(file, 'utf8')) as { key: string; value: unknown; wallSeconds: number; computed: unknown; sha256: string };
    writeFileSync(file, JSON.stringify({ ...old, sha256: sha256(JSON.stringify(old)) }));
    const r = run('--workspace', cwd);
    assert.equal(r.status, 0, r.stderr);
    const res = await readResults('shapes-quick', cwd);
    assert.deepEqual(res.origin!.rows.map((row) => row.units.map((u) => [u.cached, u.computed === null])), [[[true, false]], [[true, true]], [[true, false]]]);
    assert.deepEqual(res.methods, first!.methods);
    assert.match(provenanceSummary(res), /- random-50 \(coreset\): 3 students, 50 epochs each; from the cache \(computed by an unrecorded commit\)/);
  });

  it('distillation seeds pool their students; a variant row re-evaluates the same sets under another protocol', async () => {
    // on the first test's features and experts: LoRS at 20 pairs, 2 seeds × 2 students, 10 iterations; then
    // the same sets with 10 epochs per subset, and with knowledge distillation
    const config = {
      name: 'seeds',
      data: { dataset: 'shapes' },
      model: { dOut: 128 },
      buffer: { numExperts: 4, epochs: 6 },
      eval: { runs: 2, epochs: 20, decayEpoch: 10 },
      methods: [
        { name: 'lors-20', kind: 'method', method: 'lors', budget: 20, seeds: [0, 1], overrides: { iterations: 10 } },
        { name: 'lors-20-same', kind: 'variant', of: 'lors-20' },
        { name: 'lors-20-short', kind: 'variant', of: 'lors-20', eval: { epochs: 10, decayEpoch: 5 } },
        { name: 'lors-20-kd', kind: 'variant', of: 'lors-20', kd: { alpha: 0.5 } },
      ],
    };
    writeFileSync(join(cwd, 'seeds.json'), JSON.stringify(config));
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'repro', '--config', join(cwd, 'seeds.json')], { cwd, encoding: 'utf8', env: { ...process.env, PTMST_DATA_ROOT: '' } });
    assert.equal(r.status, 0, r.stderr);
    const res = await readResults('seeds', cwd);
    const row = (name: string) => res.methods.find((m) => m.name === name)!;
    assert.deepEqual(res.methods.map((m) => m.runs), [4, 4, 4, 4]);
    // the pooled mean is the mean over both seeds' students, each seed stored in its own folder
    const perSeed = [0, 1].map((s) => JSON.parse(readFileSync(join(cwd, 'runs', 'seeds', 'lors-20', `seed-${s}`, 'eval.json'), 'utf8')).value as { checkpoints: { test: { rMean: number } }[][] });
    const finals = perSeed.flatMap((e) => e.checkpoints.map((c) => c.at(-1)!.test.rMean));
    assert.equal(finals.length, 4);
    assert.ok(Math.abs(row('lors-20').selections.final.rMean.mean - finals.reduce((a, b) => a + b, 0) / 4) < 1e-9);
    assert.notEqual(perSeed[0]!.checkpoints[0]!.at(-1)!.test.rMean, perSeed[1]!.checkpoints[0]!.at(-1)!.test.rMean, 'the seeds distil different sets');
    // a variant with no change is the same evaluation; distillation ran once per seed
    assert.deepEqual(row('lors-20-same').selections, row('lors-20').selections);
    assert.equal(existsSync(join(cwd, 'runs', 'seeds', 'lors-20-same', 'seed-0', 'synthetic.safetensors')), false);
    assert.equal(row('lors-20-short').curve.length, 2, 'checkpoints at 0 and 10 epochs');
    assert.notDeepEqual(row('lors-20-kd').selections, row('lors-20').selections);
    assert.match(r.stderr, /lors-20-kd: r_mean/);
    // the registry's expansion with the override, the seeds and each variant's protocol, as they ran
    const rows = res.origin!.rows;
    const lors = rows[0]!.resolved;
    assert.deepEqual([lors.distill!.phases.map((p) => [p.size, p.iterations]), lors.distill!.similarity, lors.distill!.rank, lors.distill!.ema, lors.seeds], [[[20, 10]], 'lowrank', 10, 0, [0, 1]]);
    assert.deepEqual(rows[0]!.students.map((s) => [s.set, s.run]), [[0, 0], [0, 1], [1, 0], [1, 1]]);
    assert.deepEqual(rows.slice(1).map((r) => [r.resolved.of, r.resolved.eval!.epochs, r.resolved.distill!.phases[0]!.iterations]), [['lors-20', 20, 10], ['lors-20', 10, 10], ['lors-20', 20, 10]]);
    const kd = rows[3]!.resolved.eval!.kd!;
    assert.deepEqual([kd.alpha, kd.temperature, kd.buffer.startsWith('/')], [0.5, 4, false], 'the teacher buffer relative to the workspace');
  });
});
