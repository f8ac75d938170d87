import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { ready } from '../../src/backend';
import { distill } from '../../src/distill';
import { prepareFeatureSets } from '../../src/features/load';
import { buildBuffer } from '../../src/trajectory/buffer';
import { readSyntheticSet } from '../../src/distill/synthetic-file';
import { sharedCache, tempDir } from '../helpers';

/** MTT-VL, LoRS and PTM-ST are configurations of one distiller; each runs and writes a valid set. */
describe('distill: method variants on the shapes set', function () {
  this.timeout(600000);
  // buffers/ and runs/ go to the workspace; the planner's part (features, experts) is done here first
  const workspace = tempDir();
  const data = { dataset: 'shapes', cacheDir: sharedCache() };
  let base: Record<string, unknown>;
  before(async () => {
    await ready(() => undefined);
    await prepareFeatureSets(data, ['train', 'val', 'test']);
    const experts = await buildBuffer({ data, model: { dOut: 32 }, buffer: { numExperts: 2, epochs: 3, workers: 1 }, workspace });
    base = { data, expertBuffer: experts.dir, workspace, workers: 1 };
  });
  const variants: Record<string, Record<string, unknown>> = {
    'mtt-vl': { phases: [{ start: [0, 1], size: 12, iterations: 3 }], similarity: 'none', gradient: 'full', ema: 0 },
    lors: { phases: [{ start: [0, 1], size: 12, iterations: 3 }], similarity: 'lowrank', rank: 4, ema: 0 },
    'ptm-st': {
      phases: [
        { source: [0, 3], start: [0, 1], size: 6, iterations: 3 },
        { source: [0, 4], start: [1, 2], size: 6, iterations: 3 },
      ],
    },
  };
  for (const [name, d] of Object.entries(variants)) {
    it(`${name} writes a synthetic set with provenance`, async () => {
      const out = join('runs', name);
      const r = await distill({ ...base, name, distill: { batchSyn: 4, synSteps: 2, ...d }, out });
      const set = await readSyntheticSet(r.file);
      assert.equal(set.phases.reduce((a, p) => a + p.n, 0), 12);
      assert.ok(set.phases.every((p) => p.x.every(Number.isFinite) && p.s.every(Number.isFinite)));
      if (name === 'mtt-vl') assert.deepEqual(Array.from(set.phases[0]!.s.slice(0, 3)), [1, 0, 0], 'S stays the identity');
      assert.equal((set.provenance.phases as unknown[]).length, set.phases.length);
      const again = await distill({ ...base, name, distill: { batchSyn: 4, synSteps: 2, ...d }, out });
      assert.equal(again.reused, true, 'a finished run is reused');
      assert.equal(again.phases[0]!.losses.length, 3, 'the loss curve comes back with a reused run');
    });
  }

  it('a run folder reused with other phase sizes redoes its phases (not a corrupted file)', async () => {
    const out = join('runs', 'resized');
    const phases = (size: number) => [{ start: [0, 1], size, iterations: 2 }];
    await distill({ ...base, name: 'resized', distill: { batchSyn: 4, synSteps: 2, phases: phases(8) }, out });
    const r = await distill({ ...base, name: 'resized', distill: { batchSyn: 4, synSteps: 2, phases: phases(6) }, out });
    assert.equal(r.reused, false);
    assert.equal((await readSyntheticSet(r.file)).phases[0]!.n, 6);
  });

  it("dynamic ranges: the phase's key names the measure, so an L2 phase is never reused for the MMD default", async () => {
    const out = join('runs', 'dynamic');
    const d = (extra: Record<string, unknown>) => ({ batchSyn: 4, synSteps: 2, asyncStart: true, dynamicStart: true, phases: [{ start: [0, 1], size: 6, iterations: 2 }], ...extra });
    await distill({ ...base, name: 'dynamic', distill: d({ dynamicMeasure: 'l2' }), out });
    // no measure is the MMD (seed 004); before the MMD existed it meant L2: not the same phase
    const absent = await distill({ ...base, name: 'dynamic', distill: d({}), out });
    assert.equal(absent.reused, false);
    const explicit = await distill({ ...base, name: 'dynamic', distill: d({ dynamicMeasure: 'mmd-gaussian' }), out });
    assert.equal(explicit.reused, true, 'absent and mmd-gaussian are one phase');
  });
});
