import { strict as assert } from 'node:assert';
import { ready, tf, useBackend } from '../../src/backend';
import { useBlasKernels } from '../../src/backend/blas';
import { colSum, gatherRows, hostBlock, hostRows, mm } from '../../src/model/linalg';
import { dropoutMask } from '../../src/model/head';
import { finiteArray } from '../../src/model/finite';
import { rng, type Rng } from '../../src/util/random';
import { onlyWhere } from '../helpers';

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

/**
 * mm: every transpose combination, in both orientations of a·bᵀ, against tfjs's own matMul and its gradient, with
 * products on XNNPACK (explicit transposes) and, where it loads, on BLAS (transposes as flags).
 */
for (const kernel of ['XNNPACK', 'BLAS'] as const) describe(`model/linalg: mm, products on ${kernel}`, () => {
  before(async function () {
    const info = await ready(() => undefined);
    onlyWhere(this, info.name === 'wasm', 'on the WebAssembly backend');
    if (kernel === 'BLAS') onlyWhere(this, info.blas !== null, 'where OpenBLAS loads (libopenblas0-pthread and koffi: CI)', 'PTMST_REQUIRE_BLAS');
    useBlasKernels(kernel === 'BLAS');
  });
  after(() => useBlasKernels(true));
  const close = (got: tf.Tensor, want: tf.Tensor, what: string) => {
    const [g, w] = [got.dataSync(), want.dataSync()];
    assert.deepEqual(got.shape, want.shape, `${what}: shape`);
    const scale = Math.max(...Array.from(w, Math.abs));
    const err = Math.max(...Array.from(g, (v, i) => Math.abs(v - w[i]!)));
    assert.ok(err <= 1e-6 * scale, `${what}: max error ${err} against a scale of ${scale}`);
  };
  // [m, k] by [k, n] products; a·bᵀ is computed as (b·aᵀ)ᵀ in the first case (b much larger than a), as is in the second
  for (const [m, k, n] of [[3, 20, 40], [40, 20, 3]] as const) {
    for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
      it(`${m}×${k} by ${k}×${n}, transposeA ${ta}, transposeB ${tb}: value and both gradients`, () => {
        const a = tf.randomNormal(ta ? [k, m] : [m, k], 0, 1, 'float32', 5) as tf.Tensor2D;
        const b = tf.randomNormal(tb ? [n, k] : [k, n], 0, 1, 'float32', 6) as tf.Tensor2D;
        const w = tf.randomNormal([m, n], 0, 1, 'float32', 7);
        const ours = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(mm(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), w));
        const theirs = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, ta, tb), w));
        close(mm(a, b, ta, tb), tf.matMul(a, b, ta, tb), 'value');
        const [ga, gb] = tf.grads(ours)([a, b]);
        const [wa, wb] = tf.grads(theirs)([a, b]);
        close(ga!, wa!, 'd/da');
        close(gb!, wb!, 'd/db');
      });
    }
  }
});

/** colSum: tf.sum over axis 0, as a product with ones where products run on BLAS; value and gradient. */
describe('model/linalg: colSum', () => {
  before(() => ready(() => undefined));
  it('equals a float64 column sum to 1e-6 of its scale; its gradient is the cotangent broadcast over rows', () => {
    tf.tidy(() => {
      const x = tf.randomNormal([128, 37], 0, 1, 'float32', 21) as tf.Tensor2D;
      const got = colSum(x);
      assert.deepEqual(got.shape, [37]);
      const v = x.dataSync();
      const g = got.dataSync();
      for (let j = 0; j < 37; j++) {
        let s = 0;
        for (let i = 0; i < 128; i++) s += v[i * 37 + j]!;
        assert.ok(Math.abs(g[j]! - s) <= 1e-6 * 128, `column ${j}: ${g[j]} against ${s}`);
      }
      const w = tf.randomNormal([37], 0, 1, 'float32', 22);
      const dx = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(colSum(t as tf.Tensor2D), w)))(x).dataSync();
      const wv = w.dataSync();
      for (let i = 0; i < 128 * 37; i++) assert.ok(Math.abs(dx[i]! - wv[i % 37]!) <= 1e-6, `dx[${i}]`);
    });
  });
});

