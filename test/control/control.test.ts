/**
 * The unimodal control (src/control): MNIST loading, the classifier's analytic gradient, the distiller's
 * backprop-through-the-unroll gradients against float64 finite differences, experts, and a quick sweep.
 */
import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { type ClassifierShape, classifierGrads, initClassifier } from '../../src/control/classifier';
import { distillDigits, matchingGradients, unrolledMatchingLoss } from '../../src/control/distill';
import { trainExperts } from '../../src/control/experts';
import { MNIST_CLASSES, MNIST_PIXELS, type MnistData, loadMnist, mnistClassCounts } from '../../src/control/mnist';
import { windowSweep } from '../../src/control/sweep';
import { ConfigError } from '../../src/errors';
import { normal, rng } from '../../src/util/random';
import { relErr } from '../helpers';

// ---- a float64 reference of the classifier and the unrolled matching loss (independent of tfjs) ----

type Vec = number[];

/** Mean cross-entropy and its gradient (θ's flat layout) on rows `x` (n × d) with one-hot `labels`, in float64. */
function ceGrad64(theta: Vec, x: Vec[], labels: number[], s: ClassifierShape): { loss: number; grad: Vec } {
  const n = x.length;
  const { inputs: d, hidden: h, classes: k } = s;
  const grad = new Array<number>(theta.length).fill(0);
  let loss = 0;
  const w2At = h > 0 ? d * h + h : 0; // offset of the output layer
  for (let i = 0; i < n; i++) {
    // forward
    let a = x[i]!;
    let pre: Vec = [];
    if (h > 0) {
      pre = Array.from({ length: h }, (_, j) => theta[d * h + j]! + a.reduce((acc, v, p) => acc + v * theta[p * h + j]!, 0));
      a = pre.map((v) => Math.max(0, v));
    }
    const din = a.length;
    const z = Array.from({ length: k }, (_, c) => theta[w2At + din * k + c]! + a.reduce((acc, v, p) => acc + v * theta[w2At + p * k + c]!, 0));
    const m = Math.max(...z);
    const lse = m + Math.log(z.reduce((acc, v) => acc + Math.exp(v - m), 0));
    loss += (lse - z[labels[i]!]!) / n;
    const delta = z.map((v, c) => (Math.exp(v - lse) - (c === labels[i] ? 1 : 0)) / n);
    // backward
    for (let p = 0; p < din; p++) for (let c = 0; c < k; c++) grad[w2At + p * k + c]! += a[p]! * delta[c]!;
    for (let c = 0; c < k; c++) grad[w2At + din * k + c]! += delta[c]!;
    if (h > 0) {
      const dh = pre.map((v, j) => (v > 0 ? delta.reduce((acc, dc, c) => acc + dc * theta[w2At + j * k + c]!, 0) : 0));
      for (let p = 0; p < d; p++) for (let j = 0; j < h; j++) grad[p * h + j]! += x[i]![p]! * dh[j]!;
      for (let j = 0; j < h; j++) grad[d * h + j]! += dh[j]!;
    }
  }
  return { loss, grad };
}

/** ‖θ_0 − αG − θ*‖² / ‖θ_0 − θ*‖² after unrolling `batches` SGD steps, in float64. */
function matching64(images: Vec, labels: number[], alpha: number, start: Vec, target: Vec, batches: (number[] | null)[], s: ClassifierShape): number {
  const rows = labels.map((_, i) => images.slice(i * s.inputs, (i + 1) * s.inputs));
  let theta = start.slice();
  const G = new Array<number>(start.length).fill(0);
  for (const b of batches) {
    const idx = b ?? labels.map((_, i) => i);
    const { grad } = ceGrad64(theta, idx.map((i) => rows[i]!), idx.map((i) => labels[i]!), s);
    grad.forEach((g, j) => {
      G[j]! += g;
    });
    theta = theta.map((v, j) => v - alpha * grad[j]!);
  }
  const num = start.reduce((acc, v, j) => acc + (v - alpha * G[j]! - target[j]!) ** 2, 0);
  const den = start.reduce((acc, v, j) => acc + (v - target[j]!) ** 2, 0);
  return num / den;
}

const central = (f: (e: number) => number, h: number) => (f(h) - f(-h)) / (2 * h);

