import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { collapseBroadcast, useLightBinaryKernels } from '../../src/backend/wasm-binary';

/** a op b with NumPy broadcasting on the host; float32 +, −, ×, ÷ are exactly fround of the float64 result (and (a − b)² of fround(a − b)²). */
function reference(a: tf.Tensor, b: tf.Tensor, f: (x: number, y: number) => number): Float32Array {
  const out = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
  const [A, B] = [a.dataSync(), b.dataSync()];
  const pad = (s: number[]) => [...Array(out.length - s.length).fill(1), ...s] as number[];
  const [pa, pb] = [pad(a.shape), pad(b.shape)];
  const strides = (s: number[]) => s.map((_, i) => s.slice(i + 1).reduce((x, y) => x * y, 1));
  const [sa, sb, so] = [strides(pa), strides(pb), strides(out)];
  const r = new Float32Array(tf.util.sizeFromShape(out));
  for (let k = 0; k < r.length; k++) {
    let [ia, ib] = [0, 0];
    out.forEach((_, d) => {
      const i = Math.floor(k / so[d]!) % out[d]!;
      if (pa[d] !== 1) ia += i * sa[d]!;
      if (pb[d] !== 1) ib += i * sb[d]!;
    });
    r[k] = f(A[ia]!, B[ib]!);
  }
  return r;
}

/**
 * backend/wasm-binary: Add, Sub, Multiply, RealDiv and SquaredDifference called without cwrap's array marshalling give tfjs-wasm's own
 * kernels' results bit for bit, and the exact result where tfjs-wasm's kernels are wrong (rank 7 and more).
 */
describe('backend/wasm-binary: light calls of the binary kernels', function () {
  before(async function () {
    const info = await ready(() => undefined);
    if (info.name !== 'wasm') this.skip();
  });
  after(() => useLightBinaryKernels(true));

  const ops = {
    add: [tf.add, (x: number, y: number) => x + y],
    sub: [tf.sub, (x: number, y: number) => x - y],
    mul: [tf.mul, (x: number, y: number) => x * y],
    div: [tf.div, (x: number, y: number) => x / y],
    squaredDifference: [tf.squaredDifference, (x: number, y: number) => Math.fround(x - y) ** 2],
  } as const;
  const layouts: [number[], number[]][] = [
    [[37, 11], [37, 11]],
    [[37, 11], [11]],
    [[11], [37, 11]],
    [[37, 11], [37, 1]],
    [[37, 11], []],
    [[], [37, 11]],
    [[2, 3, 4], [3, 1]],
    [[2, 1, 4], [1, 3, 1]],
    [[0, 5], [5]],
    [[2, 1, 2, 1, 2, 3], [1, 2, 1, 2, 1, 1]],
    // rank 7 and more, where tfjs-wasm's own kernels return garbage
    [[1, 1, 1, 1, 1, 1, 3], [3]],
    [[1, 1, 1, 1, 1, 1, 1, 1, 1, 3], [3]],
    [[2, 3, 2, 2, 2, 2, 2], [2, 3, 2, 2, 2, 2, 2]],
    [[2, 3, 1, 1, 2, 2, 2], [1, 1, 2, 2, 1, 1, 1]],
  ];

  for (const [sa, sb] of layouts) {
    const high = Math.max(sa.length, sb.length) > 6;
    it(`[${sa}] with [${sb}]: ${high ? 'the exact result (tfjs-wasm: garbage)' : "bitwise tfjs-wasm's kernels and the exact result"}, one output`, () => {
      tf.tidy(() => {
        const a = tf.randomNormal(sa, 0, 1, 'float32', 1);
        const b = tf.add(tf.abs(tf.randomNormal(sb, 0, 1, 'float32', 2)), 0.5); // away from 0 for the division
        for (const [name, [op, f]] of Object.entries(ops)) {
          useLightBinaryKernels(false);
          const theirs = op(a, b).dataSync();
          useLightBinaryKernels(true);
          const before = tf.memory().numTensors;
          const got = op(a, b);
          assert.equal(tf.memory().numTensors, before + 1, `${name}: one output`);
          assert.deepEqual(got.shape, tf.backend_util.assertAndGetBroadcastShape(sa, sb), name);
          const g = got.dataSync();
          const want = reference(a, b, f);
          assert.ok(g.every((v, i) => Object.is(v, want[i])), `${name}: exact`);
          if (!high) assert.ok(g.every((v, i) => Object.is(v, theirs[i])), `${name}: bitwise tfjs's kernel`);
        }
      });
    });
  }

  it('a broadcast that needs more than 6 dimensions is one clear error, not garbage', () => {
    tf.tidy(() => {
      const a = tf.ones([2, 1, 2, 1, 2, 1, 2]);
      const b = tf.ones([1, 2, 1, 2, 1, 2, 1]);
      assert.throws(() => tf.add(a, b), /Add of shapes \[2,1,2,1,2,1,2\] and \[1,2,1,2,1,2,1\]: a broadcast over more than 6 dimensions/);
    });
  });

  it('collapseBroadcast merges what spans or repeats together and drops size-1 dimensions', () => {
    assert.deepEqual(collapseBroadcast([5, 6, 7], [5, 6, 7]), [[210], [210]]);
    assert.deepEqual(collapseBroadcast([2, 3, 4], [3, 1]), [[2, 3, 4], [1, 3, 1]]);
    assert.deepEqual(collapseBroadcast([1, 1, 1, 1, 1, 1, 3], [3]), [[3], [3]]);
    assert.deepEqual(collapseBroadcast([4, 5, 6], [6]), [[20, 6], [1, 6]]);
    assert.deepEqual(collapseBroadcast([1, 1], [1]), [[], []]);
  });

  it('int32 operands and mismatched shapes go to tfjs (same values, same error)', () => {
    tf.tidy(() => {
      const got = tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32'));
      assert.equal(got.dtype, 'int32');
      assert.deepEqual(Array.from(got.dataSync()), [5, 7, 9]);
      assert.throws(() => tf.mul(tf.zeros([3, 4]), tf.zeros([5])), /broadcast/i);
    });
  });
});
