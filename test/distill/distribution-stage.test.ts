/**
 * Distribution matching through the stages (shapes set): `repro` with only a DM row and a random coreset builds
 * no expert buffer, and the DM row's set is a synthetic-set file the evaluator reads, with its wall time in the
 * results; the distill stage with trained heads reads a buffer, and without one says which field is missing.
 */
import { strict as assert } from 'node:assert';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ready } from '../../src/backend';
import { distill } from '../../src/distill';
import { DISTILL_METHODS } from '../../src/distill/methods';
import { readSyntheticSet } from '../../src/distill/synthetic-file';
import { ConfigError } from '../../src/errors';
import { prepareFeatureSets } from '../../src/features/load';
import { repro } from '../../src/pipeline/repro';
import { buildBuffer } from '../../src/trajectory/buffer';
import { sharedCache, tempDir } from '../helpers';

describe('distill: distribution matching through the stages (shapes)', function () {
  this.timeout(600000);
  const data = { dataset: 'shapes', cacheDir: sharedCache() };
  const model = { dOut: 32 };
  before(async () => {
    await ready(() => undefined);
    await prepareFeatureSets(data, ['train', 'val', 'test']);
  });

  it('repro with only DM and random rows trains no experts; the DM set evaluates and its wall time is recorded', async () => {
    const workspace = tempDir();
    const r = await repro({
      name: 'dm-smoke',
      data,
      model,
      eval: { runs: 1, epochs: 5, evalEvery: 5, decayEpoch: 4 },
      methods: [
        { name: 'dm-10', kind: 'method', method: 'dm', budget: 10, overrides: { iterations: 5 } },
        { name: 'random-10', kind: 'coreset', size: 10 },
      ],
      workspace,
      workers: 1,
    });
    assert.equal(r.experts, undefined, 'no expert buffer was made');
    assert.ok(!existsSync(join(workspace, 'buffers')), 'nothing under buffers/');
    const dm = r.methods.find((m) => m.name === 'dm-10')!;
    assert.equal(dm.pairs, 10);
    assert.ok(dm.wallSeconds !== null && dm.wallSeconds > 0, `wall time ${dm.wallSeconds}`);
    const phases = dm.distill as { iterations: number; source: string }[];
    assert.deepEqual(phases.map((p) => [p.iterations, p.source]), [[5, 'distribution matching, random heads']]);
    const set = await readSyntheticSet(join(workspace, 'runs', 'dm-smoke', 'dm-10', 'synthetic.safetensors'));
    assert.deepEqual([set.phases.length, set.phases[0]!.n, set.phases[0]!.lrImg, set.phases[0]!.lrTxt], [1, 10, Math.fround(0.1), Math.fround(0.1)]);
    // S = I
    const s = set.phases[0]!.s;
    assert.ok(s.every((v, i) => v === (i % 11 === 0 ? 1 : 0)));
  });

  it('trained heads read the expert buffer; without one the error names expertBuffer', async () => {
    const workspace = tempDir();
    const buffer = (await buildBuffer({ data, model, buffer: { numExperts: 1, epochs: 2, workers: 1 }, workspace })).dir;
    const dm = DISTILL_METHODS.dm!.config(6, { iterations: 3 });
    const trained = { ...dm, distribution: { heads: 'trained' }, phases: (dm.phases as Record<string, unknown>[]).map((p) => ({ ...p, start: [0, 2] })) };
    const out = await distill({ data, distill: trained, expertBuffer: buffer, workspace, workers: 1 });
    assert.equal(out.phases[0]!.iterations, 3);
    assert.match(out.phases[0]!.source, /distribution matching, trained heads of buffers\//);
    await assert.rejects(distill({ data, distill: trained, workspace, out: 'runs/x' }), (e: unknown) => e instanceof ConfigError && /expertBuffer/.test(e.message));
    await assert.rejects(distill({ data, distill: DISTILL_METHODS['lors']!.config(6), workspace, out: 'runs/y' }), (e: unknown) => e instanceof ConfigError && /expertBuffer/.test(e.message));
    // trained heads from beyond the experts' last snapshot (2 epochs: snapshots 0..2)
    const late = { ...trained, phases: trained.phases.map((p) => ({ ...p, start: [0, 3] })) };
    await assert.rejects(distill({ data, distill: late, expertBuffer: buffer, workspace, out: 'runs/z' }), (e: unknown) => e instanceof ConfigError && /phases\[0\]\.start/.test(e.message));
  });
});