describe('control: the unimodal MNIST trajectory-matching control', function () {
  this.timeout(600000);
  before(() => ready(() => undefined));

  describe('MNIST loading', () => {
    let data: MnistData;
    before(() => {
      data = loadMnist();
    });

    it('reads the package: 10,000 digits, 863–1,127 per class, pixels in [0, 1]', () => {
      const counts = mnistClassCounts();
      assert.equal(counts.reduce((a, b) => a + b, 0), 10000);
      assert.equal(Math.min(...counts), 863);
      assert.equal(Math.max(...counts), 1127);
    });

    it('defaults: 5,000 / 1,000 / 2,500 class-balanced images, pixels in [0, 1], splits disjoint', () => {
      for (const [split, perClass] of [[data.train, 500], [data.val, 100], [data.test, 250]] as const) {
        assert.equal(split.pixels.length, split.n * MNIST_PIXELS);
        const counts = new Array<number>(MNIST_CLASSES).fill(0);
        for (const l of split.labels) counts[l]!++;
        assert.deepEqual(counts, new Array(MNIST_CLASSES).fill(perClass));
        let lo = Infinity;
        let hi = -Infinity;
        for (const v of split.pixels) {
          lo = Math.min(lo, v);
          hi = Math.max(hi, v);
        }
        assert.ok(lo >= 0 && hi <= 1 && hi > 0.9, `pixel range [${lo}, ${hi}]`);
      }
      // classes are interleaved, not blocks
      assert.notDeepEqual(Array.from(data.train.labels.subarray(0, 20)), new Array(20).fill(data.train.labels[0]));
      const key = (px: Float32Array, i: number) => Buffer.from(px.buffer, px.byteOffset + i * MNIST_PIXELS * 4, MNIST_PIXELS * 4).toString('base64');
      const train = new Set(Array.from({ length: data.train.n }, (_, i) => key(data.train.pixels, i)));
      const shared = Array.from({ length: data.test.n }, (_, i) => key(data.test.pixels, i)).filter((k) => train.has(k));
      assert.equal(shared.length, 0);
    });

    it('is deterministic: the same config gives the same splits, another seed others', () => {
      const again = loadMnist({ seed: 0 });
      assert.deepEqual(again.train.labels, data.train.labels);
      assert.deepEqual(again.test.pixels, data.test.pixels);
      const other = loadMnist({ seed: 1 });
      assert.notDeepEqual(other.train.labels, data.train.labels);
      const small = loadMnist({ trainPerClass: 3, valPerClass: 0, testPerClass: 2 });
      assert.deepEqual([small.train.n, small.val.n, small.test.n], [30, 0, 20]);
    });

    it('refuses more images per class than the smallest class holds, and unknown fields', () => {
      assert.throws(() => loadMnist({ trainPerClass: 800, valPerClass: 50, testPerClass: 50 }), ConfigError);
      assert.throws(() => loadMnist({ trainPerclass: 5 } as never), ConfigError);
    });
  });

  describe('gradients (tiny case: 2 classes × 2 images, 4 pixels, 3 unrolled steps)', () => {
    const images = [0.2, 0.9, 0.1, 0.5, 0.7, 0.3, 0.8, 0.1, 0.6, 0.4, 0.2, 0.9, 0.1, 0.8, 0.5, 0.3];
    const labels = [0, 0, 1, 1];
    const batches: (number[] | null)[] = [null, [0, 2], [3, 1]];
    const alpha = 0.7;

    for (const hidden of [0, 3]) {
      const shape: ClassifierShape = { inputs: 4, hidden, classes: 2 };
      const r = rng(7 + hidden);
      const start = Array.from(initClassifier(shape, r));
      const target = start.map((v) => v + 0.3 * normal(r));
      const name = hidden === 0 ? 'linear' : `hidden ${hidden}`;

      it(`${name}: classifierGrads is the gradient of the cross-entropy (float64 central differences)`, () => {
        const rows = labels.map((_, i) => images.slice(i * 4, i * 4 + 4));
        const fd = start.map((_, j) =>
          central((e) => ceGrad64(start.map((v, k) => (k === j ? v + e : v)), rows, labels, shape).loss, 1e-6),
        );
        const out = tf.tidy(() => {
          const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 2).toFloat() as tf.Tensor2D;
          const g = classifierGrads(tf.tensor1d(start), tf.tensor2d(images, [4, 4]), y, shape);
          return { loss: g.loss.dataSync()[0]!, grad: Array.from(g.grad.dataSync()) };
        });
        assert.ok(relErr(out.grad, fd) < 1e-5, `relErr ${relErr(out.grad, fd)}`);
        assert.ok(Math.abs(out.loss - ceGrad64(start, rows, labels, shape).loss) < 1e-6);
      });

      it(`${name}: ∂ℓ/∂images and ∂ℓ/∂α through the unroll match float64 central differences`, () => {
        const ref = (x: Vec, a: number) => matching64(x, labels, a, start, target, batches, shape);
        const fdImages = images.map((_, j) => central((e) => ref(images.map((v, k) => (k === j ? v + e : v)), alpha), 1e-6));
        const fdAlpha = central((e) => ref(images, alpha + e), 1e-6);
        const before = tf.memory().numTensors;
        const out = tf.tidy(() => {
          const y = tf.oneHot(tf.tensor1d(labels, 'int32'), 2).toFloat() as tf.Tensor2D;
          const m = matchingGradients(
            tf.tensor2d(images, [4, 4]),
            y,
            tf.scalar(alpha),
            { start: tf.tensor1d(start), target: tf.tensor1d(target) },
            batches.map((b) => (b === null ? null : Int32Array.from(b))),
            shape,
          );
          return { loss: m.loss.dataSync()[0]!, images: Array.from(m.images.dataSync()), alpha: m.lr.dataSync()[0]! };
        });
        assert.equal(tf.memory().numTensors, before);
        const loss64 = ref(images, alpha);
        assert.ok(Math.abs(out.loss - loss64) / loss64 < 1e-5, `loss ${out.loss} vs float64 ${loss64}`);
        const eImages = relErr(out.images, fdImages);
        const eAlpha = Math.abs(out.alpha - fdAlpha) / Math.abs(fdAlpha);
        assert.ok(eImages < 1e-5, `images relErr ${eImages}`);
        assert.ok(eAlpha < 1e-5, `α relErr ${eAlpha} (${out.alpha} vs ${fdAlpha})`);
        assert.ok(fdImages.some((v) => Math.abs(v) > 1e-3), 'the check is not vacuous');
      });

      it(`${name}: the matching loss is exactly 1 at α = 0 (the student has not moved)`, () => {
        const loss = tf.tidy(() =>
          unrolledMatchingLoss(
            tf.tensor2d(images, [4, 4]),
            tf.oneHot(tf.tensor1d(labels, 'int32'), 2).toFloat() as tf.Tensor2D,
            tf.scalar(0),
            { start: tf.tensor1d(start), target: tf.tensor1d(target) },
            [null, null, null],
            shape,
          ).dataSync()[0]!,
        );
        assert.ok(Math.abs(loss - 1) < 1e-6, `loss ${loss}`);
      });
    }
  });

  describe('experts, distillation and the window sweep on MNIST', () => {
    let data: MnistData;
    before(() => {
      data = loadMnist();
    });

    it('experts learn: linear softmax on pixels, > 84% test accuracy after 3 epochs (measured 86–87%), seeded', async () => {
      const ex = await trainExperts(data, { experts: 2, epochs: 3 });
      assert.equal(ex.snapshots.length, 2);
      assert.equal(ex.snapshots[0]!.length, 4);
      for (let k = 0; k < 2; k++) {
        assert.ok(ex.testAccuracy[k]![0]! < 0.25, `init accuracy ${ex.testAccuracy[k]![0]}`);
        assert.ok(ex.testAccuracy[k]![3]! > 0.84, `expert ${k}: ${ex.testAccuracy[k]}`);
        assert.ok(ex.valAccuracy[k]![3]! > 0.84, `expert ${k} (val): ${ex.valAccuracy[k]}`);
      }
      assert.notDeepEqual(ex.snapshots[0]![0], ex.snapshots[1]![0]);
      const again = await trainExperts(data, { experts: 1, epochs: 1 });
      assert.deepEqual(again.snapshots[0]![1], ex.snapshots[0]![1]);
    });

    it('a quick window sweep (2 experts × 6 epochs, 10/class, 50 iterations, 3 starts) is finite, seeded and disposes its tensors', async () => {
      const experts = await trainExperts(data, { experts: 2, epochs: 6 });
      const before = tf.memory().numTensors;
      const t0 = Date.now();
      const sweep = await windowSweep({
        data,
        experts,
        starts: [0, 2, 4],
        seeds: [0],
        distill: { imagesPerClass: 10, iterations: 50 },
        evaluation: { students: 1, epochs: 200 },
      });
      const seconds = (Date.now() - t0) / 1000;
      assert.equal(tf.memory().numTensors, before);
      assert.deepEqual(sweep.rows.map((r) => r.start), [0, 2, 4]);
      for (const r of sweep.rows) {
        assert.ok(Number.isFinite(r.accuracy) && r.accuracy > 0.5 && r.accuracy <= 1, `row ${JSON.stringify(r)}`);
        assert.ok(Number.isFinite(r.lr) && r.lr > 0 && Number.isFinite(r.finalLoss) && r.finalLoss < 1, `row ${JSON.stringify(r)}`);
      }
      assert.equal(sweep.byStart.length, 3);
      assert.equal(sweep.expertAccuracy.length, 7);
      assert.ok(sweep.realBaseline.mean > 0.5);
      process.stdout.write(
        `      quick sweep (${seconds.toFixed(1)} s): ${sweep.byStart.map((b) => `t=${b.start}: ${(100 * b.accuracy.mean).toFixed(1)}%`).join(', ')}; ` +
          `real init ${(100 * sweep.realBaseline.mean).toFixed(1)}%; experts ${sweep.expertAccuracy.map((a) => (100 * a.mean).toFixed(1)).join(' ')}\n`,
      );
      // the same seed distils the same set
      const a = await distillDigits(data.train, experts, { iterations: 3, startRange: [1, 3], seed: 5 });
      const b = await distillDigits(data.train, experts, { iterations: 3, startRange: [1, 3], seed: 5 });
      assert.deepEqual(a.pixels, b.pixels);
      assert.equal(a.lr, b.lr);
      assert.equal(tf.memory().numTensors, before);
    });

    it('refuses a start range past the experts\u2019 last epoch', async () => {
      const experts = await trainExperts(data, { experts: 1, epochs: 2 });
      await assert.rejects(distillDigits(data.train, experts, { startRange: [2, 2] }), ConfigError);
    });
  });
});
