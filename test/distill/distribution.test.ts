/**
 * Distribution matching (src/distill/distribution.ts): the loss's value and its gradients with respect to X and
 * Y against a float64 reference and its central differences; the loss is zero when the synthetic set's pairs
 * are the real batch's (any order, any multiplicity) and not when only the marginals agree; a short run on a
 * planted toy set lowers the loss and trains students that beat the set it started from on held-out pairs;
 * no tensor leaks.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend';
import { DistillConfig, EvalConfig, ModelConfig } from '../../src/config/schemas';
import { dmGradients, dmLoss, dmTerms, distillDistributionPhase, disposeMoments, initDistribution, realMoments } from '../../src/distill/distribution';
import { DISTILL_METHODS } from '../../src/distill/methods';
import { disposeState } from '../../src/distill/synthetic';
import { trainStudent } from '../../src/evaluate/student';
import type { FeatureSet } from '../../src/features/feature-set';
import { type DualParams, disposeDual, dualShape, flattenTower, initDual } from '../../src/model/dual';
import { initHeadFromStream } from '../../src/model/head';
import { rng } from '../../src/util/random';
import { headForward } from './float64';
import { relErr, toySet } from '../helpers';

const f64 = async (t: tf.Tensor) => Float64Array.from(await t.data());

/** ℓ in float64: the mean over head pairs of ‖Δ mean u‖² + ‖Δ mean v‖² + λ ‖Δ mean u⊗v‖²_F. */
function loss64(
  heads: readonly { img: Float64Array; txt: Float64Array }[],
  d: { dImg: number; dTxt: number; dOut: number },
  real: { x: Float64Array; y: Float64Array; b: number },
  x: Float64Array,
  y: Float64Array,
  n: number,
  lambda: number,
): number {
  const stats = (u: Float64Array, v: Float64Array, rows: number) => {
    const mu = new Float64Array(d.dOut);
    const mv = new Float64Array(d.dOut);
    const c = new Float64Array(d.dOut * d.dOut);
    for (let r = 0; r < rows; r++) {
      for (let i = 0; i < d.dOut; i++) {
        mu[i] += u[r * d.dOut + i]! / rows;
        mv[i] += v[r * d.dOut + i]! / rows;
        for (let j = 0; j < d.dOut; j++) c[i * d.dOut + j] += (u[r * d.dOut + i]! * v[r * d.dOut + j]!) / rows;
      }
    }
    return [mu, mv, c] as const;
  };
  const sq = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0);
  let total = 0;
  for (const h of heads) {
    const embed = (theta: Float64Array, dIn: number, m: Float64Array, rows: number) => headForward(theta, { dIn, dOut: d.dOut }, m, rows).u;
    const r = stats(embed(h.img, d.dImg, real.x, real.b), embed(h.txt, d.dTxt, real.y, real.b), real.b);
    const s = stats(embed(h.img, d.dImg, x, n), embed(h.txt, d.dTxt, y, n), n);
    total += sq(r[0], s[0]) + sq(r[1], s[1]) + lambda * sq(r[2], s[2]);
  }
  return total / heads.length;
}

const randomMatrix = (rows: number, cols: number, seed: number) => {
  const r = rng(seed);
  return tf.tensor2d(Float32Array.from({ length: rows * cols }, () => 2 * r.next() - 1), [rows, cols]);
};

