import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { NonFiniteError } from '../../src/errors';
import type { FeatureSet } from '../../src/features/feature-set';
import { type ExpertOptions, type ExpertProgress, trainExpert } from '../../src/trajectory/expert';
import { rng } from '../../src/util/random';

function toySet(seed: number): FeatureSet {
  const r = rng(seed);
  const nImg = 30;
  const img = Float32Array.from({ length: nImg * 12 }, () => r.next());
  const captionToImage = Int32Array.from({ length: nImg * 2 }, (_, j) => Math.floor(j / 2));
  const txt = Float32Array.from({ length: nImg * 2 * 6 }, (_, k) => img[captionToImage[Math.floor(k / 6)]! * 12 + (k % 6)]! + 0.1 * r.next());
  return {
    dataset: 'toy', split: 'train', imageEncoder: 'toy', textEncoder: 'toy', numImages: nImg, numCaptions: nImg * 2,
    dImg: 12, dTxt: 6, img, txt, captionToImage, imageToCaptions: Array.from({ length: nImg }, (_, i) => [2 * i, 2 * i + 1]), digest: 'toy',
  };
}

describe('trajectory/expert', function () {
  this.timeout(60000);
  before(() => ready(() => undefined));
  const opts: ExpertOptions = { epochs: 4, lrImg: 0.1, lrTxt: 0.1, batchSize: 16, dropout: 0.1, loss: 'infonce', dOut: 8, temperature: 0.07, label: 'expert 7' };

  it('resumes from any finished epoch to a bit-identical trajectory', async () => {
    const train = toySet(3);
    const saved: ExpertProgress[] = [];
    const straight = await trainExpert(train, { test: train }, opts, rng(11), undefined, { onEpoch: async (p) => void saved.push(p) });
    assert.equal(saved.length, 4);
    for (const from of saved.slice(0, 3)) {
      const before = tf.memory().numTensors;
      const resumed = await trainExpert(train, { test: train }, opts, rng(999), undefined, { from });
      assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
      assert.deepEqual(Array.from(resumed.img), Array.from(straight.img), `from epoch ${from.epochs}`);
      assert.deepEqual(Array.from(resumed.txt), Array.from(straight.txt));
      assert.deepEqual(resumed.retrieval, straight.retrieval);
    }
  });

  it('passesPerEpoch: snapshot k of an expert taking 2 passes per epoch is snapshot 2k of one taking 1', async () => {
    const train = toySet(4);
    const one = await trainExpert(train, {}, opts, rng(5));
    const two = await trainExpert(train, {}, { ...opts, epochs: 2, passesPerEpoch: 2 }, rng(5));
    const p = one.img.length / 5;
    assert.equal(two.img.length, 3 * p);
    for (const k of [0, 1, 2]) assert.deepEqual(Array.from(two.img.subarray(k * p, (k + 1) * p)), Array.from(one.img.subarray(2 * k * p, (2 * k + 1) * p)), `snapshot ${k}`);
  });

  it('stops with a NonFiniteError naming the expert and the epoch when training diverges', async () => {
    await assert.rejects(trainExpert(toySet(3), {}, { ...opts, lrImg: 1e30, lrTxt: 1e30 }, rng(1)), (e: unknown) =>
      e instanceof NonFiniteError && /^expert 7: the training loss or the parameters became NaN or infinite in epoch 1; stopped/.test(e.message),
    );
  });
});
