import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend';
import { SUM_BLOCK, blockedSum, scaleByScalar } from '../../src/model/reduce';
import { rng } from '../../src/util/random';
import { onSuiteAndWasm } from '../helpers';

/** The float64 sum of float32 values (its own error, ~n·2⁻⁵³ at worst, is far below what is asserted). */
const sum64 = (v: Float32Array): number => v.reduce((s, x) => s + x, 0);

/** Relative error of a tfjs scalar against a float64 value. */
const relTo = (t: tf.Scalar, exact: number): number => {
  const v = t.dataSync()[0]!;
  t.dispose();
  return Math.abs(v - exact) / Math.abs(exact);
};

describe('model/reduce: blockedSum', function () {
  this.timeout(600000);

  // one image tower of the paper's CC3M heads (2304 → 2048): W1, W2, b1, b2, γ, β
  const PAPER_TOWER = 2304 * 2048 + 2048 * 2048 + 4 * 2048;

  it(`${PAPER_TOWER.toLocaleString('en')} values (a 2048-wide tower) within 1e-6 of float64, where one tf.sum is not on wasm`, async () => {
    const r = rng(3);
    // squared differences (the matching loss's norms) and signed values (its dot product)
    const cases = {
      squares: Float32Array.from({ length: PAPER_TOWER }, () => (r.next() - 0.5) ** 2),
      signed: Float32Array.from({ length: PAPER_TOWER }, () => r.next() - 0.3),
    };
    await onSuiteAndWasm(async (backend) => {
      for (const [name, values] of Object.entries(cases)) {
        const exact = sum64(values);
        const x = tf.tensor1d(values);
        const blocked = relTo(tf.tidy(() => blockedSum(x)), exact);
        const plain = relTo(tf.sum(x), exact);
        x.dispose();
        assert.ok(blocked < 1e-6, `${backend}, ${name}: blockedSum relative error ${blocked}`);
        // wasm's Sum adds the values one after another in float32: measured 8e-3 (squares) and 1.3e-4 (signed)
        if (backend === 'wasm') assert.ok(plain > 1e-6, `${backend}, ${name}: one tf.sum was expected to miss by more than 1e-6 (${plain})`);
      }
    });
  });

  it('any shape, any length: short tensors are one tf.sum, long ones are padded blocks', async () => {
    await onSuiteAndWasm(async (backend) => {
      tf.tidy(() => {
        const small = tf.tensor2d([[1, 2, 3], [4, 5, 6.5]]);
        assert.equal(blockedSum(small).dataSync()[0], 21.5, backend);
        assert.equal(blockedSum(tf.scalar(-2)).dataSync()[0], -2, backend);
        // 3 stages, with padding at the first two: integers, so every partial sum is exact
        const n = SUM_BLOCK * SUM_BLOCK + 37;
        const v = tf.reshape(tf.mod(tf.range(0, n, 1, 'float32'), 7), [1, n]);
        assert.equal(blockedSum(v).dataSync()[0], sum64(v.dataSync() as Float32Array), backend);
      });
    });
  });

  it('scaleByScalar: the value of tf.mul, and ∂/∂s ⟨w, v·s⟩ = Σ w·v over a d = 512 tower within 1e-6 of float64', async () => {
    const n = 1280 * 512 + 512 * 512 + 4 * 512;
    const r = rng(7);
    const v = Float32Array.from({ length: n }, () => r.next());
    const w = Float32Array.from({ length: n }, () => r.next());
    const exact = v.reduce((acc, x, i) => acc + x * w[i]!, 0);
    await onSuiteAndWasm(async (backend) => {
      const [vt, wt, s] = [tf.tensor1d(v), tf.tensor1d(w), tf.scalar(0.1)];
      const inner = (f: (a: tf.Tensor, b: tf.Scalar) => tf.Tensor) => (a: tf.Tensor, b: tf.Tensor) => blockedSum(tf.mul(wt, f(a, b as tf.Scalar)));
      const [gv, gs] = tf.grads(inner(scaleByScalar))([vt, s]);
      const [, gsPlain] = tf.grads(inner((a, b) => tf.mul(a, b)))([vt, s]);
      assert.deepEqual(tf.tidy(() => scaleByScalar(vt, s).dataSync()), tf.tidy(() => tf.mul(vt, s).dataSync()), `${backend}: value`);
      assert.deepEqual(gv!.dataSync(), tf.tidy(() => tf.mul(wt, s).dataSync()), `${backend}: ∂/∂v = w·s`);
      const blocked = relTo(gs as tf.Scalar, exact);
      const plain = relTo(gsPlain as tf.Scalar, exact);
      tf.dispose([vt, wt, s, gv!]);
      assert.ok(blocked < 1e-6, `${backend}: ∂/∂s relative error ${blocked}`);
      // tf.mul's own gradient sums dy·v with one tf.sum: measured 1.4e-4 off on wasm
      if (backend === 'wasm') assert.ok(plain > 1e-6, `${backend}: tf.mul's ∂/∂s was expected to miss by more than 1e-6 (${plain})`);
    });
  });

  it('is differentiable: d/dx Σ x² = 2x through every stage and the padding', async () => {
    await onSuiteAndWasm(async (backend) => {
      const n = SUM_BLOCK * SUM_BLOCK + 37;
      const r = rng(5);
      const values = Float32Array.from({ length: n }, () => r.next() - 0.5);
      const g = tf.tidy(() => tf.grad((x: tf.Tensor) => blockedSum(tf.square(x)))(tf.tensor1d(values)));
      const got = g.dataSync();
      g.dispose();
      assert.equal(got.length, n);
      // 2x and its gradient path (×2, ×1 from each sum's broadcast) are exact in float32
      for (let i = 0; i < n; i++) if (got[i] !== 2 * values[i]!) assert.fail(`${backend}: gradient ${i} is ${got[i]}, expected ${2 * values[i]!}`);
    });
  });
});