describe('distill: distribution matching', function () {
  this.timeout(120000);

  it('ℓ and its gradients in X and Y agree with float64 and its central differences (relative error < 1e-5)', async () => {
    const d = { dImg: 5, dTxt: 4, dOut: 6 };
    const n = 3;
    const b = 4;
    const lambda = 0.7;
    const r = rng(11);
    const heads: DualParams[] = [0, 1].map(() => initDual(dualShape(d.dImg, d.dTxt, d.dOut), () => r.next()));
    const real = { x: randomMatrix(b, d.dImg, 1), y: randomMatrix(b, d.dTxt, 2) };
    const x = randomMatrix(n, d.dImg, 3);
    const y = randomMatrix(n, d.dTxt, 4);
    const moments = realMoments(heads, real.x, real.y);
    const g = tf.tidy(() => dmGradients(heads, moments, x, y, lambda));
    const heads64 = await Promise.all(heads.map(async (h) => ({ img: await f64(flattenTower(h.img)), txt: await f64(flattenTower(h.txt)) })));
    const real64 = { x: await f64(real.x), y: await f64(real.y), b };
    const x64 = await f64(x);
    const y64 = await f64(y);
    const L = (xs: Float64Array, ys: Float64Array) => loss64(heads64, d, real64, xs, ys, n, lambda);
    const want = L(x64, y64);
    const got = (await g.loss.data())[0]!;
    assert.ok(want > 1e-3, `the case is not degenerate: float64 loss ${want}`);
    assert.ok(Math.abs(got - want) < 1e-5 * want, `loss ${got} vs float64 ${want}`);
    // central differences in float64: truncation O(h²) ~ 1e-12, rounding O(ε/h) ~ 1e-10
    const h = 1e-6;
    const central = (m: Float64Array, at: (m: Float64Array) => number) =>
      Float64Array.from(m, (v, i) => {
        const up = Float64Array.from(m);
        const down = Float64Array.from(m);
        up[i] = v + h;
        down[i] = v - h;
        return (at(up) - at(down)) / (2 * h);
      });
    const fdX = central(x64, (m) => L(m, y64));
    const fdY = central(y64, (m) => L(x64, m));
    // float32 forward and backward over ≤ 6-wide sums: measured 1e-7 to 2e-7 relative (float32 ε 6e-8); a missing
    // term or factor is O(1)
    const ex = relErr(await g.gx.data(), fdX);
    const ey = relErr(await g.gy.data(), fdY);
    assert.ok(ex < 1e-5, `dℓ/dX: relative error ${ex}`);
    assert.ok(ey < 1e-5, `dℓ/dY: relative error ${ey}`);
    // and the cross term matters to the gradient: without it the gradient differs by far more than the tolerance
    const noCross = tf.tidy(() => dmGradients(heads, moments, x, y, 0));
    assert.ok(relErr(await noCross.gx.data(), fdX) > 1e-2, 'the cross-modal term contributes to dℓ/dX');
    for (const t of [g.loss, g.gx, g.gy, noCross.loss, noCross.gx, noCross.gy, real.x, real.y, x, y]) t.dispose();
    disposeMoments(moments);
    heads.forEach(disposeDual);
  });

  it('is zero when the synthetic pairs are the real batch reordered and duplicated; shuffled captions leave only the cross term', async () => {
    const d = { dImg: 7, dTxt: 5, dOut: 8 };
    const b = 6;
    const r = rng(5);
    const heads = [initDual(dualShape(d.dImg, d.dTxt, d.dOut), () => r.next())];
    const real = { x: randomMatrix(b, d.dImg, 21), y: randomMatrix(b, d.dTxt, 22) };
    const moments = realMoments(heads, real.x, real.y);
    // every real pair twice, in another order: the same empirical distribution of pairs
    const order = tf.tensor1d([3, 1, 5, 0, 2, 4, 4, 2, 0, 5, 1, 3], 'int32');
    // the same images and captions, but caption i goes with image i + 1: equal marginals, other pairing
    const shifted = tf.tensor1d([1, 2, 3, 4, 5, 0], 'int32');
    const terms = async (x: tf.Tensor2D, y: tf.Tensor2D) => {
      const t = tf.tidy(() => {
        const m = dmTerms(heads[0]!, moments[0]!, x, y);
        return tf.stack([m.img, m.txt, m.cross]);
      });
      const v = Array.from(await t.data());
      t.dispose();
      return v;
    };
    const same = tf.tidy(() => [tf.gather(real.x, order), tf.gather(real.y, order)] as [tf.Tensor2D, tf.Tensor2D]);
    const [img, txt, cross] = await terms(same[0], same[1]);
    assert.ok(img! < 1e-12 && txt! < 1e-12 && cross! < 1e-12, `same pairs: terms ${img}, ${txt}, ${cross}`);
    const total = tf.tidy(() => dmLoss(heads, moments, same[0], same[1], 1));
    assert.ok((await total.data())[0]! < 1e-12);
    const misPaired = tf.tidy(() => tf.gather(real.y, shifted) as tf.Tensor2D);
    const [img2, txt2, cross2] = await terms(real.x, misPaired);
    assert.ok(img2! < 1e-12 && txt2! < 1e-12, `equal marginals: per-tower terms ${img2}, ${txt2}`);
    assert.ok(cross2! > 1e-4, `another pairing: cross term ${cross2} should be clearly positive`);
    for (const t of [real.x, real.y, order, shifted, ...same, total, misPaired]) t.dispose();
    disposeMoments(moments);
    heads.forEach(disposeDual);
  });

  /** toySet with its images shifted, so its pairs are held out from the training set's. */
  const heldOut = (seed: number): FeatureSet => ({ ...toySet(seed), split: 'test' });

  it('a short run from noise pairs on a planted toy set lowers ℓ and trains students that beat the start on held-out pairs', async () => {
    const train = toySet(1);
    const config = DistillConfig.parse({
      // the step size for these 16-d features in [0, 1) (Flickr8k's default, 3, overshoots here)
      ...DISTILL_METHODS.dm!.config(8, { iterations: 150, seed: 3, lrX: 1, lrY: 1 }),
      init: 'noise',
      distribution: { batchReal: 40, headsPerIteration: 2 },
    });
    const phase = config.phases[0]!;
    const shape = dualShape(train.dImg, train.dTxt, 16);
    const out = await distillDistributionPhase({ index: 0, phase, config, train, shape });
    const mean = (a: Float32Array) => a.reduce((s, v) => s + v, 0) / a.length;
    const first = mean(out.losses.subarray(0, 10));
    const last = mean(out.losses.subarray(140));
    assert.ok(last < 0.5 * first, `ℓ: first 10 iterations ${first}, last 10 ${last}`);
    const start = initDistribution(train, phase, config, 0).state;
    const model = ModelConfig.parse({ dOut: 16, dropout: 0 });
    const evalConfig = EvalConfig.parse({ epochs: 60, evalEvery: 60, decayEpoch: 50, batchSize: 8 });
    const sets = { val: heldOut(2), test: heldOut(3) };
    const score = async (s: typeof start) => {
      const subset = { n: 8, x: (await s.x!.data()) as Float32Array, y: (await s.y!.data()) as Float32Array, lrImg: 0.1, lrTxt: 0.1, loss: 'infonce' as const };
      const runs = [];
      for (const seed of [0, 1, 2]) runs.push((await trainStudent([subset], sets, shape, model, evalConfig, rng(seed))).checkpoints.at(-1)!.test.rMean);
      return runs.reduce((a, v) => a + v, 0) / runs.length;
    };
    const dm = await score(out.state);
    const noise = await score(start);
    disposeState(out.state);
    disposeState(start);
    // 40 images, 80 captions: chance r_mean ≈ (2.5 + 12.5 + 25 + 1.25 + 6.25 + 12.5) / 6 ≈ 10
    assert.ok(dm > 25 && dm > noise + 10, `held-out r_mean: DM ${dm.toFixed(2)}, its noise start ${noise.toFixed(2)}`);
  });

  it("random heads are the head initialiser's, bit for bit (drawn in bulk from the same stream)", async () => {
    const shape = dualShape(9, 5, 7);
    const a = rng(42);
    const b = rng(42);
    const slow = initDual(shape, () => a.next());
    const fast = { img: initHeadFromStream(shape.img, b), txt: initHeadFromStream(shape.txt, b) };
    for (const tower of ['img', 'txt'] as const) {
      assert.deepEqual(await flattenTower(fast[tower]).data(), await flattenTower(slow[tower]).data(), tower);
    }
    assert.equal(a.state(), b.state(), 'both streams end in the same place');
    disposeDual(slow);
    disposeDual(fast);
  });

  it('holds no tensors beyond its output, however many iterations', async () => {
    const train = toySet(4);
    const shape = dualShape(train.dImg, train.dTxt, 8);
    const leftover = async (iterations: number) => {
      const config = DistillConfig.parse({ ...DISTILL_METHODS.dm!.config(4, { iterations }), ema: 0.9, distribution: { batchReal: 16 } });
      const before = tf.memory().numTensors;
      const out = await distillDistributionPhase({ index: 0, phase: config.phases[0]!, config, train, shape });
      const held = tf.memory().numTensors - before;
      disposeState(out.state);
      return { held, after: tf.memory().numTensors - before };
    };
    const a = await leftover(2);
    const b = await leftover(12);
    assert.equal(a.held, 4, 'the output state: x, y, lrImg, lrTxt');
    assert.equal(b.held, a.held);
    assert.equal(b.after, 0);
  });
});
