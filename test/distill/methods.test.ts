import { strict as assert } from 'node:assert';
import { DistillConfig } from '../../src/config/schemas';
import { DISTILL_METHODS, distillMethod, ptmSizes } from '../../src/distill/methods';
import { ReproConfig } from '../../src/pipeline/repro';

describe('distillation methods: each registry entry builds the configuration it names', () => {
  const parse = (name: string, budget = 500, overrides = {}) => DistillConfig.parse(distillMethod(name).config(budget, overrides));

  it('every entry parses under the DistillConfig schema and spends the budget (PTM: one pair fewer, as the reference)', () => {
    for (const name of Object.keys(DISTILL_METHODS)) {
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
    assert.deepEqual([amd.asyncStart, amd.dynamicStart, amd.init], [true, true, 'prototypes']);
    assert.deepEqual({ ...amd, asyncStart: undefined, dynamicStart: undefined, init: 'real' }, { ...parse('lors'), asyncStart: undefined, dynamicStart: undefined });
    const noProto = parse('amd', 500, { init: 'real' });
    assert.deepEqual([noProto.init, noProto.dynamicStart], ['real', true]);
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
    assert.throws(() => distillMethod('dm'), /unknown \(known: mtt-vl, lors, ptm-st/);
  });
});

describe('repro: methods by registry name', () => {
  it('a `method` entry parses, and an unknown method name is an error naming the field', () => {
    const ok = ReproConfig.parse({ name: 'x', methods: [{ name: 'lors-50', kind: 'method', method: 'lors', budget: 50, overrides: { iterations: 3 } }] });
    assert.equal(ok.methods[0]!.kind, 'method');
    const bad = ReproConfig.safeParse({ name: 'x', methods: [{ name: 'a', kind: 'method', method: 'dm', budget: 50 }] });
    assert.equal(bad.success, false);
    assert.deepEqual(bad.error!.issues[0]!.path, ['methods', 0, 'method']);
  });
});
