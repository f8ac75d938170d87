import { strict as assert } from 'node:assert';
import { ready } from '../../src/backend';
import { DataConfig } from '../../src/config/schemas';
import { distill } from '../../src/distill';
import { evaluateMethod } from '../../src/evaluate';
import { fractionImages, subsetImages } from '../../src/features/feature-set';
import { loadFeatureSets, prepareFeatureSets } from '../../src/features/load';
import { buildBuffer, defaultBufferDir } from '../../src/trajectory/buffer';
import { readBuffer } from '../../src/trajectory/store';
import { sharedCache, tempDir, toySet } from '../helpers';

/** Scaling studies: a fraction of the train split (`data.trainFraction`), and another dataset's test split (`eval.testDataset`). */
describe('data.trainFraction and eval.testDataset', function () {
  this.timeout(600000);

  it('fractionImages: ⌈f·n⌉ images, sorted, without repeats, nested across fractions, the same every call', () => {
    const n = 6000;
    const quarter = fractionImages(n, 0.25);
    const half = fractionImages(n, 0.5);
    assert.equal(quarter.length, 1500);
    assert.equal(half.length, 3000);
    assert.equal(fractionImages(7, 0.5).length, 4);
    assert.deepEqual(fractionImages(n, 0.25), quarter);
    const inHalf = new Set(half);
    assert.ok(quarter.every((i) => inHalf.has(i)), '25% ⊂ 50%');
    assert.equal(new Set(quarter).size, quarter.length);
    assert.ok(quarter.every((v, k) => k === 0 || v > quarter[k - 1]!), 'sorted');
    assert.ok(quarter[quarter.length - 1]! > n / 2, 'drawn from the whole split, not its head');
    assert.deepEqual(fractionImages(5, 1), Int32Array.from([0, 1, 2, 3, 4]));
    assert.throws(() => fractionImages(10, 0), /trainFraction/);
  });

  it('subsetImages keeps each chosen image with all its captions, rows copied, maps renumbered, another digest', () => {
    const set = toySet(3);
    const images = Int32Array.from([1, 7, 30]);
    const sub = subsetImages(set, images, 'test');
    assert.equal(sub.numImages, 3);
    assert.equal(sub.numCaptions, 6);
    assert.notEqual(sub.digest, set.digest);
    images.forEach((i, k) => {
      assert.deepEqual(sub.img.subarray(k * set.dImg, (k + 1) * set.dImg), set.img.subarray(i * set.dImg, (i + 1) * set.dImg));
      const caps = sub.imageToCaptions[k]!;
      assert.equal(caps.length, set.imageToCaptions[i]!.length);
      caps.forEach((c, m) => {
        const orig = set.imageToCaptions[i]![m]!;
        assert.equal(sub.captionToImage[c], k);
        assert.deepEqual(sub.txt.subarray(c * set.dTxt, (c + 1) * set.dTxt), set.txt.subarray(orig * set.dTxt, (orig + 1) * set.dTxt));
      });
    });
  });

  describe('on the shapes set', () => {
    const workspace = tempDir();
    const data = { dataset: 'shapes', cacheDir: sharedCache() };
    const model = { dOut: 16 };
    before(async () => {
      await ready(() => undefined);
      await prepareFeatureSets(data, ['train', 'val', 'test']);
    });

    it('loadFeatureSets cuts train (not val or test) to the fraction; experts on it get their own folder', async () => {
      const [full, fullVal] = await loadFeatureSets(data, ['train', 'val']);
      const [half, halfVal] = await loadFeatureSets({ ...data, trainFraction: 0.5 }, ['train', 'val']);
      assert.equal(half!.numImages, Math.ceil(full!.numImages / 2));
      assert.equal(half!.numCaptions, half!.imageToCaptions.flat().length);
      assert.equal(halfVal!.digest, fullVal!.digest);
      assert.notEqual(half!.digest, full!.digest);
      const c = { data: DataConfig.parse({ ...data, trainFraction: 0.25 }), model: { dOut: 16, temperature: 0.07, dropout: 0.1 }, buffer: { seed: 0, epochs: 10 }, workspace };
      assert.match(defaultBufferDir(c as Parameters<typeof defaultBufferDir>[0]), /-s0-f25$/);
      assert.match(defaultBufferDir({ ...c, data: DataConfig.parse(data) } as Parameters<typeof defaultBufferDir>[0]), /-s0$/);
    });

    it('a distillation refuses experts of other training features; eval.testDataset: the experts re-scored on a test split reproduce what their buffer recorded; students score the same on the same split', async () => {
      const buffer = (await buildBuffer({ data, model, buffer: { numExperts: 1, epochs: 2, workers: 1 }, workspace })).dir;
      // experts of the whole split do not teach a distillation of half of it
      const phases = [{ start: [0, 1], size: 6, iterations: 1 }];
      await assert.rejects(
        distill({ data: { ...data, trainFraction: 0.5 }, expertBuffer: buffer, workspace, workers: 1, name: 'half', distill: { phases }, out: 'runs/half' }),
        /other training features/,
      );
      const { trajectories } = await readBuffer(buffer);
      const full = { kind: 'full', buffer, numExperts: 1 };
      // the shapes test split named as the "other" dataset: the re-scored snapshots must equal the recorded ones
      const rescored = await evaluateMethod({ data, model, method: full, eval: { testDataset: 'shapes' }, workspace });
      const recorded = trajectories[0]!.retrieval;
      assert.equal(rescored.checkpoints[0]!.length, recorded.length);
      rescored.checkpoints[0]!.forEach((c, e) => assert.ok(Math.abs(c.test.rMean - recorded[e]!.rMean) < 1e-3, `epoch ${e}: ${c.test.rMean} vs ${recorded[e]!.rMean}`));
      const protocol = { runs: 1, epochs: 4, evalEvery: 2, decayEpoch: 3 };
      const method = { kind: 'coreset', selection: 'random', size: 30 };
      const own = await evaluateMethod({ data, model, method, eval: protocol, workers: 1, workspace });
      const named = await evaluateMethod({ data, model, method, eval: { ...protocol, testDataset: 'shapes' }, workers: 1, workspace });
      assert.deepEqual(named.checkpoints, own.checkpoints);
      await assert.rejects(evaluateMethod({ data, model, method, eval: { ...protocol, testDataset: 'no-such-set' }, workers: 1, workspace }), /unknown dataset "no-such-set"/);
    });
  });
});
