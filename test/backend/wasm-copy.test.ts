import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { useLightCopyKernels } from '../../src/backend/wasm-copy';

/** values with signed zeros, NaN and infinities, so that "the same bytes" is checked, not just equal numbers */
function awkward(shape: number[], dtype: 'float32' | 'int32' = 'float32'): tf.Tensor {
  const n = tf.util.sizeFromShape(shape);
  if (dtype === 'int32') return tf.tensor(Int32Array.from({ length: n }, (_, i) => (i * 7919) % 2001 - 1000), shape, 'int32');
  const special = [-0, NaN, Infinity, -Infinity, 1e-45];
  return tf.tensor(Float32Array.from({ length: n }, (_, i) => (i % 13 === 0 ? special[(i / 13) % special.length]! : Math.sin(i) * 1e3)), shape);
}

/** `op` with tfjs's kernels and with ours: same shapes, dtypes and bytes, and as many tensors left */
function sameAsTfjs(op: () => tf.Tensor | tf.Tensor[]): void {
  tf.tidy(() => {
    useLightCopyKernels(false);
    let before = tf.memory().numTensors;
    const theirs = [op()].flat();
    const made = tf.memory().numTensors - before;
    useLightCopyKernels(true);
    before = tf.memory().numTensors;
    const ours = [op()].flat();
    assert.equal(tf.memory().numTensors - before, made, 'as many tensors as with tfjs');
    assert.equal(ours.length, theirs.length);
    ours.forEach((o, k) => {
      assert.deepEqual(o.shape, theirs[k]!.shape, `output ${k}: shape`);
      assert.equal(o.dtype, theirs[k]!.dtype, `output ${k}: dtype`);
      const [a, b] = [o.dataSync(), theirs[k]!.dataSync()];
      assert.equal(a.length, b.length);
      for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `output ${k}, entry ${i}: ${a[i]} against tfjs's ${b[i]}`);
    });
  });
}

/**
 * backend/wasm-copy: Identity, Cast, Slice, SplitV and GatherV2 as heap copies (or a shared buffer) give tfjs-wasm's
 * own kernels' bytes, keep tensors independent of each other's disposal, and leak nothing.
 */
