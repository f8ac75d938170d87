import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { dualShape, initDual } from '../../src/model/dual';
import { evaluateRetrieval, retrievalFromScores, retrievalRanks, retrievalRanksBlockwise } from '../../src/model/retrieval';
import { meanStd, select } from '../../src/evaluate/summary';
import { rng } from '../../src/util/random';

/** The reference's rule, literally: argsort ascending (stable), reversed; rank = position of the target. */
function bruteRank(scores: number[], target: number): number {
  const order = scores.map((s, i) => [s, i] as const).sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, i]) => i).reverse();
  return order.indexOf(target);
}

describe('evaluate/retrieval', () => {
  it('matches brute-force ranks on random scores with many ties', () => {
    const r = rng(9);
    const nImg = 7;
    const nCap = 35;
    // scores on a coarse grid so that ties are frequent
    const scores = Float32Array.from({ length: nImg * nCap }, () => Math.floor(r.next() * 4) / 4);
    const captionToImage = Int32Array.from({ length: nCap }, (_, j) => Math.floor(j / 5));
    const imageToCaptions = Array.from({ length: nImg }, (_, i) => [0, 1, 2, 3, 4].map((k) => i * 5 + k));
    const got = retrievalFromScores(scores, nImg, captionToImage, imageToCaptions);
    const irRanks = Array.from({ length: nCap }, (_, j) => bruteRank(Array.from({ length: nImg }, (_, i) => scores[i * nCap + j]!), captionToImage[j]!));
    const trRanks = Array.from({ length: nImg }, (_, i) => {
      const row = Array.from(scores.subarray(i * nCap, (i + 1) * nCap));
      return Math.min(...imageToCaptions[i]!.map((j) => bruteRank(row, j)));
    });
    const ranks = retrievalRanks(scores, nImg, captionToImage, imageToCaptions);
    assert.deepEqual(Array.from(ranks.ir), irRanks);
    assert.deepEqual(Array.from(ranks.tr), trRanks);
    const at = (ranks: number[], k: number) => (100 * ranks.filter((x) => x < k).length) / ranks.length;
    assert.equal(got.ir1, at(irRanks, 1));
    assert.equal(got.ir5, at(irRanks, 5));
    assert.equal(got.tr1, at(trRanks, 1));
    assert.equal(got.tr5, at(trRanks, 5));
    assert.equal(got.tr10, 100);
    assert.ok(Math.abs(got.rMean - (got.ir1 + got.ir5 + got.ir10 + got.tr1 + got.tr5 + got.tr10) / 6) < 1e-9);
  });

  it('scores a perfect and a hand-made case exactly', () => {
    // 2 images, 4 captions (2 each); image 0 ranks its captions first, image 1 ranks its own last
    const scores = Float32Array.from([0.9, 0.8, 0.1, 0.0, 0.5, 0.6, 0.2, 0.1]);
    const r = retrievalFromScores(scores, 2, Int32Array.from([0, 0, 1, 1]), [[0, 1], [2, 3]]);
    assert.equal(r.tr1, 50); // image 1's best caption (index 2, score 0.2) is third
    // IR: caption 2 → images (0.1, 0.2): image 1 first; caption 3 → (0.0, 0.1): image 1 first; captions 0,1 → image 0 first
    assert.equal(r.ir1, 100);
  });

  it('selects checkpoints by rule and summarises with the sample std', () => {
    const mk = (v: number, t: number) => ({ rMean: v, ir1: v, ir5: v, ir10: v, tr1: v, tr5: v, tr10: t });
    const cps = [
      { subset: 0, epoch: 0, val: mk(1, 0), test: mk(5, 5) },
      { subset: 0, epoch: 10, val: mk(3, 0), test: mk(2, 2) },
      { subset: 1, epoch: 10, val: mk(2, 0), test: mk(4, 4) },
    ];
    assert.equal(select(cps, 'final').rMean, 4);
    assert.equal(select(cps, 'val').rMean, 2);
    assert.equal(select(cps, 'test').rMean, 5);
    const m = meanStd([1, 2, 3, 4]);
    assert.equal(m.mean, 2.5);
    assert.ok(Math.abs(m.std - Math.sqrt(5 / 3)) < 1e-12);
  });
});

