/**
 * AMD as seed 004 describes it: the Gaussian-kernel MMD between consecutive epochs (against a float64 brute force
 * written here, independently of src/), the median heuristic, the dynamic ranges it gives, and SPM's prototypes in
 * the trained expert's embedding space.
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend';
import { kMeansSelect } from '../../src/coreset/kmeans';
import { DistillConfig } from '../../src/config/schemas';
import { dynamicStartRanges, gaussianMmd2, medianBandwidth, spmPairs, towerChange, towerProgress } from '../../src/distill/amd';
import { initPhaseState, disposePhaseState } from '../../src/distill/phase-loop';
import { initSynthetic } from '../../src/distill/synthetic';
import { ConfigError } from '../../src/errors';
import type { FeatureSet } from '../../src/features/feature-set';
import { type DualShape, dualShape, flattenTower } from '../../src/model/dual';
import { embed, initHead } from '../../src/model/head';
import type { Trajectory } from '../../src/trajectory/store';
import { type Rng, deriveSeed, normal, rng } from '../../src/util/random';

/** Biased MMD² with k = exp(−‖x−y‖²/(2σ²)), σ = median pooled pairwise distance (non-zero median if that is 0). */
function bruteMmd2(a: number[][], b: number[][]): number {
  const dist = (x: number[], y: number[]) => Math.sqrt(x.reduce((s, v, q) => s + (v - y[q]!) ** 2, 0));
  const pooled = [...a, ...b];
  const ds: number[] = [];
  for (let i = 0; i < pooled.length; i++) for (let j = i + 1; j < pooled.length; j++) ds.push(dist(pooled[i]!, pooled[j]!));
  const med = (v: number[]) => {
    const s = [...v].sort((x, y) => x - y);
    return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  };
  let sigma = med(ds);
  if (sigma === 0) {
    const nz = ds.filter((x) => x > 0);
    if (nz.length === 0) return 0;
    sigma = med(nz);
  }
  const k = (x: number[], y: number[]) => Math.exp(-(dist(x, y) ** 2) / (2 * sigma * sigma));
  const mean = (p: number[][], q: number[][]) => {
    let s = 0;
    for (const x of p) for (const y of q) s += k(x, y);
    return s / (p.length * q.length);
  };
  return mean(a, a) + mean(b, b) - 2 * mean(a, b);
}

/** A trajectory whose towers' snapshots are the given rows (each row one snapshot's parameter vector). */
function trajOf(img: number[][], txt: number[][]): Trajectory {
  return {
    shape: dualShape(1, 1, 1),
    img: Float32Array.from(img.flat()),
    txt: Float32Array.from(txt.flat()),
    snapshots: img.length,
    retrieval: [],
    retrievalVal: [],
  } as unknown as Trajectory;
}

const rowsOf = (t: Trajectory, tower: 'img' | 'txt'): number[][] => {
  const p = t[tower].length / t.snapshots;
  return Array.from({ length: t.snapshots }, (_, e) => Array.from(t[tower].subarray(e * p, (e + 1) * p)));
};

/** float64 brute-force MMD (not squared) between consecutive epochs, samples = the experts' rows at each epoch. */
function bruteChange(trajs: Trajectory[], tower: 'img' | 'txt'): number[] {
  const rows = trajs.map((t) => rowsOf(t, tower));
  return Array.from({ length: trajs[0]!.snapshots - 1 }, (_, e) => Math.sqrt(Math.max(0, bruteMmd2(rows.map((r) => r[e]!), rows.map((r) => r[e + 1]!)))));
}

/** A random walk of `snapshots` rows of width d, step scale per epoch `steps[e]`. */
function walk(r: Rng, d: number, steps: number[], offset = 0): number[][] {
  const out = [Array.from({ length: d }, () => offset + normal(r))];
  for (const s of steps) out.push(out[out.length - 1]!.map((v) => v + s * normal(r)));
  return out;
}

