import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors';
import { readResults, repro } from '../../src/pipeline/repro';
import { TuningConfig, chooseOnValidation, gridPoints, tuningRows, validationScore, withChosen } from '../../src/pipeline/tuning';
import { sharedCache, tempDir } from '../helpers';

/** A row's result as the tuning sees it: a curve of (val, test) means per checkpoint. */
const row = (val: number[], test: number[], wallSeconds: number | null = 1) => ({
  curve: val.map((v, i) => ({ subset: 0, epoch: 10 * i, val: { mean: v, std: 0 }, test: { mean: test[i]!, std: 0 } })),
  wallSeconds,
});

describe('pipeline/tuning: one protocol for every distilled method, chosen on validation', () => {
  const t = TuningConfig.parse({ grids: { 'ptm-st': { lrX: [10, 30], lrS: [0.01, 0.03, 0.1] }, lors: { lrX: [30, 100] } } });

  it('the grid is the cartesian product in the order written (first field slowest); one row per point at the budget', () => {
    assert.deepEqual(gridPoints({ lrX: [10, 30], lrS: [0.01, 0.03, 0.1] }), [
      { lrX: 10, lrS: 0.01 },
      { lrX: 10, lrS: 0.03 },
      { lrX: 10, lrS: 0.1 },
      { lrX: 30, lrS: 0.01 },
      { lrX: 30, lrS: 0.03 },
      { lrX: 30, lrS: 0.1 },
    ]);
    const rows = tuningRows(t);
    assert.deepEqual(rows.map((r) => r.name), ['tune.ptm-st.0', 'tune.ptm-st.1', 'tune.ptm-st.2', 'tune.ptm-st.3', 'tune.ptm-st.4', 'tune.ptm-st.5', 'tune.lors.0', 'tune.lors.1']);
    assert.ok(rows.every((r) => r.budget === 100 && r.seeds.length === 1 && r.seeds[0] === 0));
    assert.deepEqual(rows[4]!.overrides, { lrX: 30, lrS: 0.03 });
    // registry names with a '+' make valid row names
    assert.deepEqual(tuningRows(TuningConfig.parse({ grids: { 'base+ema': { lrX: [30] } } })).map((r) => [r.name, r.method]), [['tune.base_ema.0', 'base+ema']]);
    // fixed overrides go with every point; one that a grid tunes is an error naming both
    const fixed = TuningConfig.parse({ grids: { lors: { lrX: [30, 100] } }, overrides: { iterations: 2000 } });
    assert.deepEqual(tuningRows(fixed).map((r) => r.overrides), [{ iterations: 2000, lrX: 30 }, { iterations: 2000, lrX: 100 }]);
    assert.throws(() => tuningRows(TuningConfig.parse({ grids: { lors: { lrX: [30] } }, overrides: { lrX: 1 } })), /tuning\.overrides\.lrX: tuning\.grids\.lors tunes it/);
  });

  it('the score is the best checkpoint of the mean validation curve; a test split that would change the choice does not', () => {
    assert.equal(validationScore(row([1, 4, 3], [9, 0, 0])), 4);
    // ptm-st: point 4 is best on validation, point 0 best on test by far; lors: point 1 on validation, 0 on test
    const scores = (testBoost: number) =>
      new Map([
        ...[0, 1, 2, 3, 4, 5].map((i) => [`tune.ptm-st.${i}`, row([1, 2 + (i === 4 ? 1 : 0)], [1, i === 0 ? testBoost : 2])] as const),
        ['tune.lors.0', row([1, 2], [testBoost, testBoost])] as const,
        ['tune.lors.1', row([1, 2.5], [1, 1])] as const,
      ]);
    for (const boost of [0, 50, 1e6]) {
      const o = chooseOnValidation(t, scores(boost), 'x-tuning');
      assert.deepEqual(o.methods['ptm-st']!.chosen, { lrX: 30, lrS: 0.03 }, `test boost ${boost}`);
      assert.deepEqual(o.methods.lors!.chosen, { lrX: 100 }, `test boost ${boost}`);
      assert.deepEqual(o.methods.lors!.points.map((p) => p.validation), [2, 2.5]);
      assert.equal(o.wallSeconds, 8);
    }
    // the choice follows validation: raise another point's validation and it wins
    const moved = scores(0);
    moved.set('tune.lors.0', row([3, 1], [0, 0]));
    assert.deepEqual(chooseOnValidation(t, moved, 'x').methods.lors!.chosen, { lrX: 30 });
    // ties go to the earlier point; an unrecorded wall time makes the total unknown
    moved.set('tune.lors.0', row([2.5], [0], null));
    const tie = chooseOnValidation(t, moved, 'x');
    assert.deepEqual([tie.methods.lors!.chosen, tie.wallSeconds], [{ lrX: 30 }, null]);
    assert.throws(() => chooseOnValidation(t, new Map(), 'x'), /no result for grid point tune\.ptm-st\.0/);
  });

  it("the chosen values set the tuned fields of every row of the method; a row that sets one itself is an error naming both", () => {
    const o = chooseOnValidation(t, new Map(tuningRows(t).map((r) => [r.name, row([r.name === 'tune.lors.1' ? 2 : 1], [0])])), 'x');
    assert.deepEqual(withChosen('lors-500', 'lors', { iterations: 50 }, o), { iterations: 50, lrX: 100 });
    assert.deepEqual(withChosen('mtt-vl-500', 'mtt-vl', { iterations: 50 }, o), { iterations: 50 }, 'an untuned method keeps its overrides');
    assert.deepEqual(withChosen('lors-500', 'lors', { lrS: 1 }, undefined), { lrS: 1 });
    assert.throws(
      () => withChosen('lors-500', 'lors', { lrX: 5 }, o),
      (e: unknown) => e instanceof ConfigError && /methods\.lors-500\.overrides\.lrX: tuning\.grids\.lors tunes it/.test(e.message),
    );
    assert.throws(() => TuningConfig.parse({ grids: { 'no-such': { lrX: [1] } } }));
    assert.throws(() => TuningConfig.parse({ grids: { lors: { lrX: [] } } }));
  });

  it('repro with a grid: the tuning run is its own results file, the choice is recorded and used by the rows at every budget', async function () {
    this.timeout(900000);
    const workspace = tempDir('ptmst-tuning-');
    const config = {
      name: 'tuned',
      data: { dataset: 'shapes', cacheDir: sharedCache() },
      model: { dOut: 32 },
      buffer: { numExperts: 2, epochs: 4 },
      eval: { runs: 1, epochs: 10, evalEvery: 5, decayEpoch: 5 },
      // lrX 1e-9 leaves the synthetic set where it started, a much larger rate moves it; the grid sets the rows'
      // iterations too (one value), so the rows run 5 of them, not the registry's 500
      tuning: { budget: 10, grids: { lors: { lrX: [1e-9, 100], iterations: [5] } }, eval: { runs: 2 } },
      methods: [
        { name: 'lors-10', kind: 'method', method: 'lors', budget: 10 },
        { name: 'lors-20', kind: 'method', method: 'lors', budget: 20 },
      ],
      workspace,
    };
    await assert.rejects(
      repro({ ...config, methods: [{ ...config.methods[0]!, overrides: { lrX: 3 } }] }),
      /methods\.lors-10\.overrides\.lrX: tuning\.grids\.lors tunes it/,
    );
    assert.equal(existsSync(join(workspace, 'figures')), false, 'the conflict is found before anything runs');
    const lines: string[] = [];
    const res = await repro(config, undefined, (l) => lines.push(l));
    // the grid's rows log the validation score the choice reads, never a test score; the table's rows their r_mean
    assert.deepEqual(lines.filter((l) => l.startsWith('tune.')).map((l) => /^tune\.lors\.\d: validation score \d/.test(l)), [true, true]);
    assert.ok(lines.some((l) => /^lors-20: r_mean /.test(l)));
    const grid = await readResults('tuned-tuning', workspace);
    assert.deepEqual(grid.methods.map((m) => [m.name, m.pairs, m.runs]), [['tune.lors.0', 10, 2], ['tune.lors.1', 10, 2]]);
    const t = res.tuning!;
    assert.deepEqual(t.methods.lors!.points.map((p) => p.validation), grid.methods.map((m) => Math.max(...m.curve.map((c) => c.val.mean))));
    const best = t.methods.lors!.points.reduce((a, b) => (b.validation > a.validation ? b : a));
    assert.deepEqual(t.methods.lors!.chosen, best.values);
    // the chosen values reach every row at every budget, and the results file reads back with them
    for (const r of res.origin!.rows) assert.equal(r.resolved.distill!.lrX, best.values.lrX, r.name);
    assert.deepEqual(res.origin!.rows.map((r) => r.resolved.distill!.phases.map((p) => [p.size, p.iterations])), [[[10, 5]], [[20, 5]]]);
    const back = await readResults('tuned', workspace);
    assert.deepEqual(back.tuning, t);
    assert.match(back.provenance.join('\n'), /tuning: each method's grid distilled at 10 pairs \(distillation seed 0\) and chosen on validation \(figures\/tuned-tuning, \d+ s\): lors lrX=[^,]+, iterations=5 \(of 2\)/);
  });
});
