import { strict as assert } from 'node:assert';
import { ready, tf, useBackend } from '../../src/backend';
import { hostTensor, withValues } from '../../src/backend/host-tensor';
import { initDual, dualShape } from '../../src/model/dual';
import { embed } from '../../src/model/head';
import { mm } from '../../src/model/linalg';
import { evaluateRetrieval, retrievalFromScores } from '../../src/model/retrieval';
import { NonFiniteError } from '../../src/errors';
import { rng } from '../../src/util/random';

/** backend/host-tensor: tensors written from the host and read on it without extra copies, on wasm and plain JS. */
describe('backend/host-tensor: hostTensor and withValues', () => {
  it('hostTensor writes and withValues reads the same values as tf.tensor and data(), on wasm and plain JS; nothing leaks', async () => {
    const suite = (await ready(() => undefined)).name;
    try {
      for (const backend of ['wasm', 'cpu'] as const) {
        if (!(await useBackend(backend))) continue;
        const values = Float32Array.from({ length: 6 * 7 }, (_, i) => Math.sin(i) * 100);
        const before = tf.memory().numTensors;
        const t = hostTensor<tf.Rank.R2>([6, 7], (out) => out.set(values));
        assert.deepEqual(t.shape, [6, 7]);
        const seen = await withValues(t, (v) => Array.from(v));
        assert.deepEqual(seen, Array.from(values), backend);
        assert.deepEqual(Array.from(t.dataSync()), Array.from(values), `${backend}: the tensor is intact after withValues`);
        const ints = tf.tensor([1, 2, 3], [3], 'int32');
        assert.deepEqual(await withValues(ints, (v) => Array.from(v)), [1, 2, 3], `${backend}: other dtypes are read back`);
        tf.dispose([t, ints]);
        assert.equal(tf.memory().numTensors, before, backend);
      }
    } finally {
      await useBackend(suite);
    }
  });

  it("evaluateRetrieval reads its scores in place: the recalls of the scores read back, and overflowing heads stop with the label, the scores freed", async () => {
    await ready(() => undefined);
    const r = rng(4);
    const theta = initDual(dualShape(12, 7, 8), () => r.next());
    const n = 9;
    const data = {
      numImages: n,
      numCaptions: 2 * n,
      dImg: 12,
      dTxt: 7,
      img: Float32Array.from({ length: n * 12 }, () => r.next() - 0.5),
      txt: Float32Array.from({ length: 2 * n * 7 }, () => r.next() - 0.5),
      captionToImage: Int32Array.from({ length: 2 * n }, (_, j) => j >> 1),
      imageToCaptions: Array.from({ length: n }, (_, i) => [2 * i, 2 * i + 1]),
    };
    const scores = tf.tidy(() => mm(embed(theta.img, tf.tensor2d(data.img, [n, 12])), embed(theta.txt, tf.tensor2d(data.txt, [2 * n, 7])), false, true));
    const want = retrievalFromScores(scores.dataSync() as Float32Array, n, data.captionToImage, data.imageToCaptions);
    scores.dispose();
    const before = tf.memory().numTensors;
    assert.deepEqual(await evaluateRetrieval(theta, data, 'test split'), want);
    assert.equal(tf.memory().numTensors, before);
    const huge = { ...data, img: data.img.map(() => 3e38) };
    await assert.rejects(evaluateRetrieval(theta, huge, 'test split'), (e: Error) => e instanceof NonFiniteError && /test split: retrieval scores are NaN or infinite/.test(e.message));
    assert.equal(tf.memory().numTensors, before, 'the scores are freed after the error too');
    tf.dispose(Object.values(theta.img).concat(Object.values(theta.txt)));
  });
});
