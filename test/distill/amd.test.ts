import { strict as assert } from 'node:assert';
import { jointFeatures } from '../../src/coreset/joint';
import { kMeansSelect } from '../../src/coreset/kmeans';
import { DistillConfig } from '../../src/config/schemas';
import { dynamicStartRanges, towerProgress } from '../../src/distill/amd';
import { sampleUnroll } from '../../src/distill/phase-loop';
import { initSynthetic } from '../../src/distill/synthetic';
import type { FeatureSet } from '../../src/features/feature-set';
import { dualShape } from '../../src/model/dual';
import type { Trajectory } from '../../src/trajectory/store';
import { normal, rng } from '../../src/util/random';

/** A trajectory of 6 snapshots whose towers' first parameter follows `img` and `txt` (the second stays 0). */
function traj(img: number[], txt: number[], scale: number): Trajectory {
  const flat = (v: number[]) => Float32Array.from(v.flatMap((x) => [x * scale, 0]));
  return { shape: dualShape(1, 1, 1), img: flat(img), txt: flat(txt), snapshots: img.length, retrieval: [], retrievalVal: [] };
}

describe('AMD: dynamic start ranges (l2 measure) and prototype initialisation (frozen encoders)', () => {
  // image tower changes 4, 2, 1, .5, .5 (learns early); text .5, .5, 1, 2, 4 (learns late); total 8 each
  const img = [0, 4, 6, 7, 7.5, 8];
  const txt = [0, 0.5, 1, 2, 4, 8];
  const trajectories = [traj(img, txt, 1), traj(img, txt, 2)];

  it("each tower's progress is its share of the change so far, averaged over experts", () => {
    assert.deepEqual(towerProgress(trajectories, 'img', 'l2'), [0, 0.5, 0.75, 0.875, 0.9375, 1]);
    assert.deepEqual(towerProgress(trajectories, 'txt', 'l2'), [0, 0.0625, 0.125, 0.25, 0.5, 1]);
  });

  it('the early-learning tower gets earlier starts, the late one later ones (hand-computed)', () => {
    // start [1, 2]: mean progress .28125 … .4375; image epochs nearest: 1 … 1; text: 3 … 4 (latest start 4 for M = 1)
    assert.deepEqual(dynamicStartRanges(trajectories, [1, 2], 1, 'l2'), { img: [1, 1], txt: [3, 4] });
    // a tower moves at most one range width from [lo, hi], and leaves room for the target
    assert.deepEqual(dynamicStartRanges(trajectories, [0, 0], 1, 'l2'), { img: [0, 0], txt: [0, 0] });
    assert.deepEqual(dynamicStartRanges(trajectories, [1, 2], 2, 'l2').txt, [3, 3]);
    // equal dynamics: the phase's own range for both towers
    const same = [traj(img, img, 1)];
    assert.deepEqual(dynamicStartRanges(same, [1, 2], 1, 'l2'), { img: [1, 2], txt: [1, 2] });
  });

  it('sampleUnroll draws each tower from its own range', () => {
    const config = DistillConfig.parse({ phases: [{ start: [1, 2], size: 4, iterations: 1 }], batchSyn: 2, synSteps: 1, dynamicStart: true, dynamicMeasure: 'l2' });
    const o = { phase: config.phases[0]!, config, trajectories, shape: dualShape(1, 1, 1), dropout: 0 };
    const ranges = dynamicStartRanges(trajectories, [1, 2], 1, 'l2');
    const draws = Array.from({ length: 60 }, (_, i) => sampleUnroll(rng(i), o, ranges));
    assert.ok(draws.every((d) => d.start === 1 && d.startTxt! >= 3 && d.startTxt! <= 4));
    assert.deepEqual(new Set(draws.map((d) => d.startTxt)), new Set([3, 4]));
  });

  it('prototype initialisation starts from the k-means pairs of the joint features', () => {
    const r = rng(3);
    const n = 40;
    const train: FeatureSet = {
      numImages: n,
      numCaptions: n,
      dImg: 5,
      dTxt: 4,
      img: Float32Array.from({ length: n * 5 }, () => normal(r)),
      txt: Float32Array.from({ length: n * 4 }, () => normal(r)),
      captionToImage: Int32Array.from({ length: n }, (_, j) => j),
    } as unknown as FeatureSet;
    const { state, pairs } = initSynthetic(train, { size: 6, init: 'prototypes', similarity: { kind: 'none', rank: 1, alpha: 1 }, alphaInit: 0.1 }, rng(9));
    const f = jointFeatures(train);
    assert.deepEqual(Array.from(pairs), Array.from(kMeansSelect(f.x, f.n, f.d, 6, rng(9)).picked));
    const x = state.x!.dataSync();
    pairs.forEach((c, i) => assert.deepEqual(Array.from(x.subarray(i * 5, (i + 1) * 5)), Array.from(train.img.subarray(c * 5, (c + 1) * 5))));
    for (const t of Object.values(state)) t.dispose();
  });
});