describe('evaluate/retrieval with NaN scores (a diverged student)', () => {
  const nImg = 20;
  const nCap = 100;
  const captionToImage = Int32Array.from({ length: nCap }, (_, j) => Math.floor(j / 5));
  const imageToCaptions = Array.from({ length: nImg }, (_, i) => [0, 1, 2, 3, 4].map((k) => i * 5 + k));

  it('an all-NaN student scores 0 at every K, never 100 (NaN compares false with everything)', () => {
    const r = retrievalFromScores(new Float32Array(nImg * nCap).fill(NaN), nImg, captionToImage, imageToCaptions);
    for (const k of ['ir1', 'ir5', 'ir10', 'tr1', 'tr5', 'tr10', 'rMean'] as const) assert.equal(r[k], 0, k);
  });

  it('NaN anywhere never raises a score: each recall is at most the one with those entries set to -Infinity', () => {
    const rand = rng(4);
    for (let trial = 0; trial < 20; trial++) {
      const scores = Float32Array.from({ length: nImg * nCap }, () => rand.next());
      const poisoned = scores.map((v) => (rand.next() < 0.3 ? NaN : v));
      const worst = poisoned.map((v) => (Number.isNaN(v) ? -Infinity : v));
      const a = retrievalFromScores(poisoned, nImg, captionToImage, imageToCaptions);
      const b = retrievalFromScores(worst, nImg, captionToImage, imageToCaptions);
      for (const k of ['ir1', 'ir5', 'ir10', 'tr1', 'tr5', 'tr10'] as const) assert.ok(a[k] <= b[k], `${k}: ${a[k]} > ${b[k]}`);
    }
  });

  it('a NaN target ranks last; NaN competitors rank below every number (hand-made ranks)', () => {
    // 3 images × 3 captions, caption j belongs to image j; rows are images
    const scores = Float32Array.from([
      [0.1, NaN, NaN],
      [NaN, NaN, 0.2],
      [0.5, NaN, 0.1],
    ].flat());
    const { ir, tr } = retrievalRanks(scores, 3, Int32Array.from([0, 1, 2]), [[0], [1], [2]]);
    // caption 0 scores (0.1, NaN, 0.5): its image is second; caption 1 is all NaN: last; caption 2 (NaN, 0.2, 0.1): second
    assert.deepEqual(Array.from(ir), [1, 2, 1]);
    // image 0 (0.1, NaN, NaN): first; image 1's own caption is NaN: last; image 2 (0.5, NaN, 0.1): second
    assert.deepEqual(Array.from(tr), [0, 2, 1]);
  });
});

describe('evaluate/retrieval: blockwise over image rows', () => {
  it('retrievalRanksBlockwise equals retrievalRanks for every block size, ties and NaN included', async () => {
    const r = rng(11);
    const nImg = 9;
    const nCap = 27;
    const scores = Float32Array.from({ length: nImg * nCap }, () => Math.floor(r.next() * 4) / 4);
    scores[5] = NaN;
    scores[3 * nCap + 10] = NaN;
    const captionToImage = Int32Array.from({ length: nCap }, (_, j) => Math.floor(j / 3));
    const imageToCaptions = Array.from({ length: nImg }, (_, i) => [0, 1, 2].map((k) => i * 3 + k));
    const want = retrievalRanks(scores, nImg, captionToImage, imageToCaptions);
    for (const block of [1, 2, 4, 9, 20]) {
      const rows = async (i0: number, i1: number) => scores.slice(i0 * nCap, i1 * nCap);
      const got = await retrievalRanksBlockwise(rows, block, nImg, captionToImage, imageToCaptions);
      assert.deepEqual(Array.from(got.ir), Array.from(want.ir), `IR ranks, blocks of ${block}`);
      assert.deepEqual(Array.from(got.tr), Array.from(want.tr), `TR ranks, blocks of ${block}`);
    }
  });

  it('evaluateRetrieval blockwise (blocks of 3 images) gives the recalls of the one-shot product', async () => {
    await ready(() => undefined);
    const r = rng(5);
    const theta = initDual(dualShape(10, 6, 8), () => r.next());
    const n = 40;
    const data = {
      numImages: n,
      numCaptions: 2 * n,
      dImg: 10,
      dTxt: 6,
      img: Float32Array.from({ length: n * 10 }, () => r.next() - 0.5),
      txt: Float32Array.from({ length: 2 * n * 6 }, () => r.next() - 0.5),
      captionToImage: Int32Array.from({ length: 2 * n }, (_, j) => j >> 1),
      imageToCaptions: Array.from({ length: n }, (_, i) => [2 * i, 2 * i + 1]),
    };
    const before = tf.memory().numTensors;
    const one = await evaluateRetrieval(theta, data, 'one shot');
    const blocks = await evaluateRetrieval(theta, data, 'blockwise', 3 * 2 * n);
    assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
    assert.ok(one.rMean > 0 && one.ir10 < 100, `recalls are not degenerate (${one.rMean})`);
    assert.deepEqual(blocks, one);
    tf.dispose(Object.values(theta.img).concat(Object.values(theta.txt)));
  });
});
