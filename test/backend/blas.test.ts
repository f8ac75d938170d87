import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { sgdStepKernel, useBlasKernels } from '../../src/backend/blas';
import { sgd } from '../../src/model/sgd';
import { maxAbs, maxAbsDiff, onlyWhere } from '../helpers';

/** a·b in float64 on the host for 3-D (or 2-D) operands with optional transposes and a batch of one broadcast. */
function reference(a: tf.Tensor, b: tf.Tensor, ta: boolean, tb: boolean): { shape: number[]; values: Float64Array } {
  const [A, B] = [a.dataSync(), b.dataSync()];
  const ra = a.shape.length;
  const rb = b.shape.length;
  const batchA = ra === 3 ? a.shape[0]! : 1;
  const batchB = rb === 3 ? b.shape[0]! : 1;
  const [ar, ac] = [a.shape[ra - 2]!, a.shape[ra - 1]!];
  const [br, bc] = [b.shape[rb - 2]!, b.shape[rb - 1]!];
  const m = ta ? ac : ar;
  const k = ta ? ar : ac;
  const n = tb ? br : bc;
  const batch = Math.max(batchA, batchB);
  const out = new Float64Array(batch * m * n);
  for (let t = 0; t < batch; t++) {
    const oa = (batchA === 1 ? 0 : t) * ar * ac;
    const ob = (batchB === 1 ? 0 : t) * br * bc;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let p = 0; p < k; p++) s += A[oa + (ta ? p * ac + i : i * ac + p)]! * B[ob + (tb ? j * bc + p : p * bc + j)]!;
        out[(t * m + i) * n + j] = s;
      }
    }
  }
  return { shape: ra === 3 || rb === 3 ? [batch, m, n] : [m, n], values: out };
}

/**
 * backend/blas: the wasm backend's BatchMatMul on cblas_sgemm, against float64 products and against XNNPACK's
 * kernel, for every transpose combination and batch layout it handles, and through tfjs's matMul gradient.
 */
