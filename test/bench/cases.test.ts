import { strict as assert } from 'node:assert';
import { plan } from '../../bench/cases';

describe('bench/cases', () => {
  it('plans the brief\'s sizes in full mode', () => {
    const p = plan({ quick: false, work: '/w', images: ['a.jpg', 'b.jpg'] });
    const iterations = p.cases.filter((c) => c.spec.kind === 'iteration').map((c) => c.spec);
    assert.equal(iterations.length, 8); // {TESLA, full unroll} × {d 256, 512} × {full, low-rank S}
    assert.deepEqual(iterations.map((c) => c.kind === 'iteration' && c.mode).sort(), ['full', 'full', 'full', 'full', 'tesla', 'tesla', 'tesla', 'tesla']);
    for (const c of iterations) {
      assert.ok(c.kind === 'iteration');
      assert.deepEqual([c.n, c.dImg, c.dTxt, c.synSteps, c.batch], [500, 1280, 100, 8, 32]);
      assert.deepEqual([c.warmIterations, c.timedIterations], [6, 5], 'the steady state: several warm-up iterations, the mean of several timed');
    }
    assert.deepEqual([...new Set(iterations.map((c) => c.kind === 'iteration' && c.width))], [256, 512]);
    assert.equal(p.iterationInputs.length, 4, 'TESLA and full unroll share each input file');
    assert.equal(p.expert.numImages * p.expert.captionsPerImage, 29_995);
    const ev = p.cases.find((c) => c.spec.kind === 'eval')!.spec;
    assert.ok(ev.kind === 'eval');
    assert.deepEqual([ev.n, ev.epochs, ev.testImages * ev.captionsPerImage], [500, 100, 5000]);
    assert.equal(p.gradchecks.length, 0, 'the gradient check belongs to quick mode');
    const features = p.cases.find((c) => c.spec.kind === 'features')!;
    assert.deepEqual(features.peer, { skipped: 'no PyTorch copy of the nsfwjs MobileNetV2 offline' });
  });

  it('plans small sizes, a gradient check per iteration case, and a skipped row without photos in quick mode', () => {
    const p = plan({ quick: true, work: '/w', images: { skipped: 'no photos' } });
    assert.equal(p.gradchecks.length, p.cases.filter((c) => c.spec.kind === 'iteration').length);
    assert.ok(p.cases.every((c) => c.spec.kind !== 'features'));
    assert.deepEqual(p.skipped.map((s) => s.reason), ['no photos']);
    assert.ok(p.iterationInputs.every((i) => i.n <= 100 && i.file.startsWith('/w/')));
  });
});