describe('AMD (seed 004): Gaussian-kernel MMD, dynamic ranges from it, SPM prototypes', () => {
  it('the median heuristic on a hand-computed case, and its zero-median guard', () => {
    // 1-D pooled {0, 1, 3, 7}: distances 1, 3, 7, 2, 6, 4 → sorted 1 2 3 4 6 7 → median (3 + 4) / 2
    assert.equal(medianBandwidth([1, 9, 49, 4, 36, 16]), 3.5);
    // odd count: distances 1, 2, 5 → 2
    assert.equal(medianBandwidth([1, 4, 25]), 2);
    // more than half zero: the median of the non-zero distances (2, 2, 4 → 2)
    assert.equal(medianBandwidth([0, 0, 0, 0, 4, 4, 16]), 2);
    assert.equal(medianBandwidth([0, 0, 0]), 0);
  });

  it('MMD² on hand-computed sets: one sample each (point masses), a zero median, identical sets', () => {
    const one = (v: number[]) => [{ data: Float32Array.from(v), row: 0 }];
    // point masses: σ = ‖a − b‖ (the only pooled distance), so MMD² = 2 − 2 e^{−1/2} whatever the step
    assert.ok(Math.abs(gaussianMmd2(one([0, 0]), one([3, 4]), 2) - (2 - 2 * Math.exp(-0.5))) < 1e-15);
    assert.ok(Math.abs(gaussianMmd2(one([1]), one([1.001]), 1) - (2 - 2 * Math.exp(-0.5))) < 1e-12);
    // a = {0, 0, 0}, b = {0, 2}: 6 of 10 pooled distances are 0 → σ = 2; MMD² = (1 − e^{−1/2}) / 2
    const set = (v: number[]) => v.map((_, row) => ({ data: Float32Array.from(v), row }));
    assert.ok(Math.abs(gaussianMmd2(set([0, 0, 0]), set([0, 2]), 1) - (1 - Math.exp(-0.5)) / 2) < 1e-15);
    assert.equal(gaussianMmd2(set([5, 5]), set([5, 5, 5]), 1), 0);
  });

  it('MMD² matches the float64 brute force on random sets (1 and 3 samples, several widths)', () => {
    const r = rng(11);
    for (const [m, d, shift] of [[1, 4, 0.5], [3, 4, 0.5], [3, 17, 0.1], [3, 17, 3], [2, 9, 1], [5, 3, 0]] as const) {
      const a = walk(r, d, Array(m - 1).fill(1));
      const b = a.map((x) => x.map((v) => v + shift + 0.3 * normal(r)));
      const flat = (rows: number[][]) => rows.map((x) => ({ data: Float32Array.from(x), row: 0 }));
      // the brute force reads the same float32-rounded numbers
      const f32 = (rows: number[][]) => rows.map((x) => Array.from(Float32Array.from(x)));
      const got = gaussianMmd2(flat(a), flat(b), d);
      const want = bruteMmd2(f32(a), f32(b));
      assert.ok(Math.abs(got - want) <= 1e-12 * Math.max(1, want), `m ${m} d ${d}: ${got} vs ${want}`);
      assert.ok(want > 1e-4, 'a case that measures something');
    }
  });

  it("each tower's per-epoch MMD along hand-made trajectories matches the brute force (1 and 3 experts)", () => {
    const r = rng(5);
    for (const experts of [1, 3]) {
      const trajs = Array.from({ length: experts }, (_, x: number) => trajOf(walk(r, 6, [2, 1, 0.5, 0.2, 0.1], x), walk(r, 3, [0.1, 0.2, 0.5, 1, 2], -x)));
      for (const tower of ['img', 'txt'] as const) {
        const got = Array.from(towerChange(trajs, tower, 'mmd-gaussian'));
        const want = bruteChange(trajs, tower);
        got.forEach((g, e) => assert.ok(Math.abs(g - want[e]!) <= 1e-12, `${experts} experts, ${tower}, epoch ${e}: ${g} vs ${want[e]}`));
      }
    }
    // one expert: every epoch with a change has MMD = √(2 − 2e^{−1/2}), so progress is linear in the epochs
    const single = [trajOf(walk(r, 6, [2, 1, 0.5, 0.2, 0.1]), walk(r, 3, [0.1, 0.2, 0.5, 1, 2]))];
    const p = towerProgress(single, 'img', 'mmd-gaussian');
    p.forEach((v, e) => assert.ok(Math.abs(v - e / 5) < 1e-12, `progress ${e}: ${v}`));
    assert.deepEqual(dynamicStartRanges(single, [1, 2], 1, 'mmd-gaussian'), { img: [1, 2], txt: [1, 2] });
  });

  it('the ranges move the way the MMD says: the tower that converges early gets earlier starts', () => {
    // 3 experts spread apart along the second coordinate (0, 1, 2); the first coordinate moves by
    // image 4, 2, 1, .5, .5 (early) and text .5, .5, 1, 2, 4 (late) per epoch, the same for every expert
    const along = (steps: number[]) => steps.reduce<number[]>((acc, s) => [...acc, acc[acc.length - 1]! + s], [0]);
    const img = along([4, 2, 1, 0.5, 0.5]);
    const txt = along([0.5, 0.5, 1, 2, 4]);
    const trajs = [0, 1, 2].map((x) => trajOf(img.map((v) => [v, x]), txt.map((v) => [v, x])));
    const progress = (tower: 'img' | 'txt') => {
      const c = bruteChange(trajs, tower);
      const total = c.reduce((a, b) => a + b, 0);
      return [0, ...c.map((_, e) => c.slice(0, e + 1).reduce((a, b) => a + b, 0) / total)];
    };
    for (const tower of ['img', 'txt'] as const) {
      const got = towerProgress(trajs, tower, 'mmd-gaussian');
      progress(tower).forEach((v, e) => assert.ok(Math.abs(got[e]! - v) < 1e-12, `${tower} progress ${e}: ${got[e]} vs ${v}`));
    }
    // brute-force progress: image 0 .29 .57 .76 .88 1, text 0 .12 .24 .43 .71 1 (the MMD saturates, so the image
    // tower's big early steps count less than under l2, which gives .5 and .0625 at epoch 1)
    const pi = progress('img');
    const pt = progress('txt');
    assert.ok(Math.abs(pi[1]! - 0.2907) < 1e-3 && Math.abs(pt[1]! - 0.12) < 1e-3, `${pi} / ${pt}`);
    // start [1, 2], M = 1: mean progress at 1 and 2 is .205 and .403; the image tower is nearest them at epoch 1
    // (.29) for both, the text tower at epochs 2 (.24) and 3 (.43); l2's ranges differ (text 3 … 4)
    assert.deepEqual(dynamicStartRanges(trajs, [1, 2], 1, 'mmd-gaussian'), { img: [1, 1], txt: [2, 3] });
    assert.deepEqual(dynamicStartRanges(trajs, [1, 2], 1, 'l2'), { img: [1, 1], txt: [3, 4] });
    // the same dynamics in both towers: the phase's own range
    const same = [0, 1, 2].map((x) => trajOf(img.map((v) => [v, x]), img.map((v) => [v, x])));
    assert.deepEqual(dynamicStartRanges(same, [1, 2], 1, 'mmd-gaussian'), { img: [1, 2], txt: [1, 2] });
  });

  it('dynamicMeasure: absent stays out of the parsed config, a bad value names the field, the measures differ here', () => {
    const along = (steps: number[]) => steps.reduce<number[]>((acc, s) => [...acc, acc[acc.length - 1]! + s], [0]);
    const trajs = [0, 1, 2].map((x) => trajOf(along([4, 2, 1, 0.5, 0.5]).map((v) => [v, x]), along([0.5, 0.5, 1, 2, 4]).map((v) => [v, x])));
    const c = DistillConfig.parse({ phases: [{ start: [1, 2], size: 4, iterations: 1 }], dynamicStart: true });
    assert.equal('dynamicMeasure' in c, false, 'absent stays absent (existing keys hold)');
    assert.throws(() => DistillConfig.parse({ phases: [{ start: [1, 2], size: 4, iterations: 1 }], dynamicMeasure: 'mmd' }), /dynamicMeasure/);
    assert.notDeepEqual(dynamicStartRanges(trajs, [1, 2], 1, 'mmd-gaussian'), dynamicStartRanges(trajs, [1, 2], 1, 'l2'));
  });

  describe('SPM: prototypes in the trained expert embedding space', () => {
    const r = rng(3);
    const numImages = 12;
    const n = 24; // two captions per image
    const train = {
      numImages,
      numCaptions: n,
      dImg: 5,
      dTxt: 4,
      img: Float32Array.from({ length: numImages * 5 }, () => normal(r)),
      txt: Float32Array.from({ length: n * 4 }, () => normal(r)),
      captionToImage: Int32Array.from({ length: n }, (_, j) => j >> 1),
    } as unknown as FeatureSet;
    const shape: DualShape = dualShape(5, 4, 3);
    const heads = () => ({ img: initHead(shape.img, () => r.next()), txt: initHead(shape.txt, () => r.next()) });
    const flat = (h: ReturnType<typeof heads>, tower: 'img' | 'txt') => tf.tidy(() => flattenTower(h[tower]).dataSync().slice());
    const first = heads();
    const last = heads();
    const trajectory = {
      shape,
      snapshots: 2,
      img: Float32Array.from([...flat(first, 'img'), ...flat(last, 'img')]),
      txt: Float32Array.from([...flat(first, 'txt'), ...flat(last, 'txt')]),
      retrieval: [],
      retrievalVal: [],
    } as unknown as Trajectory;
    after(() => {
      for (const h of [first, last]) for (const t of [...Object.values(h.img), ...Object.values(h.txt)]) t.dispose();
    });

    /** the dense joint embedding matrix [u(image of j) ; v(j)] under `h` (embed's outputs are unit rows) */
    const denseJoint = (h: ReturnType<typeof heads>): Float32Array => {
      const u = tf.tidy(() => embed(h.img, tf.tensor2d(train.img, [numImages, 5])).dataSync().slice());
      const v = tf.tidy(() => embed(h.txt, tf.tensor2d(train.txt, [n, 4])).dataSync().slice());
      const x = new Float32Array(n * 6);
      for (let j = 0; j < n; j++) {
        x.set(u.subarray((j >> 1) * 3, ((j >> 1) + 1) * 3), j * 6);
        x.set(v.subarray(j * 3, (j + 1) * 3), j * 6 + 3);
      }
      return x;
    };

    it("picks, per centroid in turn, the nearest pair not yet picked (brute force), from the last snapshot's heads", () => {
      const k = 5;
      const x = denseJoint(last);
      const km = kMeansSelect(x, n, 6, k, rng(9));
      const pairs = spmPairs(train, k, rng(9), trajectory, shape);
      assert.deepEqual(Array.from(pairs), Array.from(km.picked));
      // brute force: the distinct pair nearest each centroid of the embedding space, float64
      const taken = new Set<number>();
      for (let c = 0; c < k; c++) {
        let best = -1;
        let bestD = Infinity;
        for (let j = 0; j < n; j++) {
          if (taken.has(j)) continue;
          let s = 0;
          for (let q = 0; q < 6; q++) s += (x[j * 6 + q]! - km.centroids[c * 6 + q]!) ** 2;
          if (s < bestD) [best, bestD] = [j, s];
        }
        assert.equal(pairs[c], best, `centroid ${c}`);
        taken.add(best);
      }
      // the space matters: other heads (the first snapshot) give other pairs
      assert.notDeepEqual(Array.from(kMeansSelect(denseJoint(first), n, 6, k, rng(9)).picked), Array.from(pairs));
    });

    it("initSynthetic('spm') starts from those pairs' real features; without an expert it is a ConfigError", () => {
      const before = tf.memory().numTensors;
      const { state, pairs } = initSynthetic(train, { size: 5, init: 'spm', similarity: { kind: 'none', rank: 1, alpha: 1 }, alphaInit: 0.1, expert: { trajectory, shape } }, rng(9));
      assert.deepEqual(Array.from(pairs), Array.from(spmPairs(train, 5, rng(9), trajectory, shape)));
      const xs = state.x!.dataSync();
      const ys = state.y!.dataSync();
      pairs.forEach((c, i) => {
        assert.deepEqual(Array.from(xs.subarray(i * 5, (i + 1) * 5)), Array.from(train.img.subarray((c >> 1) * 5, ((c >> 1) + 1) * 5)));
        assert.deepEqual(Array.from(ys.subarray(i * 4, (i + 1) * 4)), Array.from(train.txt.subarray(c * 4, (c + 1) * 4)));
      });
      for (const t of Object.values(state)) t.dispose();
      assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
      assert.throws(() => initSynthetic(train, { size: 5, init: 'spm', similarity: { kind: 'none', rank: 1, alpha: 1 }, alphaInit: 0.1 }, rng(9)), ConfigError);
      // the phase state gets the expert from the phase's teachers
      const config = DistillConfig.parse({ phases: [{ start: [0, 0], size: 5, iterations: 1 }], init: 'spm', similarity: 'none' });
      const ps = initPhaseState(train, 0, config.phases[0]!, config, { trajectories: [trajectory], shape });
      assert.deepEqual(Array.from(ps.initPairs), Array.from(spmPairs(train, 5, rng(deriveSeed(0, 'phase', 0)), trajectory, shape)));
      disposePhaseState(ps);
    });
  });
});
