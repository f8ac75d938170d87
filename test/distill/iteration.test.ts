import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { type GradientMode, type IterationOptions, type Teacher, type UnrollStep, distillIteration, similarityKeys } from '../../src/distill/iteration';
import { RepassHelper, helperPerJob } from '../../src/distill/repass-helper';
import type { SimilaritySpec, SyntheticState } from '../../src/distill/synthetic';
import { type DualParams, TOWERS, dualGrads, dualShape, flattenTower, initDual, sgdStep } from '../../src/model/dual';
import { dropoutMask } from '../../src/model/head';
import { similarityBlock } from '../../src/distill/synthetic';
import { rng } from '../../src/util/random';

/** ‖a‖² / ‖b‖² summed in float64 (the reference values of a finite-difference check need the precision). */
function ratio64(a: tf.Tensor, b: tf.Tensor): number {
  const sq = (t: tf.Tensor) => (t.dataSync() as Float32Array).reduce((acc, v) => acc + v * v, 0);
  return sq(a) / sq(b);
}

/** Central difference with one Richardson step: O(h⁴) truncation, so h can stay large against float32 noise. */
function richardson(at: (e: number) => number, h: number): number {
  const d = (e: number) => (at(e) - at(-e)) / (2 * e);
  return (4 * d(h / 2) - d(h)) / 3;
}

/**
 * The matching loss under SPEC §5.4's convention: the student's parameters θ_i at each unrolled step are
 * those of the base point (held fixed), only the step gradients g_i see the perturbed data.
 */
function conventionLoss(state: SyntheticState, thetas: DualParams[], teacher: Teacher, steps: UnrollStep[], o: IterationOptions): number {
  return tf.tidy(() => {
    let total = 0;
    const Gs = steps.map((step, i) => {
      const b = tf.tensor1d(step.batch, 'int32');
      return dualGrads(thetas[i]!, { x: tf.gather(state.x!, b) as tf.Tensor2D, y: tf.gather(state.y!, b) as tf.Tensor2D, s: similarityBlock(state, o.similarity, b), maskImg: step.maskImg, maskTxt: step.maskTxt }, o.loss, o.temperature).grads;
    });
    for (const t of TOWERS) {
      const G = tf.addN(Gs.map((g) => flattenTower(g[t])));
      const lr = t === 'img' ? state.lrImg! : state.lrTxt!;
      total += ratio64(tf.sub(tf.sub(teacher.start[t], tf.mul(lr, G)), teacher.target[t]), tf.sub(teacher.start[t], teacher.target[t]));
    }
    return total;
  });
}

function trueLoss(state: SyntheticState, teacher: Teacher, steps: UnrollStep[], o: IterationOptions): number {
  return tf.tidy(() => {
    let theta = teacher.theta0;
    for (const step of steps) {
      const b = tf.tensor1d(step.batch, 'int32');
      const g = dualGrads(theta, { x: tf.gather(state.x!, b) as tf.Tensor2D, y: tf.gather(state.y!, b) as tf.Tensor2D, s: similarityBlock(state, o.similarity, b), maskImg: step.maskImg, maskTxt: step.maskTxt }, o.loss, o.temperature).grads;
      theta = sgdStep(theta, g, { img: state.lrImg as tf.Scalar, txt: state.lrTxt as tf.Scalar });
    }
    let total = 0;
    for (const t of TOWERS) {
      total += ratio64(tf.sub(flattenTower(theta[t]), teacher.target[t]), tf.sub(teacher.start[t], teacher.target[t]));
    }
    return total;
  });
}