describe('backend/wasm-copy: heap copies for the copying kernels', function () {
  before(async function () {
    const info = await ready(() => undefined);
    if (info.name !== 'wasm') this.skip();
  });
  after(() => useLightCopyKernels(true));

  it('Identity and a same-dtype Cast share the buffer: the copy outlives its source, and disposing both frees it', () => {
    const start = tf.memory() as tf.MemoryInfo & { numDataBuffers: number };
    for (const make of [(x: tf.Tensor) => tf.clone(x), (x: tf.Tensor) => tf.cast(x, x.dtype)]) {
      for (const dtype of ['float32', 'int32'] as const) {
        const x = awkward([5, 7], dtype);
        const want = x.dataSync().slice();
        const y = make(x);
        assert.equal((tf.memory() as typeof start).numDataBuffers, start.numDataBuffers + 1, `${dtype}: one buffer for both`);
        x.dispose();
        const got = y.dataSync();
        assert.ok(got.every((v, i) => Object.is(v, want[i])), `${dtype}: the copy reads its values after the source is gone`);
        y.dispose();
        const end = tf.memory() as typeof start;
        assert.equal(end.numDataBuffers, start.numDataBuffers, `${dtype}: buffer freed`);
        assert.equal(end.numBytes, start.numBytes, `${dtype}: bytes freed`);
      }
    }
  });

  it('Identity, Cast and their gradients: the same bytes as tfjs', () => {
    sameAsTfjs(() => tf.clone(awkward([3, 4])));
    sameAsTfjs(() => tf.cast(awkward([3, 4]), 'float32'));
    sameAsTfjs(() => tf.cast(awkward([3, 4]), 'int32')); // another dtype: tfjs's kernel
    sameAsTfjs(() => tf.cast(awkward([3, 4], 'int32'), 'float32'));
    sameAsTfjs(() => tf.grad((x: tf.Tensor) => tf.sum(tf.mul(tf.clone(x), x)))(tf.range(0, 6).reshape([2, 3])));
  });

  const slices: [string, number[], number[], number[]][] = [
    ['a 1-D run', [1000], [17], [900]],
    ['a short 1-D run', [40], [3], [5]],
    ['whole rows', [30, 20], [4, 0], [9, 20]],
    ['a block of columns (one run per row)', [30, 20], [2, 3], [5, 16]],
    ['narrow columns (a word loop)', [30, 20], [2, 3], [7, 2]],
    ['an empty slice', [30, 20], [2, 3], [0, 5]],
    ['rank 3, strided (tfjs)', [4, 5, 6], [1, 2, 3], [2, 2, 2]],
    ['rank 3, continuous', [4, 5, 6], [1, 0, 0], [2, 5, 6]],
  ];
  for (const [what, shape, begin, size] of slices) {
    it(`Slice: ${what}, float32 and int32`, () => {
      for (const dtype of ['float32', 'int32'] as const) sameAsTfjs(() => tf.slice(awkward(shape, dtype), begin, size));
    });
  }

  it("Slice's gradient, and SplitV on either axis: the same bytes as tfjs", () => {
    sameAsTfjs(() => tf.grad((x: tf.Tensor) => tf.sum(tf.square(tf.slice(x, [1, 2], [3, 4]))))(awkward([6, 7])));
    sameAsTfjs(() => tf.split(awkward([394]), [300, 1, 64, 29]));
    sameAsTfjs(() => tf.split(awkward([12, 9], 'int32'), [2, 3, 4], 1));
    sameAsTfjs(() => tf.split(awkward([12, 9]), 3, 0));
  });

  const gathers: [string, number[], number[], number[], number][] = [
    ['rows', [50, 40], [5], [3, 0, 49, 3, 17], 0],
    ['columns', [50, 40], [5], [39, 0, 7, 7, 1], 1],
    ['the last axis as −1', [6, 5, 4], [3], [3, 0, 2], -1],
    ['the middle axis of rank 3 with 2-D indices', [6, 5, 40], [2, 2], [4, 0, 1, 4], 1],
    ['no indices', [6, 5], [0], [], 0],
  ];
  for (const [what, shape, idxShape, idx, axis] of gathers) {
    it(`GatherV2: ${what}, float32 and int32`, () => {
      for (const dtype of ['float32', 'int32'] as const) {
        sameAsTfjs(() => tf.gather(awkward(shape, dtype), tf.tensor(idx, idxShape, 'int32'), axis));
      }
    });
  }

  it("GatherV2 with batchDims: the right rows, where tfjs-wasm's kernel returns leftover heap", () => {
    tf.tidy(() => {
      const x = tf.range(0, 60).reshape([3, 4, 5]);
      const got = tf.gather(x, tf.tensor([[0, 2], [1, 1], [3, 0]], [3, 2], 'int32'), 1, 1);
      assert.deepEqual(got.shape, [3, 2, 5]);
      // batch b, index j: row idx[b][j] of x[b], i.e. entries 20b + 5·idx … + 4
      const want = [[0, 2], [1, 1], [3, 0]].flatMap((row, b) => row.flatMap((r) => [0, 1, 2, 3, 4].map((c) => 20 * b + 5 * r + c)));
      assert.deepEqual(Array.from(got.dataSync()), want);
    });
  });

  it('GatherV2: an index out of range is one error naming it', () => {
    for (const bad of [50, -1]) {
      assert.throws(() => tf.tidy(() => tf.gather(awkward([50, 4]), tf.tensor([0, bad], [2], 'int32'))), new RegExp(`index value ${bad} is not in \\[0, 49\\]`));
    }
  });
});
