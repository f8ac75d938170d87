import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { headKernelsOn, useHeadKernels } from '../../src/backend/head-kernels';
import { type DualParams, dualGrads, dualShape, initDual } from '../../src/model/dual';
import { PARAM_NAMES, dropoutMask, expHalfSquare, headForward } from '../../src/model/head';
import { LOSSES, LOSS_NAMES } from '../../src/model/losses';
import { mm } from '../../src/model/linalg';
import { rng } from '../../src/util/random';
import { relErr } from '../helpers';


describe('model: hand-written gradients', function () {
  this.timeout(60000);
  before(() => ready(() => undefined));

  for (const name of LOSS_NAMES) {
    it(`${name}: dLoss/dL equals tfjs autodiff`, () => {
      tf.tidy(() => {
        const L = tf.randomNormal([6, 6], 0, 3, 'float32', 7) as tf.Tensor2D;
        const S = tf.add(tf.mul(tf.eye(6), 0.8), tf.randomUniform([6, 6], 0, 0.3, 'float32', 8)) as tf.Tensor2D;
        const auto = tf.grad((l: tf.Tensor) => LOSSES[name](l as tf.Tensor2D, S).loss)(L);
        const mine = LOSSES[name](L, S).gL;
        assert.ok(relErr(mine.dataSync() as Float32Array, auto.dataSync() as Float32Array) < 1e-5, name);
      });
    });
  }

  for (const name of ['infonce', 'kl', 'cwcl'] as const) {
    it(`${name}: dLoss/dL equals tfjs autodiff where a row's largest logits tie`, () => {
      tf.tidy(() => {
        // rows 0 and 1 hold their maximum twice, row 2 is constant (the loss's log-sum-exp is taken at a row's maximum)
        const L = tf.tensor2d([[2, 2, 0, 1], [0, 3, 3, -1], [1, 1, 1, 1], [0.5, -2, 1, 0]]);
        const S = tf.add(tf.mul(tf.eye(4), 0.8), tf.fill([4, 4], 0.05)) as tf.Tensor2D;
        const auto = tf.grad((l: tf.Tensor) => LOSSES[name](l as tf.Tensor2D, S).loss)(L);
        const mine = LOSSES[name](L, S).gL;
        assert.ok(relErr(mine.dataSync() as Float32Array, auto.dataSync() as Float32Array) < 1e-5, name);
      });
    });
  }

  it("the head's row norms are tf.norm's, bit for bit (√Σo² instead of tfjs's Pow-based norm), where the ops run (under tapes)", () => {
    const shape = dualShape(40, 12, 64);
    const r = rng(5);
    const theta = initDual(shape, () => r.next());
    const x = tf.randomNormal([300, 40], 0, 3, 'float32', 11) as tf.Tensor2D;
    const was = headKernelsOn();
    useHeadKernels(false); // the fused kernel's sums run over four lanes (test/backend/head-kernels.test.ts)
    const c = headForward(theta.img, x, null);
    useHeadKernels(was); // as the suite's configuration has them (PTMST_HEAD_KERNELS)
    const want = tf.norm(tf.add(tf.mul(c.zhat, theta.img.gamma), theta.img.beta), 'euclidean', 1, true);
    assert.deepEqual(Array.from(c.norm.dataSync()), Array.from(want.dataSync()));
    tf.dispose([x, want, ...Object.values(c).filter((t): t is tf.Tensor => t instanceof tf.Tensor && t !== x)]);
  });

  it('expHalfSquare: e^(−p²/2) and its gradient −p e^(−p²/2) within float32 rounding of float64, for |p| ≤ 13', () => {
    const ps = Array.from({ length: 2601 }, (_, i) => -13 + i / 100);
    const p = tf.tensor1d(ps);
    const [value, grad] = tf.tidy(() => [expHalfSquare(p).dataSync(), tf.grad((q: tf.Tensor) => tf.sum(expHalfSquare(q)))(p).dataSync()]);
    ps.forEach((x, i) => {
      const pf = Math.fround(x); // the float32 input the kernel sees
      const t = 0.5 * pf * pf;
      const e = Math.exp(-t);
      // float32's t = p²/2 is off by up to t·ulp, which e^−t turns into a relative error of t·ulp; then a few ulp more
      const tol = (4 + t) * 2 ** -23;
      assert.ok(Math.abs(value![i]! - e) <= tol * e, `p = ${pf}: ${value![i]} vs float64 ${e}`);
      assert.ok(Math.abs(grad![i]! + pf * e) <= (tol + 2 ** -23) * Math.abs(pf * e), `p = ${pf}: gradient ${grad![i]} vs ${-pf * e}`);
    });
    p.dispose();
  });

  it('infonce with S = I is the symmetric cross-entropy (hand-computed 2×2)', () => {
    const l = [[2, 0], [1, 3]];
    const loss = tf.tidy(() => LOSSES.infonce(tf.tensor2d(l), tf.eye(2) as tf.Tensor2D).loss.dataSync()[0]!);
    const lse = (a: number, b: number) => Math.log(Math.exp(a) + Math.exp(b));
    const row = -((2 - lse(2, 0)) + (3 - lse(1, 3))) / 2;
    const col = -((2 - lse(2, 1)) + (3 - lse(0, 3))) / 2;
    assert.ok(Math.abs(loss - (row + col) / 2) < 1e-6);
  });

  it('infonce, cwcl and kl values equal float64 formulas at logits up to ±1/T (B = 32, soft targets)', () => {
    const B = 32;
    const r = rng(12);
    // cosine / 0.07: the widest logits a student produces, where a softmax entry falls to e^−28
    const l = Array.from({ length: B }, () => Array.from({ length: B }, () => (2 * r.next() - 1) / 0.07));
    const s = Array.from({ length: B }, (_, i) => Array.from({ length: B }, (_, j) => (i === j ? 0.9 : 0.1 * r.next())));
    const col = (m: number[][], j: number) => m.map((row) => row[j]!);
    const logSoftmax = (v: number[]) => {
      const m = Math.max(...v);
      const lse = m + Math.log(v.reduce((a, x) => a + Math.exp(x - m), 0));
      return v.map((x) => x - lse);
    };
    const softmax = (v: number[]) => logSoftmax(v).map(Math.exp);
    const sum = (v: number[]) => v.reduce((a, x) => a + x, 0);
    const dot = (a: number[], b: number[]) => sum(a.map((x, i) => x * b[i]!));
    const idx = [...Array(B).keys()];
    // −Σ_i w_i · log softmax(v_i), rows and then columns, each / B (infonce: w = S; cwcl: w = S normalised)
    const ce = (w: (i: number) => number[], v: (i: number) => number[]) => -sum(idx.map((i) => dot(w(i), logSoftmax(v(i))))) / B;
    const norm = (v: number[]) => v.map((x) => x / sum(v));
    const kl = (q: number[], lp: number[]) => sum(q.map((qi, k) => qi * (Math.log(qi) - lp[k]!)));
    const want = {
      infonce: (ce((i) => s[i]!, (i) => l[i]!) + ce((j) => col(s, j), (j) => col(l, j))) / 2,
      cwcl: (ce((i) => norm(s[i]!), (i) => l[i]!) + ce((j) => norm(col(s, j)), (j) => col(l, j))) / 2,
      kl:
        (sum(idx.map((i) => kl(softmax(s[i]!.map((x) => 10 * x)), logSoftmax(l[i]!)))) +
          sum(idx.map((j) => kl(softmax(col(s, j).map((x) => 10 * x)), logSoftmax(col(l, j)))))) /
        (2 * B * B),
    };
    for (const name of ['infonce', 'cwcl', 'kl'] as const) {
      const got = tf.tidy(() => LOSSES[name](tf.tensor2d(l), tf.tensor2d(s)).loss.dataSync()[0]!);
      assert.ok(Math.abs(got - want[name]) <= 1e-6 * Math.max(1, Math.abs(want[name])), `${name}: ${got} vs float64 ${want[name]}`);
    }
  });

  it('wbce averages positives and negatives separately (hand-computed 2×2)', () => {
    const loss = tf.tidy(() => LOSSES.wbce(tf.tensor2d([[0, 0], [0, 0]]), tf.tensor2d([[1, 0], [0.2, 1]])).loss.dataSync()[0]!);
    // σ(0) = ½: positives E = −log(½+ε); negatives: S=0 → −log(½+ε); S=0.2 → same (both terms at ½)
    const e = -Math.log(0.5 + 1e-6);
    assert.ok(Math.abs(loss - 0.5 * (e + e)) < 1e-5);
  });

  // WBCE saturates in float32 (log σ near 0 and 1 at T = 0.07), which swamps central differences; the
  // smooth InfoNCE is used for them, WBCE is checked against autodiff (and its dL formula above)
  let lossName: 'wbce' | 'infonce' = 'wbce';
  function lossOf(theta: DualParams, x: tf.Tensor2D, y: tf.Tensor2D, s: tf.Tensor2D, mi: tf.Tensor2D | null, mt: tf.Tensor2D | null) {
    const u = headForward(theta.img, x, mi).u;
    const v = headForward(theta.txt, y, mt).u;
    return LOSSES[lossName](tf.div(mm(u, v, false, true), 0.07) as tf.Tensor2D, s).loss;
  }

  for (const loss of ['wbce', 'infonce'] as const)
  it(`head gradients under ${loss} (dropout on, fixed masks) equal tfjs autodiff${loss === 'infonce' ? ' and central differences' : ''}`, () => {
    lossName = loss;
    const r = rng(3);
    const u = () => r.next();
    const shape = dualShape(12, 7, 5);
    const theta = initDual(shape, u);
    tf.tidy(() => {
      const x = tf.randomNormal([6, 12], 0, 1, 'float32', 1) as tf.Tensor2D;
      const y = tf.randomNormal([6, 7], 0, 1, 'float32', 2) as tf.Tensor2D;
      const s = tf.add(tf.eye(6), tf.randomUniform([6, 6], 0, 0.2, 'float32', 3)) as tf.Tensor2D;
      const mi = dropoutMask(6, 5, 0.3, r);
      const mt = dropoutMask(6, 5, 0.3, r);
      const { grads } = dualGrads(theta, { x, y, s, maskImg: mi, maskTxt: mt }, loss, 0.07);
      for (const tower of ['img', 'txt'] as const) {
        const names = [...PARAM_NAMES];
        const auto = tf.grads((...ps: tf.Tensor[]) => {
          const replaced = { ...theta, [tower]: Object.fromEntries(names.map((n, i) => [n, ps[i]!])) } as DualParams;
          return lossOf(replaced, x, y, s, mi, mt);
        })(names.map((n) => theta[tower][n]));
        names.forEach((n, i) => {
          const e = relErr(grads[tower][n].dataSync() as Float32Array, auto[i]!.dataSync() as Float32Array);
          assert.ok(e < 1e-4, `${tower}.${n}: relative error ${e}`);
        });
        if (loss !== 'infonce') continue;
        // directional central difference along a random direction of all the tower's parameters
        const raw = names.map((n, i) => tf.randomNormal(theta[tower][n].shape, 0, 1, 'float32', 40 + i));
        const norm = Math.sqrt(raw.reduce((a, d) => a + tf.sum(tf.square(d)).dataSync()[0]!, 0));
        const dirs = raw.map((d) => tf.div(d, norm)); // a unit direction
        const shifted = (eps: number) =>
          ({ ...theta, [tower]: Object.fromEntries(names.map((n, i) => [n, tf.add(theta[tower][n], tf.mul(dirs[i]!, eps))])) }) as DualParams;
        const eps = 3e-3;
        const fd = (lossOf(shifted(eps), x, y, s, mi, mt).dataSync()[0]! - lossOf(shifted(-eps), x, y, s, mi, mt).dataSync()[0]!) / (2 * eps);
        const analytic = names.reduce((a, n, i) => a + tf.sum(tf.mul(grads[tower][n], dirs[i]!)).dataSync()[0]!, 0);
        assert.ok(Math.abs(fd - analytic) / Math.abs(analytic) < 1e-3, `${tower}: fd ${fd} vs analytic ${analytic}`);
      }
    });
  });
});
