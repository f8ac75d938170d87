import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { lossEasyCoreset, lossHardCoreset, perPairLoss } from '../../src/coreset/loss-ranked';
import type { TeacherParams } from '../../src/coreset/types';
import type { FeatureSet } from '../../src/features/feature-set';
import { dualShape, flattenTower, initDual } from '../../src/model/dual';
import { type HeadShape, LAYER_NORM_EPS } from '../../src/model/head';
import { rng } from '../../src/util/random';
import { erf64 } from '../distill/float64';

/** The head in plain float64 JS from its flat parameters (PARAM_NAMES order), L2-normalised. */
function headJs(flat: Float32Array, { dIn, dOut }: HeadShape, x: ArrayLike<number>): number[] {
  let o = 0;
  const take = (n: number) => Array.from(flat.subarray(o, (o += n)), Number);
  const W1 = take(dIn * dOut), b1 = take(dOut), W2 = take(dOut * dOut), b2 = take(dOut), g = take(dOut), be = take(dOut);
  const p = Array.from({ length: dOut }, (_, k) => b1[k]! + Array.from({ length: dIn }, (_, i) => x[i]! * W1[i * dOut + k]!).reduce((a, b) => a + b, 0));
  const a = p.map((v) => 0.5 * v * (1 + erf64(v / Math.SQRT2)));
  const z = Array.from({ length: dOut }, (_, k) => b2[k]! + a.reduce((s, v, i) => s + v * W2[i * dOut + k]!, 0) + p[k]!);
  const mu = z.reduce((s, v) => s + v, 0) / dOut;
  const vr = z.reduce((s, v) => s + (v - mu) ** 2, 0) / dOut;
  const out = z.map((v, k) => ((v - mu) / Math.sqrt(vr + LAYER_NORM_EPS)) * g[k]! + be[k]!);
  const nrm = Math.sqrt(out.reduce((s, v) => s + v * v, 0));
  return out.map((v) => v / nrm);
}

/** loss_j brute force: symmetric InfoNCE of pair j within its block, float64 log-sum-exp. */
function bruteForce(train: FeatureSet, t: TeacherParams, block: number): number[] {
  const n = train.numCaptions;
  const u = Array.from({ length: n }, (_, j) => headJs(t.img, t.shape.img, train.img.subarray(train.captionToImage[j]! * train.dImg, (train.captionToImage[j]! + 1) * train.dImg)));
  const v = Array.from({ length: n }, (_, j) => headJs(t.txt, t.shape.txt, train.txt.subarray(j * train.dTxt, (j + 1) * train.dTxt)));
  const dot = (a: number[], b: number[]) => a.reduce((s, x, k) => s + x * b[k]!, 0) / t.temperature!;
  const lse = (xs: number[]) => { const m = Math.max(...xs); return m + Math.log(xs.reduce((s, x) => s + Math.exp(x - m), 0)); };
  return Array.from({ length: n }, (_, j) => {
    const lo = Math.floor(j / block) * block;
    const idx = Array.from({ length: Math.min(n, lo + block) - lo }, (_, i) => lo + i);
    const own = dot(u[j]!, v[j]!);
    const capCE = lse(idx.map((i) => dot(u[i]!, v[j]!))) - own;
    const imgCE = lse(idx.map((i) => dot(u[j]!, v[i]!))) - own;
    return 0.5 * (capCE + imgCE);
  });
}

function tiny(): { train: FeatureSet; teacher: TeacherParams } {
  const r = rng(17);
  const nImg = 5, dImg = 6, dTxt = 4;
  const img = Float32Array.from({ length: nImg * dImg }, () => r.next() * 2 - 1);
  const captionToImage = Int32Array.from({ length: 10 }, (_, j) => Math.floor(j / 2));
  const txt = Float32Array.from({ length: 10 * dTxt }, () => r.next() * 2 - 1);
  const train: FeatureSet = {
    dataset: 'toy', split: 'train', imageEncoder: 'toy', textEncoder: 'toy', numImages: nImg, numCaptions: 10, dImg, dTxt, img, txt,
    captionToImage, imageToCaptions: Array.from({ length: nImg }, (_, i) => [2 * i, 2 * i + 1]), digest: 'toy',
  };
  const shape = dualShape(dImg, dTxt, 3);
  const theta = initDual(shape, () => r.next());
  const [fi, ft] = tf.tidy(() => [flattenTower(theta.img), flattenTower(theta.txt)]);
  const teacher = { shape, img: fi!.dataSync() as Float32Array, txt: ft!.dataSync() as Float32Array, temperature: 0.2 };
  tf.dispose([fi!, ft!, ...Object.values(theta.img), ...Object.values(theta.txt)]);
  return { train, teacher };
}

const ranked = (loss: number[], hard: boolean) =>
  loss.map((l, j) => [l, j] as const).sort((a, b) => (hard ? b[0] - a[0] : a[0] - b[0]) || a[1] - b[1]).map(([, j]) => j);

describe('coreset/loss-ranked', () => {
  before(() => ready(() => undefined));

  it('per-pair loss matches a float64 brute force, in blocks and in one block', () => {
    const { train, teacher } = tiny();
    for (const block of [4, 128]) {
      const before = tf.memory().numTensors;
      const got = perPairLoss(train, teacher, block);
      assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
      const want = bruteForce(train, teacher, block);
      want.forEach((w, j) => assert.ok(Math.abs(got[j]! - w) < 1e-4 * Math.max(1, w), `block ${block}, pair ${j}: ${got[j]} vs ${w}`));
    }
  });

  it('loss-hard / loss-easy keep the highest / lowest losses (blocks of 128), disjoint when 2·size ≤ n', () => {
    const { train, teacher } = tiny();
    const want = bruteForce(train, teacher, 128);
    for (const size of [1, 3, 5]) {
      const hard = Array.from(lossHardCoreset.select({ train, teacher }, size, rng(0)));
      const easy = Array.from(lossEasyCoreset.select({ train, teacher }, size, rng(0)));
      assert.deepEqual(hard, ranked(want, true).slice(0, size), `hard, size ${size}`);
      assert.deepEqual(easy, ranked(want, false).slice(0, size), `easy, size ${size}`);
      assert.equal(hard.filter((j) => easy.includes(j)).length, 0, 'hard ∩ easy = ∅');
    }
  });

  it('needs the teacher temperature', () => {
    const { train, teacher } = tiny();
    const { temperature: _t, ...noT } = teacher;
    assert.throws(() => lossHardCoreset.select({ train, teacher: noT }, 2, rng(0)), /temperature/);
  });
});
