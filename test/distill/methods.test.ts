import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../../src/errors';
import { DistillConfig } from '../../src/config/schemas';
import { DISTILL_METHODS, distillMethod, ptmSizes } from '../../src/distill/methods';
import { readsExperts } from '../../src/distill/distribution';
import { ReproConfig } from '../../src/pipeline/repro';
import { REPO, tempDir } from '../helpers';

describe('distillation methods: each registry entry builds the configuration it names', () => {
  const parse = (name: string, budget = 500, overrides = {}) => DistillConfig.parse(distillMethod(name).config(budget, overrides));

  it('every entry parses under the DistillConfig schema and spends the budget (PTM: one pair fewer, as the reference)', () => {
    // the adaptive entries' phases are resolved from a buffer (test/distill/adaptive-phases.test.ts)
    for (const name of Object.keys(DISTILL_METHODS).filter((n) => !n.startsWith('ptm-st-adaptive'))) {
      for (const budget of [100, 200, 500]) {
        const c = parse(name, budget);
        const pairs = c.phases.reduce((a, p) => a + p.size, 0);
        assert.equal(pairs, c.phases.length === 2 ? budget - 1 : budget, `${name} @ ${budget}`);
      }
    }
    assert.deepEqual([ptmSizes(100), ptmSizes(200), ptmSizes(500)], [[49, 50], [99, 100], [200, 299]]);
  });

  it('MTT-VL: full backprop, S = I, no EMA, one phase on expert trajectories', () => {
    const c = parse('mtt-vl');
    assert.deepEqual([c.gradient, c.similarity, c.ema, c.phases.length, c.phases[0]!.source], ['full', 'none', 0, 1, 'experts']);
  });

  it('MTT-VL (TESLA): MTT-VL with the TESLA gradient, nothing else changed', () => {
    const [full, tesla] = [parse('mtt-vl'), parse('mtt-vl-tesla')];
    assert.deepEqual({ ...tesla, gradient: 'full' }, full);
    assert.equal(tesla.gradient, 'tesla');
  });

  it('LoRS: TESLA, low-rank S, no EMA, one phase', () => {
    const c = parse('lors');
    assert.deepEqual([c.gradient, c.similarity, c.ema, c.phases.length], ['tesla', 'lowrank', 0, 1]);
  });

  it('PTM-ST: the reference windows on shortcut trajectories, full S, EMA 0.99 — as configs/flickr8k-ptmst.json', () => {
    const c = parse('ptm-st', 100);
    assert.deepEqual(
      c.phases.map((p) => [p.source, p.start, p.size]),
      [
        [[0, 6], [0, 1], 49],
        [[0, 8], [1, 2], 50],
      ],
    );
    assert.deepEqual([c.similarity, c.ema, c.gradient], ['full', 0.99, 'tesla']);
  });

  it('AMD (async): LoRS with independent start epochs per tower', () => {
    assert.deepEqual({ ...parse('amd-async'), asyncStart: undefined }, { ...parse('lors'), asyncStart: undefined });
    assert.equal(parse('amd-async').asyncStart, true);
  });

  it('AMD: LoRS with asynchronous matching, dynamic ranges and prototype initialisation, each a switch', () => {
    const amd = parse('amd');
    assert.deepEqual([amd.asyncStart, amd.dynamicStart, amd.dynamicMeasure, amd.init], [true, true, 'mmd-gaussian', 'spm']);
    const parts = { asyncStart: undefined, dynamicStart: undefined, dynamicMeasure: undefined };
    assert.deepEqual({ ...amd, ...parts, init: 'real' }, { ...parse('lors'), ...parts });
    const noProto = parse('amd', 500, { init: 'real' });
    assert.deepEqual([noProto.init, noProto.dynamicStart], ['real', true]);
    // the rows add one part each: async, + dynamic ranges, + SPM
    const dyn = parse('amd-async+dynamic');
    const { dynamicStart: _s, dynamicMeasure: _m, ...asyncOnly } = dyn;
    assert.deepEqual(asyncOnly, parse('amd-async'));
    assert.deepEqual([dyn.dynamicStart, dyn.dynamicMeasure], [true, 'mmd-gaussian']);
    assert.deepEqual({ ...amd, init: 'real' }, dyn);
    // the earlier simplifications by override
    assert.deepEqual([parse('amd', 100, { dynamicMeasure: 'l2', init: 'prototypes' }).dynamicMeasure, parse('amd', 100, { init: 'prototypes' }).init], ['l2', 'prototypes']);
  });

  it('DM: the distribution objective, S = I, no EMA, one phase of the whole budget; it reads experts only with trained heads', () => {
    const c = parse('dm', 200);
    assert.deepEqual([c.objective, c.similarity, c.ema, c.phases.length, c.phases[0]!.size], ['distribution', 'none', 0, 1, 200]);
    assert.equal(readsExperts(c), false);
    assert.equal(readsExperts(parse('dm', 200, { distribution: { heads: 'trained' } })), true);
    assert.equal(readsExperts(parse('lors')), true);
    assert.equal(parse('lors').objective, undefined, 'trajectory methods keep their configs (and keys) as before');
  });

  it('the ablation rows differ from BASE by exactly their part', () => {
    const base = parse('base');
    const ema = parse('base+ema');
    const ptm = parse('base+ptm');
    const st = parse('base+st');
    const both = parse('ptm-st');
    assert.deepEqual([base.ema, base.phases.length, base.phases[0]!.source], [0, 1, 'experts']);
    assert.deepEqual({ ...ema, ema: 0 }, base, '+EMA is BASE with the EMA on');
    assert.deepEqual([ptm.ema, ptm.phases.length, ptm.phases.map((p) => p.source)], [0.99, 2, ['experts', 'experts']]);
    assert.deepEqual([st.ema, st.phases.length, st.phases[0]!.source], [0.99, 1, [0, 8]]);
    assert.deepEqual(both.phases.map((p) => p.start), ptm.phases.map((p) => p.start), 'PTM+ST keeps +PTM windows, on shortcuts');
  });

  it('overrides win: iterations for every phase, any DistillConfig field; unknown names are an error', () => {
    const c = parse('lors', 200, { iterations: 7, rank: 3, seed: 4 });
    assert.deepEqual([c.phases[0]!.iterations, c.rank, c.seed], [7, 3, 4]);
    assert.throws(() => distillMethod('kip'), /unknown \(known: mtt-vl, mtt-vl-tesla, lors, ptm-st/);
  });

  it('iterations 0 (or any count that is not a positive integer) is an error naming the field, never the default 500', () => {
    // a truthiness test once dropped `iterations: 0` and kept the registry's 500 per phase
    for (const bad of [0, -1, 2.5]) {
      assert.throws(
        () => distillMethod('ptm-st').config(100, { iterations: bad }),
        (e: unknown) => e instanceof ConfigError && new RegExp(`overrides\\.iterations: ${bad} is not`).test(e.message),
        `iterations ${bad}`,
      );
    }
    // iterations 1 is the smallest run: every phase gets it
    assert.deepEqual(parse('ptm-st', 100, { iterations: 1 }).phases.map((p) => p.iterations), [1, 1]);
  });

  it('iterations beside phases is an error (the phases carry their own counts), not silently dropped', () => {
    const phases = [{ source: 'experts' as const, start: [0, 0] as [number, number], size: 10, iterations: 300 }];
    assert.throws(() => distillMethod('lors').config(10, { iterations: 7, phases }), (e: unknown) => e instanceof ConfigError && /overrides\.iterations.*overrides\.phases/.test(e.message));
    assert.equal(parse('lors', 10, { phases }).phases[0]!.iterations, 300);
  });
});

describe('repro: methods by registry name', () => {
  it('a `method` entry parses, and an unknown method name is an error naming the field', () => {
    const ok = ReproConfig.parse({ name: 'x', methods: [{ name: 'lors-50', kind: 'method', method: 'lors', budget: 50, overrides: { iterations: 3 } }] });
    assert.equal(ok.methods[0]!.kind, 'method');
    const bad = ReproConfig.safeParse({ name: 'x', methods: [{ name: 'a', kind: 'method', method: 'kip', budget: 50 }] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error!.issues[0]!.path, ['methods', 0, 'method']);
  });

  it('overrides.iterations 0 is refused when the config is read, naming the field', () => {
    const bad = ReproConfig.safeParse({ name: 'x', methods: [{ name: 'a', kind: 'method', method: 'lors', budget: 50, overrides: { iterations: 0 } }] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error!.issues[0]!.path, ['methods', 0, 'overrides', 'iterations']);
  });

  it('`ptmst repro` with overrides.iterations 0 exits 2 naming the field, before any stage runs', () => {
    const cwd = tempDir('ptmst-its0-');
    const config = { name: 'its0', data: { dataset: 'shapes' }, methods: [{ name: 'lors-20', kind: 'method', method: 'lors', budget: 20, overrides: { iterations: 0 } }] };
    writeFileSync(join(cwd, 'its0.json'), JSON.stringify(config));
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'repro', '--config', join(cwd, 'its0.json'), '--no-progress'], { cwd, encoding: 'utf8', env: { ...process.env, PTMST_DATA_ROOT: '' } });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /methods\.0\.overrides\.iterations/);
    assert.doesNotMatch(r.stderr, /features|expert/i, 'nothing ran');
  });
});