describe('backend/blas: products on BLAS', function () {
  before(async function () {
    const info = await ready(() => undefined);
    onlyWhere(this, info.blas !== null, 'where OpenBLAS loads (libopenblas0-pthread and koffi: CI)', 'PTMST_REQUIRE_BLAS');
  });
  afterEach(() => useBlasKernels(true));

  const cases: { a: number[]; b: number[]; ta: boolean; tb: boolean; what: string }[] = [];
  for (const [ta, tb] of [[false, false], [true, false], [false, true], [true, true]] as const) {
    const [m, k, n] = [7, 33, 5];
    const sa = ta ? [k, m] : [m, k];
    const sb = tb ? [n, k] : [k, n];
    cases.push({ a: sa, b: sb, ta, tb, what: '2-D' });
    cases.push({ a: [3, ...sa], b: [3, ...sb], ta, tb, what: 'batch of 3 against 3' });
    cases.push({ a: [3, ...sa], b: sb, ta, tb, what: 'batch of 3 against one matrix' });
    cases.push({ a: sa, b: [3, ...sb], ta, tb, what: 'one matrix against a batch of 3' });
  }
  cases.push({ a: [1, 40], b: [40, 1], ta: false, tb: false, what: 'a row by a column' });

  for (const c of cases) {
    it(`${c.what}: [${c.a}] by [${c.b}], transposeA ${c.ta}, transposeB ${c.tb}: float64 to 1e-6, XNNPACK's kernel to 1e-5 (of Σ|a||b|)`, () => {
      tf.tidy(() => {
        const a = tf.randomNormal(c.a, 0, 1, 'float32', 11);
        const b = tf.randomNormal(c.b, 0, 1, 'float32', 12);
        const before = tf.memory().numTensors;
        const got = tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, c.ta, c.tb);
        assert.equal(tf.memory().numTensors, before + 1, 'one output, no temporaries left');
        const want = reference(a, b, c.ta, c.tb);
        assert.deepEqual(got.shape, want.shape);
        const g = got.dataSync();
        // float32's error bound for a sum of products is relative to Σ|a||b|, not to the (possibly cancelling) result:
        // a 40-term dot product of 0.25 measured 3e-7 off on one CPU's OpenBLAS kernel
        const scale = maxAbs(reference(tf.abs(a), tf.abs(b), c.ta, c.tb).values);
        const err = maxAbsDiff(g, want.values);
        assert.ok(err <= 1e-6 * scale, `max error ${err} against a scale Σ|a||b| of ${scale}`);
        useBlasKernels(false);
        const x = tf.matMul(a as tf.Tensor3D, b as tf.Tensor3D, c.ta, c.tb).dataSync();
        useBlasKernels(true);
        const errX = maxAbsDiff(g, x);
        assert.ok(errX <= 1e-5 * scale, `against XNNPACK: max error ${errX}`);
      });
    });
  }

  it('an empty inner dimension gives zeros; an empty outer one an empty result', () => {
    tf.tidy(() => {
      assert.deepEqual(Array.from(tf.matMul(tf.zeros([2, 0]) as tf.Tensor2D, tf.zeros([0, 3]) as tf.Tensor2D).dataSync()), [0, 0, 0, 0, 0, 0]);
      assert.deepEqual(tf.matMul(tf.zeros([0, 4]) as tf.Tensor2D, tf.ones([4, 3]) as tf.Tensor2D).shape, [0, 3]);
    });
  });

  it('mismatched inner dimensions are one clear error', () => {
    assert.throws(() => tf.tidy(() => tf.matMul(tf.ones([2, 3]) as tf.Tensor2D, tf.ones([4, 5]) as tf.Tensor2D)), /inner shapes \(3\) and \(4\)/);
  });

  // FusedConv2D: 1 × 1 at stride 1 (BLAS), and shapes that go back to XNNPACK (3 × 3, stride 2, padding)
  for (const c of [
    { filter: [1, 1, 24, 40], strides: 1, pad: 'valid', bias: true, activation: 'relu6' },
    { filter: [1, 1, 24, 40], strides: 1, pad: 'same', bias: false, activation: 'linear' },
    { filter: [1, 1, 24, 40], strides: 1, pad: 'valid', bias: true, activation: 'relu' },
    { filter: [1, 1, 24, 40], strides: 2, pad: 'valid', bias: true, activation: 'relu6' },
    { filter: [3, 3, 24, 40], strides: 1, pad: 'same', bias: true, activation: 'relu6' },
  ] as const) {
    it(`fused conv2d ${c.filter.join('×')}, stride ${c.strides}, ${c.pad}, bias ${c.bias}, ${c.activation}: XNNPACK's kernel to 1e-5`, () => {
      tf.tidy(() => {
        const x = tf.randomNormal([2, 9, 11, 24], 0, 1, 'float32', 16) as tf.Tensor4D;
        const filter = tf.randomNormal([...c.filter], 0, 0.3, 'float32', 17) as tf.Tensor4D;
        const bias = c.bias ? (tf.randomNormal([40], 0, 1, 'float32', 18) as tf.Tensor1D) : undefined;
        const conv = () => tf.fused.conv2d({ x, filter, strides: c.strides, pad: c.pad, activation: c.activation, ...(bias ? { bias } : {}) }).dataSync();
        const ours = conv();
        // an image's output does not depend on its place in the batch (the second image alone: bitwise its rows)
        const second = tf.fused.conv2d({ x: tf.slice(x, [1], [1]), filter, strides: c.strides, pad: c.pad, activation: c.activation, ...(bias ? { bias } : {}) }).dataSync();
        assert.deepEqual(Array.from(second), Array.from(ours.subarray(ours.length / 2)));
        useBlasKernels(false);
        const theirs = conv();
        const scale = maxAbs(theirs);
        assert.ok(scale > 0.5, 'a non-trivial output');
        assert.ok(maxAbsDiff(ours, theirs) <= 1e-5 * scale, `max error ${maxAbsDiff(ours, theirs)} against a scale of ${scale}`);
      });
    });
  }

  it("tfjs's matMul gradients equal XNNPACK's to 1e-5", () => {
    tf.tidy(() => {
      const a = tf.randomNormal([32, 1280], 0, 1, 'float32', 13) as tf.Tensor2D;
      const b = tf.randomNormal([256, 1280], 0, 1, 'float32', 14) as tf.Tensor2D;
      const w = tf.randomNormal([32, 256], 0, 1, 'float32', 15);
      const f = (x: tf.Tensor, y: tf.Tensor) => tf.sum(tf.mul(tf.matMul(x as tf.Tensor2D, y as tf.Tensor2D, false, true), w));
      const ours = tf.grads(f)([a, b]).map((g) => g.dataSync());
      useBlasKernels(false);
      const theirs = tf.grads(f)([a, b]).map((g) => g.dataSync());
      for (const [i, g] of ours.entries()) {
        const t = theirs[i]!;
        const scale = maxAbs(t);
        const err = maxAbsDiff(g, t);
        assert.ok(err <= 1e-5 * scale, `gradient ${i}: max error ${err} against a scale of ${scale}`);
      }
    });
  });

  describe('the SGD step kernel', () => {
    const shape = [37, 11];
    const [p, g, v] = [21, 22, 23].map((seed) => tf.randomNormal(shape, 0, 1, 'float32', seed));
    after(() => tf.dispose([p!, g!, v!]));

    for (const o of [
      { momentum: 0, weightDecay: 0, velocity: false },
      { momentum: 0, weightDecay: 5e-4, velocity: false },
      { momentum: 0.9, weightDecay: 5e-4, velocity: true },
      { momentum: 0.5, weightDecay: 0, velocity: true },
    ]) {
      it(`momentum ${o.momentum}, weight decay ${o.weightDecay}${o.velocity ? ', with a velocity' : ''}: PyTorch's formula in float64 to 1e-6, through sgd()`, () => {
        const before = tf.memory().numTensors;
        const lr = 0.3;
        const out = sgd({ w: p! }, { w: g! }, o.velocity ? { w: v! } : undefined, () => lr, o);
        const [P, G, V] = [p!, g!, v!].map((t) => Float64Array.from(t.dataSync()));
        const d = P.map((x, i) => G[i]! + o.weightDecay * x);
        const vNew = o.velocity ? d.map((x, i) => o.momentum * V[i]! + x) : d;
        const pNew = P.map((x, i) => x - lr * vNew[i]!);
        assert.ok(maxAbsDiff(out.params.w!.dataSync(), pNew) <= 1e-6 * maxAbs(pNew), 'parameter');
        if (o.velocity) assert.ok(maxAbsDiff(out.velocity!.w!.dataSync(), vNew) <= 1e-6 * maxAbs(vNew), 'velocity');
        // the kernel ran (not the ops): it gives the same tensors when called directly
        const direct = sgdStepKernel(p!, g!, o.velocity ? v! : undefined, { lr, momentum: o.momentum, weightDecay: o.weightDecay });
        assert.ok(direct, 'the kernel applies on wasm with BLAS outside a tape');
        assert.deepEqual(Array.from(direct.param.dataSync()), Array.from(out.params.w!.dataSync()));
        tf.dispose([...Object.values(out.params), ...Object.values(out.velocity ?? {}), direct.param, ...(direct.velocity ? [direct.velocity] : [])]);
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      });
    }

    it("does not apply under a tape or with BLAS off; sgd() then runs the ops, and gradients flow through it", () => {
      const step = (w: tf.Tensor) => sgd({ w }, { w: tf.mul(w, w) }, undefined, () => 0.1, { momentum: 0, weightDecay: 0 }).params.w!;
      tf.tidy(() => {
        // d/dw Σ (w − 0.1 w²) = 1 − 0.2 w
        const grad = tf.grad((w: tf.Tensor) => tf.sum(step(w)))(p!);
        const want = p!.dataSync().map((x) => 1 - 0.2 * x);
        assert.ok(maxAbsDiff(grad.dataSync(), want) <= 1e-6);
        let inside: unknown = 'not called';
        tf.grad((w: tf.Tensor) => {
          inside = sgdStepKernel(w, g!, undefined, { lr: 0.1, momentum: 0, weightDecay: 0 });
          return tf.sum(w);
        })(p!);
        assert.equal(inside, undefined, 'no kernel under a tape');
        useBlasKernels(false);
        assert.equal(sgdStepKernel(p!, g!, undefined, { lr: 0.1, momentum: 0, weightDecay: 0 }), undefined, 'no kernel with BLAS off');
      });
    });

    it('a velocity of another shape is one clear error', () => {
      const w = tf.zeros([3, 11]);
      assert.throws(() => sgdStepKernel(p!, g!, w, { lr: 0.1, momentum: 0.9, weightDecay: 0 }), /velocity has shape \[3,11\], the parameter \[37,11\]/);
      w.dispose();
    });
  });
});
