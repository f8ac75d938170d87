import { strict as assert } from 'node:assert';
import { ready } from '../../src/backend';
import { takeImages } from '../../src/data/dataset';
import { loadSplit } from '../../src/data/registry';
import { extractFeatures, loadFeatures } from '../../src/features';
import { contentWords, neighbourAgreement } from '../../src/features/sanity';
import { realData, tempDir } from '../helpers';

describe('features: do image features carry meaning?', function () {
  this.timeout(240000);

  it('ignores function words, colours and -ing verbs when comparing captions', () => {
    assert.deepEqual([...contentWords('a black dog is running on the grass')], ['dog', 'grass']);
  });

  it('nearest images by MobileNetV2 features share caption nouns well above chance (300 test images)', async function () {
    const root = realData(this);
    await ready(() => undefined);
    const split = takeImages(await loadSplit(root, 'flickr8k', 'test'), 300);
    const r = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir: tempDir() });
    const f = await loadFeatures(r.paths);
    const a = neighbourAgreement(split, f.data, f.dim);
    // measured: nearest 0.533, all pairs 0.382
    assert.ok(a.nearest - a.random > 0.1, JSON.stringify(a));
  });
});
