import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { type DualParams, dualGrads, dualShape, initDual } from '../../src/model/dual';
import { PARAM_NAMES, headForward } from '../../src/model/head';
import { kdLoss, kdSoftLoss, kdTarget, kdWeights, teacherLogits } from '../../src/model/kd';
import { LOSSES, LOSS_NAMES } from '../../src/model/losses';
import { mm } from '../../src/model/linalg';
import { rng } from '../../src/util/random';
import { relErr } from '../helpers';


/** Knowledge distillation (src/model/kd.ts): soft targets, loss value and its hand-written gradient. */
describe('model: knowledge distillation loss', function () {
  this.timeout(60000);
  before(() => ready(() => undefined));

  const logits = (seed: number, scale = 3) => tf.randomNormal([6, 6], 0, scale, 'float32', seed) as tf.Tensor2D;
  const target = () => tf.add(tf.mul(tf.eye(6), 0.8), tf.randomUniform([6, 6], 0, 0.3, 'float32', 8)) as tf.Tensor2D;

  it('kdTarget: every row of both directions sums to 1; t2i is the column softmax', () => {
    tf.tidy(() => {
      const t = kdTarget(logits(1, 14), 4);
      for (const q of [t.i2t, t.t2i]) {
        for (const r of tf.sum(q, 1).arraySync() as number[]) assert.ok(Math.abs(r - 1) < 1e-6, `row sum ${r}`);
        assert.ok((q.arraySync() as number[][]).flat().every((v) => v >= 0));
      }
      const cols = tf.transpose(tf.softmax(tf.transpose(tf.div(logits(1, 14), 4)), 1));
      assert.ok(relErr(tf.transpose(t.t2i).dataSync(), cols.dataSync()) < 1e-6);
    });
  });

  it('soft term: hand-computed 2×2 value, and zero (with zero gradient) when the student equals the teacher', () => {
    tf.tidy(() => {
      const T = 2;
      const Lt = [[2, 0], [1, 3]];
      const L = [[0, 1], [0.5, 0]];
      const sm = (r: number[]) => {
        const e = r.map((v) => Math.exp(v / T));
        const z = e[0]! + e[1]!;
        return e.map((v) => v / z);
      };
      const kl = (q: number[], p: number[]) => q.reduce((a, qi, i) => a + qi * Math.log(qi / p[i]!), 0);
      const col = (m: number[][], j: number) => m.map((r) => r[j]!);
      const rows = (kl(sm(Lt[0]!), sm(L[0]!)) + kl(sm(Lt[1]!), sm(L[1]!))) / 2;
      const cols = (kl(sm(col(Lt, 0)), sm(col(L, 0))) + kl(sm(col(Lt, 1)), sm(col(L, 1)))) / 2;
      const want = T * T * 0.5 * (rows + cols);
      const got = kdSoftLoss(tf.tensor2d(L), kdTarget(tf.tensor2d(Lt), T), T).loss.dataSync()[0]!;
      assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
      const same = kdSoftLoss(logits(3), kdTarget(logits(3), 4), 4);
      assert.ok(Math.abs(same.loss.dataSync()[0]!) < 1e-5);
      assert.ok(Math.max(...Array.from(same.gL.dataSync()).map(Math.abs)) < 1e-7);
    });
  });

  for (const name of LOSS_NAMES) {
    it(`${name} + KD (T = 4, α = 0.3): dLoss/dL equals tfjs autodiff`, () => {
      tf.tidy(() => {
        const S = target();
        const f = kdLoss(LOSSES[name], logits(9, 14), { temperature: 4, alpha: 0.3 });
        const auto = tf.grad((l: tf.Tensor) => f(l as tf.Tensor2D, S).loss)(logits(7));
        const mine = f(logits(7), S).gL;
        assert.ok(relErr(mine.dataSync(), auto.dataSync()) < 1e-5, name);
      });
    });
  }

  it('infonce + KD: dLoss/dL equals central finite differences', () => {
    tf.tidy(() => {
      const S = target();
      const f = kdLoss(LOSSES.infonce, logits(9, 14), { temperature: 4, alpha: 0.5 });
      const L0 = logits(7).arraySync() as number[][];
      const at = (m: number[][]) => f(tf.tensor2d(m), S).loss.dataSync()[0]!;
      const mine = f(tf.tensor2d(L0), S).gL.dataSync();
      const h = 1e-2;
      const fd: number[] = [];
      for (let i = 0; i < 6; i++) {
        for (let j = 0; j < 6; j++) {
          const plus = L0.map((r) => [...r]);
          const minus = L0.map((r) => [...r]);
          plus[i]![j]! += h;
          minus[i]![j]! -= h;
          fd.push((at(plus) - at(minus)) / (2 * h));
        }
      }
      const e = relErr(mine, fd);
      assert.ok(e < 1e-2, `relative error ${e}`);
    });
  });

  for (const name of ['infonce', 'wbce'] as const) {
    it(`${name}: no soft weight (soft-alpha α = 0, hard-alpha α = 1) gives exactly the plain loss and gradient`, () => {
      tf.tidy(() => {
        const S = target();
        const plain = LOSSES[name](logits(7), S);
        for (const o of [{ alpha: 0, weighting: 'soft-alpha' }, { alpha: 1, weighting: 'hard-alpha' }] as const) {
          const kd = kdLoss(LOSSES[name], logits(9, 14), { temperature: 4, ...o })(logits(7), S);
          assert.deepEqual(Array.from(kd.loss.dataSync()), Array.from(plain.loss.dataSync()), o.weighting);
          assert.deepEqual(Array.from(kd.gL.dataSync()), Array.from(plain.gL.dataSync()), o.weighting);
        }
      });
    });
  }

  it('weighting: seed 003 (hard-alpha, the default) is α·hard + (1 − α)·soft, soft-alpha is (1 − α)·hard + α·soft', () => {
    tf.tidy(() => {
      const S = target();
      const teacher = logits(9, 14);
      const hard = LOSSES.infonce(logits(7), S);
      const soft = kdSoftLoss(logits(7), kdTarget(teacher, 4), 4);
      const [h, s] = [hard.loss.dataSync()[0]!, soft.loss.dataSync()[0]!];
      assert.ok(Math.abs(h - s) > 0.1, `the two terms differ (${h}, ${s}), so the weights are visible`);
      assert.deepEqual(kdWeights({ temperature: 4, alpha: 0.1 }), { hard: 0.1, soft: 0.9 });
      assert.deepEqual(kdWeights({ temperature: 4, alpha: 0.1, weighting: 'soft-alpha' }), { hard: 0.9, soft: 0.1 });
      for (const [weighting, wantLoss] of [
        [undefined, 0.1 * h + 0.9 * s],
        ['hard-alpha', 0.1 * h + 0.9 * s],
        ['soft-alpha', 0.9 * h + 0.1 * s],
      ] as const) {
        const o = { temperature: 4, alpha: 0.1, ...(weighting ? { weighting } : {}) };
        const got = kdLoss(LOSSES.infonce, teacher, o)(logits(7), S);
        assert.ok(Math.abs(got.loss.dataSync()[0]! - wantLoss) < 1e-5 * Math.max(1, Math.abs(wantLoss)), `${weighting}: ${got.loss.dataSync()[0]} vs ${wantLoss}`);
        const w = weighting === 'soft-alpha' ? [0.9, 0.1] : [0.1, 0.9];
        const want = tf.add(tf.mul(hard.gL, w[0]!), tf.mul(soft.gL, w[1]!));
        assert.ok(relErr(got.gL.dataSync(), want.dataSync()) < 1e-6, `${weighting}: gradient`);
      }
    });
  });

  it('head gradients through dualGrads with the KD loss equal tfjs autodiff', () => {
    const r = rng(5);
    const shape = dualShape(12, 7, 5);
    const theta = initDual(shape, () => r.next());
    const teacher = initDual(shape, () => r.next());
    tf.tidy(() => {
      const x = tf.randomNormal([6, 12], 0, 1, 'float32', 1) as tf.Tensor2D;
      const y = tf.randomNormal([6, 7], 0, 1, 'float32', 2) as tf.Tensor2D;
      const s = tf.eye(6) as tf.Tensor2D;
      const tl = teacherLogits(teacher, x, y, 0.07);
      const f = kdLoss(LOSSES.infonce, tl, { temperature: 4, alpha: 0.4 });
      const { grads } = dualGrads(theta, { x, y, s, maskImg: null, maskTxt: null }, f, 0.07);
      for (const tower of ['img', 'txt'] as const) {
        const names = [...PARAM_NAMES];
        const auto = tf.grads((...ps: tf.Tensor[]) => {
          const p = { ...theta, [tower]: Object.fromEntries(names.map((n, i) => [n, ps[i]!])) } as DualParams;
          const L = tf.div(mm(headForward(p.img, x, null).u, headForward(p.txt, y, null).u, false, true), 0.07) as tf.Tensor2D;
          return f(L, s).loss;
        })(names.map((n) => theta[tower][n]));
        names.forEach((n, i) => assert.ok(relErr(grads[tower][n].dataSync(), auto[i]!.dataSync()) < 1e-4, `${tower}.${n}`));
      }
    });
  });
});
