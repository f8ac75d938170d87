import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { gatherRows, mm } from '../../src/model/linalg';

/** gatherRows: a gather forward and a scatter-add backward, the same numbers as a one-hot product. */
describe('model/linalg: gatherRows', () => {
  before(() => ready(() => undefined));
  const t = () => tf.randomNormal([50, 7], 0, 1, 'float32', 3) as tf.Tensor2D;
  const oneHot = (x: tf.Tensor2D, idx: tf.Tensor1D) => mm(tf.oneHot(idx, x.shape[0]).toFloat() as tf.Tensor2D, x);
  const weightedSum = (f: (x: tf.Tensor2D) => tf.Tensor2D, w: tf.Tensor2D) => (x: tf.Tensor) => tf.sum(tf.mul(f(x as tf.Tensor2D), w));

  it('unique rows: value and gradient equal the one-hot product bit for bit', () => {
    const idx = tf.tensor1d([4, 0, 49, 17, 3], 'int32');
    const w = tf.randomNormal([5, 7], 0, 1, 'float32', 4) as tf.Tensor2D;
    const x = t();
    assert.deepEqual(Array.from(gatherRows(x, idx).dataSync()), Array.from(oneHot(x, idx).dataSync()));
    const g = tf.grad(weightedSum((v) => gatherRows(v, idx), w))(x);
    const want = tf.grad(weightedSum((v) => oneHot(v, idx), w))(x);
    // equal as numbers (a row no index selects is +0 here, possibly −0 from the product)
    const [a, b] = [g.dataSync(), want.dataSync()];
    assert.ok(a.every((v, i) => v === b[i]), 'gradients differ');
    assert.equal(a.slice(4 * 7, 5 * 7).join(), w.dataSync().slice(0, 7).join(), 'row 4 receives the first cotangent row');
  });

  it('a repeated row receives the sum of its cotangents', () => {
    const idx = tf.tensor1d([2, 2, 5], 'int32');
    const w = tf.tensor2d([[1, 2], [10, 20], [100, 200]]);
    const g = tf.grad(weightedSum((v) => gatherRows(v, idx), w))(tf.zeros([6, 2]));
    assert.deepEqual(Array.from(g.dataSync()), [0, 0, 0, 0, 11, 22, 0, 0, 0, 0, 100, 200]);
  });
});
