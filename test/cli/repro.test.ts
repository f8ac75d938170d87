import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptFileError } from '../../src/errors';
import { readResults } from '../../src/pipeline/repro';
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
    assert.ok(score('ptmst-50') > score('random-50'), `PTM-ST ${score('ptmst-50')} vs random ${score('random-50')}`);
    assert.match(readFileSync(join(cwd, 'figures', 'shapes-quick.md'), 'utf8'), /best on test \(reference rule; selected on the test split\)/);
  });

  it('the results file reads back verified, with learning curves and a tidy CSV; an edit is refused', async () => {
    const res = await readResults('shapes-quick', cwd);
    const ptmst = res.methods.find((m) => m.name === 'ptmst-50')!;
    const random = res.methods.find((m) => m.name === 'random-50')!;
    // checkpoints every 10 of 50 epochs: 6 per subset; PTM-ST trains on two subsets, the coreset on one
    assert.deepEqual([ptmst.curve.length, random.curve.length], [12, 6]);
    assert.deepEqual(ptmst.curve.map((p) => p.subset), [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1]);
    // the final-epoch rule reports the last checkpoint's test score: the curve ends there
    assert.ok(Math.abs(ptmst.curve.at(-1)!.test.mean - ptmst.selections.final.rMean.mean) < 1e-9);
    const csv = readFileSync(join(cwd, 'figures', 'shapes-quick.csv'), 'utf8').trim().split('\n');
    assert.equal(csv.length, 1 + 3 * res.methods.length);
    const file = join(cwd, 'figures', 'shapes-quick.json');
    const text = readFileSync(file, 'utf8');
    writeFileSync(file, text.replace(/"mean": (\d)/, '"mean": 9$1'));
    await assert.rejects(readResults('shapes-quick', cwd), (e: unknown) => e instanceof CorruptFileError && /checksum mismatch/.test(String(e)));
    writeFileSync(file, text);
  });

  it('a second run, started in another folder with --workspace, reuses every stage', () => {
    const r = run('--workspace', cwd);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stderr.match(/\[cached\]/g) ?? []).length, 3, r.stderr);
  });
});