/** hostRows / hostBlock: batches copied from host arrays, the same values tf.gather gives. */
describe('model/linalg: host batches', () => {
  before(() => ready(() => undefined));
  const m = Float32Array.from({ length: 9 * 4 }, (_, k) => Math.sin(k) * 10);
  const idx = Int32Array.from([8, 0, 3, 3, 5]);

  it('hostRows equals tf.gather bit for bit, repeats included', () => {
    const ours = hostRows(m, 4, idx);
    const theirs = tf.gather(tf.tensor2d(m, [9, 4]), idx);
    assert.deepEqual(ours.shape, [5, 4]);
    assert.deepEqual(ours.dataSync(), theirs.dataSync());
    tf.dispose([ours, theirs]);
  });

  it('hostBlock equals gathering rows then columns; null is the identity\'s block', () => {
    const s = Float32Array.from({ length: 9 * 9 }, (_, k) => k / 7);
    const ours = hostBlock(s, 9, idx);
    const full = tf.tensor2d(s, [9, 9]);
    const theirs = tf.gather(tf.gather(full, idx, 0), idx, 1);
    assert.deepEqual(ours.dataSync(), theirs.dataSync());
    const eye = hostBlock(null, 9, idx);
    const eyeTheirs = tf.gather(tf.gather(tf.eye(9), idx, 0), idx, 1);
    assert.deepEqual(eye.dataSync(), eyeTheirs.dataSync(), 'the repeated row 3 has two ones');
    tf.dispose([ours, full, theirs, eye, eyeTheirs]);
  });

  it('on wasm (written into the heap) and on plain JS alike: the same values, independent of the host arrays and of later masks', async () => {
    const suite = (await ready(() => undefined)).name;
    try {
      for (const backend of ['wasm', 'cpu'] as const) {
        if (!(await useBackend(backend))) continue;
        const host = m.slice();
        const rows = hostRows(host, 4, idx);
        const mask = dropoutMask(5, 7, 0.5, rng(9))!;
        const before = Array.from(mask.dataSync());
        host.fill(0); // the tensor holds its own copy
        const later = dropoutMask(5, 7, 0.5, rng(10))!; // reuses dropoutMask's scratch arrays
        assert.deepEqual(Array.from(rows.dataSync()), Array.from(idx).flatMap((r) => Array.from(m.subarray(r * 4, r * 4 + 4))), backend);
        assert.deepEqual(Array.from(mask.dataSync()), before, `${backend}: a mask is not changed by the next one`);
        assert.notDeepEqual(Array.from(later.dataSync()), before);
        tf.dispose([rows, mask, later]);
      }
    } finally {
      await useBackend(suite);
    }
  });

  it('an index outside the matrix is an error naming it, not a short copy', () => {
    assert.throws(() => hostRows(m, 4, [1, 9]), /index 9 at position 1 is outside 0…8/);
    assert.throws(() => hostBlock(null, 9, [-1]), /index -1 at position 0 is outside 0…8/);
  });
});

describe('model/head: dropoutMask', () => {
  it('draws one uniform per entry, row-major: 0 below the rate, 1/(1 − rate) from it on, exactly at the boundary', () => {
    // draws as the stream gives them, k / 2^32; the rate 0.2 lies between 858993459 and 858993460 / 2^32
    const raw = [214748364, 2 ** 31, 858993460, 858993459, 2 ** 32 - 1, 858993460];
    let k = 0;
    const fake: Rng = {
      next: () => raw[k++]! / 2 ** 32,
      nextUint32: (out) => out.forEach((_, i) => (out[i] = raw[k++]!)),
      state: () => k,
    };
    const mask = dropoutMask(2, 3, 0.2, fake)!;
    assert.deepEqual(Array.from(mask.dataSync()), [0, 1.25, 1.25, 0, 1.25, 1.25]);
    assert.equal(k, 6, 'one draw per entry');
    assert.equal(dropoutMask(2, 3, 0, fake), null);
    assert.equal(k, 6, 'no draws without dropout');
    mask.dispose();
  });

  it('is the mask that next() draws would give, with the stream left in the same place', () => {
    const [a, b] = [rng(3), rng(3)];
    const mask = dropoutMask(37, 29, 0.1, a)!;
    const want = Array.from({ length: 37 * 29 }, () => (b.next() >= 0.1 ? 1 / 0.9 : 0));
    assert.deepEqual(Array.from(mask.dataSync()), Array.from(Float32Array.from(want)));
    assert.equal(a.next(), b.next());
    mask.dispose();
  });
});

describe('model/finite: finiteArray', () => {
  it('false for NaN or ±Infinity anywhere, true otherwise (and for an empty array)', () => {
    assert.equal(finiteArray(Float32Array.from([1, -2, 0])), true);
    assert.equal(finiteArray(new Float32Array(0)), true);
    for (const bad of [NaN, Infinity, -Infinity]) assert.equal(finiteArray(Float32Array.from([1, bad, 3])), false, String(bad));
  });
});