describe('distill: one iteration, gradients vs finite differences', function () {
  this.timeout(120000);
  before(() => ready(() => undefined));

  const setup = (spec: SimilaritySpec) => {
    const r = rng(11);
    const u = () => r.next();
    const shape = dualShape(8, 5, 4);
    const theta0 = initDual(shape, u);
    const start = { img: flattenTower(theta0.img), txt: flattenTower(theta0.txt) };
    const target = {
      // a teacher step of the size where the matching loss is O(1), so float32 central differences are accurate
      img: tf.add(start.img, tf.randomNormal(start.img.shape, 0, 0.3, 'float32', 1)) as tf.Tensor1D,
      txt: tf.add(start.txt, tf.randomNormal(start.txt.shape, 0, 0.3, 'float32', 2)) as tf.Tensor1D,
    };
    const n = 6;
    const state: Record<string, tf.Tensor> = {
      x: tf.randomNormal([n, 8], 0, 1, 'float32', 3),
      y: tf.randomNormal([n, 5], 0, 1, 'float32', 4),
      lrImg: tf.scalar(0.1),
      lrTxt: tf.scalar(0.2),
    };
    if (spec.kind === 'full') state.sFull = tf.add(tf.eye(n), tf.randomUniform([n, n], 0, 0.3, 'float32', 5));
    if (spec.kind === 'lowrank') {
      state.sDiag = tf.ones([n]);
      state.sL = tf.randomNormal([n, 2], 0, 1, 'float32', 6);
      state.sR = tf.randomNormal([n, 2], 0, 0.3, 'float32', 7);
    }
    const steps: UnrollStep[] = [0, 1, 2].map((i) => ({
      batch: Int32Array.from([[0, 1, 2, 3], [2, 3, 4, 5], [5, 0, 3, 1]][i]!),
      maskImg: dropoutMask(4, 4, 0.2, r),
      maskTxt: dropoutMask(4, 4, 0.2, r),
    }));
    return { teacher: { theta0, start, target } as Teacher, state: state as SyntheticState, steps };
  };

  const directional = (f: (s: SyntheticState) => number, state: SyntheticState, key: string, seed: number, eps: number) => {
    const d = tf.randomNormal(state[key]!.shape, 0, 1, 'float32', seed);
    const dir = tf.div(d, tf.norm(d));
    const at = (e: number) => f({ ...state, [key]: tf.add(state[key]!, tf.mul(dir, e)) });
    return { fd: richardson(at, eps), dir };
  };

  const cases: [GradientMode, SimilaritySpec][] = [
    ['tesla', { kind: 'full', rank: 0, alpha: 1 }],
    ['tesla', { kind: 'lowrank', rank: 2, alpha: 1 }],
    ['full', { kind: 'full', rank: 0, alpha: 1 }],
  ];
  it('an iteration leaves no tensor behind but its gradients, in either mode', async () => {
    for (const mode of ['tesla', 'full'] as const) {
      const { teacher, state, steps } = setup({ kind: 'full', rank: 0, alpha: 1 });
      const before = tf.memory().numTensors;
      const res = await distillIteration(state, teacher, steps, { loss: 'infonce', temperature: 0.07, similarity: { kind: 'full', rank: 0, alpha: 1 }, mode });
      const grads = Object.values(res.grads);
      assert.equal(tf.memory().numTensors - before, grads.length, `${mode}: only the ${grads.length} gradients are new`);
      for (const g of grads) g.dispose();
    }
  });

  it('a helper thread computes half of the TESLA re-pass: bit-identical losses and gradients, no tensor left behind', async () => {
    const helper = RepassHelper.start();
    try {
      for (const spec of [cases[0]![1], cases[1]![1]]) {
        const { teacher, state, steps } = setup(spec);
        const o: IterationOptions = { loss: 'infonce', temperature: 0.07, similarity: spec, mode: 'tesla' };
        const alone = await distillIteration(state, teacher, steps, o);
        const before = tf.memory().numTensors;
        const helped = await distillIteration(state, teacher, steps, o, helper);
        assert.equal(tf.memory().numTensors - before, Object.keys(helped.grads).length, `${spec.kind}: only the gradients are new`);
        assert.deepEqual([helped.lossImg, helped.lossTxt], [alone.lossImg, alone.lossTxt]);
        assert.deepEqual(Object.keys(helped.grads).sort(), Object.keys(alone.grads).sort());
        for (const k of Object.keys(alone.grads)) assert.deepEqual(helped.grads[k]!.dataSync(), alone.grads[k]!.dataSync(), `${spec.kind}: ${k}`);
        for (const g of [...Object.values(alone.grads), ...Object.values(helped.grads)]) g.dispose();
      }
    } finally {
      await helper.close();
    }
  });

  it('a helper on another build than the distiller\'s fails the iteration naming both, rather than differ in the last bits', async () => {
    const main = await ready(() => undefined);
    // the helper's environment is this process's when it starts: another product library, or (as where its
    // WebAssembly does not come up) plain JS chosen first
    const [name, value] = main.blas !== null ? ['PTMST_BLAS', 'off'] : ['PTMST_BACKEND', 'cpu'];
    const saved = process.env[name];
    process.env[name] = value;
    let helper: RepassHelper;
    try {
      helper = RepassHelper.start();
    } finally {
      if (saved === undefined) delete process.env[name];
      else process.env[name] = saved;
    }
    try {
      const spec: SimilaritySpec = { kind: 'full', rank: 0, alpha: 1 };
      const { teacher, state, steps } = setup(spec);
      const before = tf.memory().numTensors;
      await assert.rejects(distillIteration(state, teacher, steps, { loss: 'infonce', temperature: 0.07, similarity: spec, mode: 'tesla' }, helper), /^Error: the helper thread runs wasm \((wasm|cpu) chosen\), \d thread\(s\) per op, products on .*, the distiller wasm \(wasm chosen\), \d thread\(s\) per op/);
      assert.equal(tf.memory().numTensors, before);
    } finally {
      await helper.close();
    }
  });

  it('a helper that fails fails the iteration with its error, and leaves no tensor behind', async () => {
    const { teacher, state, steps } = setup({ kind: 'full', rank: 0, alpha: 1 });
    const before = tf.memory().numTensors;
    const failing = { run: () => Promise.reject(new Error('helper thread lost')) };
    await assert.rejects(distillIteration(state, teacher, steps, { loss: 'infonce', temperature: 0.07, similarity: { kind: 'full', rank: 0, alpha: 1 }, mode: 'tesla' }, failing), /helper thread lost/);
    assert.equal(tf.memory().numTensors, before);
  });

  it('a distillation gets a helper thread only when a core would idle', () => {
    assert.equal(helperPerJob(1, 1, 2), true, 'one job on two cores');
    assert.equal(helperPerJob(3, 1, 2), true, 'jobs one after another on two cores');
    assert.equal(helperPerJob(2, 2, 2), false, 'two jobs at once on two cores');
    assert.equal(helperPerJob(2, 2, 4), true, 'two jobs at once on four cores');
    assert.equal(helperPerJob(1, 1, 1), false, 'one core');
    assert.equal(helperPerJob(0, 1, 2), false, 'nothing to do');
  });

  for (const [mode, spec] of cases) {
    it(`${mode} mode, ${spec.kind} S: data, S and learning-rate gradients match central differences`, async () => {
      const { teacher, state, steps } = setup(spec);
      const o: IterationOptions = { loss: 'infonce', temperature: 0.07, similarity: spec, mode };
      const res = await distillIteration(state, teacher, steps, o);
      // base-point student parameters for the convention loss
      const thetas: DualParams[] = [teacher.theta0];
      for (const step of steps) {
        const b = tf.tensor1d(step.batch, 'int32');
        const g = dualGrads(thetas[thetas.length - 1]!, { x: tf.gather(state.x!, b) as tf.Tensor2D, y: tf.gather(state.y!, b) as tf.Tensor2D, s: similarityBlock(state, spec, b), maskImg: step.maskImg, maskTxt: step.maskTxt }, o.loss, o.temperature).grads;
        thetas.push(sgdStep(thetas[thetas.length - 1]!, g, { img: state.lrImg as tf.Scalar, txt: state.lrTxt as tf.Scalar }));
      }
      const f = mode === 'tesla' ? (s: SyntheticState) => conventionLoss(s, thetas, teacher, steps, o) : (s: SyntheticState) => trueLoss(s, teacher, steps, o);
      assert.ok(Math.abs(res.lossImg + res.lossTxt - trueLoss(state, teacher, steps, o)) < 1e-4, 'reported loss is the matching loss');
      // tolerance: relative 1e-3, or 1e-4 absolute below 0.1 (the float32 noise floor of the loss differences)
      const keys = ["x", "y", ...similarityKeys(spec)];
      keys.forEach((key, i) => {
        const { fd, dir } = directional(f, state, key, 100 + i, Number(process.env.FD_EPS ?? 2e-2));
        const analytic = tf.sum(tf.mul(res.grads[key]!, dir)).dataSync()[0]!;
        assert.ok(Math.abs(fd - analytic) <= 1e-3 * Math.max(Math.abs(analytic), 0.1), `${key}: fd ${fd} vs analytic ${analytic}`);
      });
      for (const key of ['lrImg', 'lrTxt']) {
        // with G fixed (tesla) the loss is a quadratic in α; full mode differentiates the real unroll
        const g = mode === 'tesla' ? (s: SyntheticState) => conventionLoss({ ...state, [key]: s[key]! }, thetas, teacher, steps, o) : f;
        const fd = richardson((e) => g({ ...state, [key]: tf.add(state[key]!, e) }), 2e-2);
        const analytic = res.grads[key]!.dataSync()[0]!;
        assert.ok(Math.abs(fd - analytic) <= 1e-3 * Math.max(Math.abs(analytic), 0.1), `${key}: fd ${fd} vs analytic ${analytic}`);
      }
    });
  }
});
