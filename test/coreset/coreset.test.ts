import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CORESET_NAMES, coresetRule, selectCoreset } from '../../src/coreset';
import { jointFeatures, jointRows as jointRowsOf, matrixRows } from '../../src/coreset/joint';
import { herdingSelect } from '../../src/coreset/herding';
import { kCenterSelect } from '../../src/coreset/kcenter';
import { assignNearest, assignRows, kMeansCoresetOf, kMeansMiniBatch, kMeansPlusPlus, kMeansRows, kMeansSelect } from '../../src/coreset/kmeans';
import { ConfigError } from '../../src/errors';
import { EvalStageConfig, planRuns } from '../../src/evaluate';
import type { FeatureSet } from '../../src/features/feature-set';
import { ReproMethod } from '../../src/pipeline/repro';
import { coresetContext } from '../../src/coreset/context';
import { loadFeatureSets, prepareFeatureSets } from '../../src/features/load';
import { buildBuffer } from '../../src/trajectory/buffer';
import { normal, rng } from '../../src/util/random';
import { REPO, sharedCache, tempDir } from '../helpers';

/** A small feature set: `numImages` images, `numCaptions` captions, each caption on a random image. */
function tinySet(seed: number, numImages: number, numCaptions: number, dImg: number, dTxt: number): FeatureSet {
  const r = rng(seed);
  const img = Float32Array.from({ length: numImages * dImg }, () => normal(r));
  const txt = Float32Array.from({ length: numCaptions * dTxt }, () => normal(r));
  const captionToImage = Int32Array.from({ length: numCaptions }, (_, j) => (j < numImages ? j : Math.floor(r.next() * numImages)));
  const imageToCaptions = Array.from({ length: numImages }, (_, i) => [...captionToImage.keys()].filter((j) => captionToImage[j] === i));
  return { dataset: 'tiny', split: 'train', imageEncoder: 'a', textEncoder: 'b', digest: `tiny-${seed}`, numImages, numCaptions, dImg, dTxt, img, txt, captionToImage, imageToCaptions };
}

// ---- brute force, written with arrays of arrays -----------------------------------------------------------

const unit = (v: number[]): number[] => {
  const norm = Math.hypot(...v);
  return v.map((x) => (norm > 0 ? x / norm : 0));
};
const row = (a: Float32Array, i: number, d: number): number[] => Array.from(a.slice(i * d, (i + 1) * d));
/** pair j's [unit image row ; unit caption row] */
const jointRows = (s: FeatureSet): number[][] =>
  Array.from({ length: s.numCaptions }, (_, j) => [...unit(row(s.img, s.captionToImage[j]!, s.dImg)), ...unit(row(s.txt, j, s.dTxt))]);
const mean = (rows: number[][]): number[] => rows[0]!.map((_, k) => rows.reduce((a, r) => a + r[k]!, 0) / rows.length);
const dist = (a: number[], b: number[]): number => Math.sqrt(a.reduce((s, x, k) => s + (x - b[k]!) ** 2, 0));
/** the index of the smallest (or largest) score, the lower index on ties */
function argBest(scores: [number, number][], largest: boolean): number {
  let best = scores[0]!;
  for (const s of scores) if (largest ? s[1] > best[1] : s[1] < best[1]) best = s;
  return best[0];
}

function bruteHerding(rows: number[][], size: number): number[] {
  const mu = mean(rows);
  const chosen: number[] = [];
  while (chosen.length < size) {
    const candidates = rows.map((_, i) => i).filter((i) => !chosen.includes(i));
    chosen.push(argBest(candidates.map((i) => [i, dist(mean([...chosen, i].map((c) => rows[c]!)), mu)]), false));
  }
  return chosen;
}

function bruteKCenter(rows: number[][], size: number): number[] {
  const mu = mean(rows);
  const chosen = [argBest(rows.map((r, i) => [i, dist(r, mu)]), false)];
  while (chosen.length < size) {
    const candidates = rows.map((_, i) => i).filter((i) => !chosen.includes(i));
    chosen.push(argBest(candidates.map((i) => [i, Math.min(...chosen.map((c) => dist(rows[i]!, rows[c]!)))]), true));
  }
  return chosen;
}

/** Plain Lloyd from given centres (assign to the nearest, lower index on ties; empty clusters keep their centre). */
function bruteLloyd(rows: number[][], centres: number[][], maxIterations: number): { centres: number[][]; assignment: number[] } {
  const assign = (cs: number[][]) => rows.map((r) => argBest(cs.map((c, j) => [j, dist(r, c)]), false));
  let assignment = assign(centres);
  for (let it = 0; it < maxIterations; it++) {
    centres = centres.map((c, j) => {
      const members = rows.filter((_, i) => assignment[i] === j);
      return members.length > 0 ? mean(members) : c;
    });
    const next = assign(centres);
    const same = next.every((a, i) => a === assignment[i]);
    assignment = next;
    if (same) break;
  }
  return { centres, assignment };
}

describe('coreset rules', () => {
  const cases = [
    [1, 8, 12, 2, 1],
    [2, 6, 12, 1, 3],
    [3, 12, 12, 5, 2],
    [4, 9, 13, 4, 6],
    [5, 10, 12, 3, 12],
  ] as const;

  it('herding matches a brute-force herding (running mean nearest the data mean at every step)', () => {
    for (const [seed, m, n, dImg, size] of cases) {
      const s = tinySet(seed, m, n, dImg, 2);
      const got = Array.from(selectCoreset('herding', { train: s }, size, rng(0)));
      assert.deepEqual(got, bruteHerding(jointRows(s), size), `seed ${seed}, size ${size}`);
    }
  });

  it('k-center matches a brute-force farthest-point traversal from the pair nearest the mean', () => {
    for (const [seed, m, n, dImg, size] of cases) {
      const s = tinySet(seed + 10, m, n, dImg, 2);
      const got = Array.from(selectCoreset('kcenter', { train: s }, size, rng(0)));
      assert.deepEqual(got, bruteKCenter(jointRows(s), size), `seed ${seed}, size ${size}`);
    }
  });

  it('herding and k-center take the lower index on ties', () => {
    // four identical pairs: every choice ties
    const s: FeatureSet = { ...tinySet(0, 1, 4, 2, 2), txt: new Float32Array(8).fill(1) };
    assert.deepEqual(Array.from(selectCoreset('herding', { train: s }, 3, rng(0))), [0, 1, 2]);
    assert.deepEqual(Array.from(selectCoreset('kcenter', { train: s }, 3, rng(0))), [0, 1, 2]);
  });

  it('joint features: each half L2-normalised', () => {
    const s = tinySet(7, 3, 5, 4, 3);
    const f = jointFeatures(s);
    const rows = jointRows(s);
    for (let j = 0; j < 5; j++) rows[j]!.forEach((v, k) => assert.ok(Math.abs(f.x[j * 7 + k]! - v) < 1e-6));
  });

  it('k-means: the same seed gives the same coreset, other seeds can give another', () => {
    const s = tinySet(21, 30, 60, 3, 3);
    const pick = (seed: number) => Array.from(selectCoreset('kmeans', { train: s }, 6, rng(seed)));
    assert.deepEqual(pick(4), pick(4));
    const distinct = new Set([0, 1, 2, 3, 4, 5, 6, 7].map((seed) => pick(seed).join(',')));
    assert.ok(distinct.size > 1, 'every seed gave the same coreset');
  });

  it('k-means equals plain Lloyd from the same k-means++ seeds; each kept pair is the nearest free one to its centroid', () => {
    // few pairs per cluster too, where a centroid's nearest free pair is often in another cluster
    const cases = [[0, 4], [1, 5], [2, 6], [3, 7], ...Array.from({ length: 16 }, (_, i) => [4 + i, [20, 30, 40, 45][i % 4]!] as const)];
    for (const [seed, k] of cases) {
      const s = tinySet(30 + seed, 25, 50, 3, 3);
      const f = jointFeatures(s);
      const rows = jointRows(s);
      const seeds = kMeansPlusPlus(f.x, f.n, f.d, k, rng(seed));
      const r = kMeansSelect(f.x, f.n, f.d, k, rng(seed));
      const lloyd = bruteLloyd(rows, Array.from({ length: k }, (_, j) => Array.from(seeds.centres.slice(j * f.d, (j + 1) * f.d))), 50);
      assert.deepEqual(Array.from(r.assignment), lloyd.assignment, `seed ${seed}`);
      // the seeds are k-means++'s draws (squared distance to the nearest seed so far, measured in full here)
      const draw = rng(seed);
      const chosen = [Math.floor(draw.next() * rows.length)];
      while (chosen.length < k) {
        const w = rows.map((x) => Math.min(...chosen.map((c) => dist(x, rows[c]!) ** 2)));
        const target = draw.next() * w.reduce((a, b) => a + b, 0);
        let acc = 0;
        chosen.push(w.findIndex((v) => v > 0 && (acc += v) > target));
      }
      chosen.forEach((c, j) => rows[c]!.forEach((v, q) => assert.ok(Math.abs(seeds.centres[j * f.d + q]! - v) < 1e-6, `seed ${j}`)));
      rows.forEach((x, i) => {
        const d2 = chosen.map((c) => dist(x, rows[c]!));
        const owner = argBest(d2.map((v, j) => [j, v]), false);
        assert.equal(seeds.owner[i], owner);
        assert.ok(seeds.second[i]! <= Math.min(...d2.filter((_, j) => j !== owner)) + 1e-6, 'second is a lower bound');
      });
      lloyd.centres.forEach((c, j) => c.forEach((v, q) => assert.ok(Math.abs(r.centroids[j * f.d + q]! - v) < 1e-6, `centroid ${j}`)));
      const taken: number[] = [];
      lloyd.centres.forEach((c, j) => {
        const free = rows.map((_, i) => i).filter((i) => !taken.includes(i));
        const nearest = argBest(free.map((i) => [i, dist(rows[i]!, c)]), false);
        const got = r.picked[j]!;
        // a centroid halfway between two pairs ties in exact arithmetic; rounding decides which, so ties are allowed
        assert.ok(free.includes(got) && dist(rows[got]!, c) <= dist(rows[nearest]!, c) + 1e-6, `seed ${seed}, centroid ${j}: ${got}, not ${nearest}`);
        taken.push(got);
      });
      assert.equal(new Set(r.picked).size, k);
    }
  });

  it('the GEMM assignment is the float64 one, even where float32 cannot tell centroids apart', () => {
    // 1,000 rows of width 700 (norms ~26); centroids a random centre plus offsets of 1e-4…1e-6 per coordinate
    // (distance gaps at and below the float32 GEMM's rounding, ~1e-3 here), some exactly repeated: the nearest,
    // ties → lower index, must match float64 brute force
    const r = rng(77);
    const n = 1000;
    const d = 700;
    const k = 24;
    const x = Float32Array.from({ length: n * d }, () => normal(r));
    const base = Array.from({ length: d }, () => normal(r));
    const c = new Float64Array(k * d);
    for (let j = 0; j < k; j++) {
      const scale = [1e-4, 3e-5, 1e-5, 3e-6, 1e-6, 0][j % 6]!;
      for (let q = 0; q < d; q++) c[j * d + q] = base[q]! + (j % 6 === 5 ? 0 : scale * normal(r));
    }
    const got = assignNearest(x, n, d, c, k);
    for (let i = 0; i < n; i++) {
      const d2 = Array.from({ length: k }, (_, j) => {
        let s2 = 0;
        for (let q = 0; q < d; q++) s2 += (x[i * d + q]! - c[j * d + q]!) ** 2;
        return s2;
      });
      const owner = argBest(d2.map((v, j) => [j, v]), false);
      assert.equal(got.owner[i], owner, `row ${i}`);
      assert.ok(Math.abs(got.near[i]! - Math.sqrt(d2[owner]!)) < 1e-9);
      assert.ok(got.second[i]! <= Math.sqrt(Math.min(...d2.filter((_, j) => j !== owner))) + 1e-9, 'second is a lower bound');
    }
  });

  it("k-means keeps the nearest pair even when it belongs to another centroid's cluster", () => {
    // a fixed point of Lloyd: centroid (0,0) holds (±4.9, 0) and (0, ±4.9), centroid (10,0) holds (10, ±6); yet
    // (4.9, 0) is nearer (10,0) (5.1) than that centroid's own members (6)
    const x = Float32Array.of(-4.9, 0, 0, 4.9, 0, -4.9, 4.9, 0, 10, 6, 10, -6);
    let reached = 0;
    for (let seed = 0; seed < 20; seed++) {
      const r = kMeansSelect(x, 6, 2, 2, rng(seed));
      const far = r.centroids[0]! > 5 ? 0 : 1;
      if (Math.abs(r.centroids[far * 2]! - 10) > 1e-9 || Math.abs(r.centroids[far * 2 + 1]!) > 1e-9) continue;
      reached++;
      assert.equal(r.picked[far], 3, `seed ${seed}`);
    }
    assert.ok(reached > 0, 'no seed reached the fixed point');
  });

  it('k-means keeps distinct pairs when pairs repeat (empty clusters, shared nearest pairs)', () => {
    // 4 distinct pairs, each three times: seeds coincide, clusters go empty, centroids share their nearest pairs
    const base = tinySet(8, 4, 4, 3, 3);
    const n = 12;
    const s: FeatureSet = {
      ...base,
      numCaptions: n,
      txt: Float32Array.from({ length: n * 3 }, (_, i) => base.txt[(Math.floor(i / 3) % 4) * 3 + (i % 3)]!),
      captionToImage: Int32Array.from({ length: n }, (_, j) => j % 4),
    };
    for (let seed = 0; seed < 6; seed++) {
      for (const size of [5, 8, 11, 12]) {
        const got = selectCoreset('kmeans', { train: s }, size, rng(seed));
        assert.equal(new Set(got).size, size);
      }
    }
  });

  it('k-means on three obvious clusters keeps one pair from each', () => {
    // images and captions point along one axis per cluster (the joint features are unit halves), slightly jittered
    const r = rng(5);
    const n = 30;
    const cluster = (j: number) => j % 3;
    const img = new Float32Array(n * 3);
    const txt = new Float32Array(n * 4);
    for (let j = 0; j < n; j++) {
      for (let q = 0; q < 3; q++) img[j * 3 + q] = (q === cluster(j) ? 1 : 0) + 0.02 * normal(r);
      for (let q = 0; q < 4; q++) txt[j * 4 + q] = (q === cluster(j) ? 1 : 0) + 0.02 * normal(r);
    }
    const s: FeatureSet = { ...tinySet(0, n, n, 3, 4), img, txt, captionToImage: Int32Array.from({ length: n }, (_, j) => j) };
    for (let seed = 0; seed < 10; seed++) {
      const got = Array.from(selectCoreset('kmeans', { train: s }, 3, rng(seed)));
      assert.deepEqual(got.map(cluster).sort(), [0, 1, 2], `seed ${seed}: ${got}`);
    }
  });

  it('selectCoreset: a size beyond the pairs and an unknown rule are config errors', () => {
    const s = tinySet(1, 4, 12, 2, 2);
    for (const name of ['herding', 'kcenter', 'kmeans']) {
      assert.throws(() => selectCoreset(name, { train: s }, 13, rng(0)), (e: unknown) => e instanceof ConfigError && /size 13 is not in 1\.\.12/.test(String(e)));
      assert.throws(() => selectCoreset(name, { train: s }, 0, rng(0)), ConfigError);
      assert.equal(selectCoreset(name, { train: s }, 12, rng(0)).length, 12);
    }
    assert.throws(() => selectCoreset('herdin', { train: s }, 2, rng(0)), (e: unknown) => e instanceof ConfigError && /unknown \(known: .*herding/.test(String(e)));
    for (const name of ['herding', 'kcenter', 'kmeans']) assert.ok(CORESET_NAMES.includes(name) && coresetRule(name).needs.length === 0);
  });
});

describe('coreset rules at scale: rows on demand, blockwise paths', () => {
  it('jointRows makes the rows jointFeatures stores (fill bitwise; dot products, norms and mean in float64)', () => {
    const s = tinySet(41, 4, 9, 3, 2); // 9 captions on 4 images: image dot products shared
    const f = jointFeatures(s);
    const v = jointRowsOf(s);
    const out = new Float32Array(4 * 5);
    v.fill(3, 4, out);
    assert.deepEqual(Array.from(out), Array.from(f.x.subarray(3 * 5, 7 * 5)));
    const rows = jointRows(s);
    const w = Float64Array.of(0.3, -1, 2, 0.5, -0.25);
    const dots = new Float64Array(9);
    v.dotAll(w, dots);
    const some = new Float64Array(2);
    v.dotRows(w, Int32Array.of(8, 2), 2, some);
    rows.forEach((r, j) => assert.ok(Math.abs(dots[j]! - r.reduce((a, x, q) => a + x * w[q]!, 0)) < 1e-12));
    assert.ok(Math.abs(some[0]! - dots[8]!) < 1e-15 && Math.abs(some[1]! - dots[2]!) < 1e-15);
    v.sqNorms().forEach((q, j) => assert.ok(Math.abs(q - rows[j]!.reduce((a, x) => a + x * x, 0)) < 1e-12));
    const mu = mean(rows);
    v.mean().forEach((m, q) => assert.ok(Math.abs(m - mu[q]!) < 1e-12));
    rows[5]!.forEach((x, q) => assert.ok(Math.abs(v.row(5)[q]! - x) < 1e-12));
  });

  it('k-center and herding match brute force on clustered pairs (where the triangle-inequality skip is taken)', () => {
    const r = rng(12);
    const n = 40;
    const img = new Float32Array(n * 4);
    const txt = new Float32Array(n * 3);
    for (let j = 0; j < n; j++) {
      for (let q = 0; q < 4; q++) img[j * 4 + q] = (q === j % 4 ? 1 : 0) + 0.05 * normal(r);
      for (let q = 0; q < 3; q++) txt[j * 3 + q] = (q === j % 3 ? 1 : 0) + 0.05 * normal(r);
    }
    const s: FeatureSet = { ...tinySet(0, n, n, 4, 3), img, txt, captionToImage: Int32Array.from({ length: n }, (_, j) => j) };
    const rows = jointRows(s);
    for (const size of [3, 12, 25]) {
      assert.deepEqual(Array.from(selectCoreset('kcenter', { train: s }, size, rng(0))), bruteKCenter(rows, size), `k-center ${size}`);
      assert.deepEqual(Array.from(selectCoreset('herding', { train: s }, size, rng(0))), bruteHerding(rows, size), `herding ${size}`);
    }
    // the dense-matrix entry points give the same pairs
    const f = jointFeatures(s);
    assert.deepEqual(Array.from(kCenterSelect(f.x, f.n, f.d, 12)), bruteKCenter(rows, 12));
    assert.deepEqual(Array.from(herdingSelect(f.x, f.n, f.d, 12)), bruteHerding(rows, 12));
  });

  it('the blockwise assignment and Lloyd give the same result with blocks of 1, 3 and 7 rows as with one block', () => {
    const s = tinySet(52, 30, 50, 3, 3);
    const f = jointFeatures(s);
    const want = kMeansSelect(f.x, f.n, f.d, 7, rng(3));
    const seeds = kMeansPlusPlus(f.x, f.n, f.d, 7, rng(3)).centres;
    const whole = assignNearest(f.x, f.n, f.d, seeds, 7);
    for (const block of [1, 3, 7]) {
      const got = kMeansSelect(f.x, f.n, f.d, 7, rng(3), block);
      assert.deepEqual(Array.from(got.picked), Array.from(want.picked), `block ${block}`);
      assert.deepEqual(Array.from(got.assignment), Array.from(want.assignment), `block ${block}`);
      const a = assignNearest(f.x, f.n, f.d, seeds, 7, block);
      assert.deepEqual(Array.from(a.owner), Array.from(whole.owner));
      assert.deepEqual(Array.from(a.near), Array.from(whole.near));
    }
  });

  it('assignRows keeps each centroid\'s nearest rows by the float32 product', () => {
    const s = tinySet(53, 20, 30, 3, 2);
    const f = jointFeatures(s);
    const c = kMeansPlusPlus(f.x, f.n, f.d, 4, rng(1)).centres;
    const { candidates } = assignRows(matrixRows(f.x, f.n, f.d), c, 4, 4, 5);
    const rows = jointRows(s);
    for (let j = 0; j < 4; j++) {
      const cj = Array.from(c.slice(j * 5, (j + 1) * 5));
      const exact = rows.map((x) => dist(x, cj) ** 2);
      const kept = Array.from(candidates!.rows.slice(j * 5, (j + 1) * 5)).sort((a, b) => a - b);
      const want = exact.map((e, i) => [i, e] as const).sort((a, b) => a[1] - b[1]).slice(0, 5).map(([i]) => i).sort((a, b) => a - b);
      assert.deepEqual(kept, want, `centroid ${j}`);
      kept.forEach((i, q) => assert.ok(Math.abs(candidates!.approx[j * 5 + Array.from(candidates!.rows.slice(j * 5, (j + 1) * 5)).indexOf(i)]! - exact[i]!) <= candidates!.err, `row ${q}`));
    }
  });

  it('mini-batch k-means: seeded, distinct, each kept pair the nearest free one to its centroid (blocks of 3 rows)', () => {
    for (const [seed, k] of [[0, 3], [1, 8], [2, 20], [3, 40]] as const) {
      const s = tinySet(60 + seed, 25, 50, 3, 3);
      const rows = jointRows(s);
      const r = kMeansMiniBatch(jointRowsOf(s), k, rng(seed), { batchRows: 16, steps: 10, blockRows: 3 });
      const again = kMeansMiniBatch(jointRowsOf(s), k, rng(seed), { batchRows: 16, steps: 10, blockRows: 3 });
      assert.deepEqual(Array.from(again.picked), Array.from(r.picked));
      const taken: number[] = [];
      for (let j = 0; j < k; j++) {
        const cj = Array.from(r.centroids.slice(j * 6, (j + 1) * 6));
        const free = rows.map((_, i) => i).filter((i) => !taken.includes(i));
        const nearest = argBest(free.map((i) => [i, dist(rows[i]!, cj)]), false);
        const got = r.picked[j]!;
        assert.ok(free.includes(got) && dist(rows[got]!, cj) <= dist(rows[nearest]!, cj) + 1e-6, `seed ${seed}, centroid ${j}: ${got}, not ${nearest}`);
        taken.push(got);
      }
      assert.equal(new Set(r.picked).size, k);
      rows.forEach((x, i) => assert.equal(r.assignment[i], argBest(Array.from({ length: k }, (_, j) => [j, dist(x, Array.from(r.centroids.slice(j * 6, (j + 1) * 6)))] as [number, number]), false)));
    }
  });

  it('exact k-means on joint rows made on demand is bit for bit the dense copy\'s (seeds, Lloyd, centroids, choice)', () => {
    let moved = 0;
    for (const [seed, k] of [[0, 3], [1, 7], [2, 12], [3, 20]] as const) {
      // two captions per image, so the image half of a row is shared and made more than once
      const s = tinySet(90 + seed, 20, 40, 5, 4);
      const f = jointFeatures(s);
      const dense = kMeansSelect(f.x, f.n, f.d, k, rng(seed), 7);
      const rows = kMeansRows(jointRowsOf(s), k, rng(seed), 7);
      assert.deepEqual(Array.from(rows.picked), Array.from(dense.picked), `seed ${seed}: picked`);
      assert.deepEqual(Array.from(rows.assignment), Array.from(dense.assignment), `seed ${seed}: assignment`);
      assert.deepEqual(Array.from(rows.centroids), Array.from(dense.centroids), `seed ${seed}: centroids`);
      assert.equal(rows.iterations, dense.iterations);
      moved = Math.max(moved, dense.iterations);
    }
    assert.ok(moved > 2, 'Lloyd moved in some case');
  });

  it('the k-means rule is exact Lloyd up to the switch and mini-batch above it; both find three obvious clusters', () => {
    const s = tinySet(70, 30, 60, 3, 3);
    const f = jointFeatures(s);
    assert.deepEqual(Array.from(kMeansCoresetOf(s, 6, rng(2))), Array.from(kMeansSelect(f.x, f.n, f.d, 6, rng(2)).picked));
    assert.deepEqual(Array.from(kMeansCoresetOf(s, 6, rng(2), 60)), Array.from(kMeansSelect(f.x, f.n, f.d, 6, rng(2)).picked));
    const mb = kMeansCoresetOf(s, 6, rng(2), 59, { batchRows: 8, steps: 5, blockRows: 4 });
    assert.deepEqual(Array.from(mb), Array.from(kMeansMiniBatch(jointRowsOf(s), 6, rng(2), { batchRows: 8, steps: 5, blockRows: 4 }).picked));
    const r = rng(5);
    const n = 30;
    const cluster = (j: number) => j % 3;
    const img = new Float32Array(n * 3);
    const txt = new Float32Array(n * 4);
    for (let j = 0; j < n; j++) {
      for (let q = 0; q < 3; q++) img[j * 3 + q] = (q === cluster(j) ? 1 : 0) + 0.02 * normal(r);
      for (let q = 0; q < 4; q++) txt[j * 4 + q] = (q === cluster(j) ? 1 : 0) + 0.02 * normal(r);
    }
    const three: FeatureSet = { ...tinySet(0, n, n, 3, 4), img, txt, captionToImage: Int32Array.from({ length: n }, (_, j) => j) };
    let found = 0;
    for (let seed = 0; seed < 10; seed++) {
      const got = Array.from(kMeansCoresetOf(three, 3, rng(seed), 0, { batchRows: 8, steps: 20, blockRows: 5 }));
      if (got.map(cluster).sort().join() === '0,1,2') found++;
    }
    // k-means++ seeds on well-separated clusters almost always land one per cluster; mini-batch keeps them there
    assert.ok(found >= 9, `one pair per cluster in ${found} of 10 seeds`);
  });
});

describe('coreset rules in evaluation and repro', () => {
  it('eval: the selection names a rule, each run drawn with its own seed', async () => {
    const s = tinySet(3, 10, 20, 3, 2);
    const sets = { train: s, val: s, test: s };
    const plan = async (selection: string) =>
      planRuns(EvalStageConfig.parse({ method: { kind: 'coreset', selection, size: 4 }, eval: { seed: 9 } }), sets);
    const herding = await plan('herding');
    const want = selectCoreset('herding', { train: s }, 4, rng(0));
    const x = herding.subsetsFor(1)[0]!.x;
    want.forEach((j, i) => assert.deepEqual(Array.from(x.subarray(i * 3, i * 3 + 3)), Array.from(s.img.subarray(s.captionToImage[j]! * 3, s.captionToImage[j]! * 3 + 3))));
    assert.equal(herding.pairs, 4);
    const random = await plan('random');
    assert.notDeepEqual(random.subsetsFor(0)[0]!.y, random.subsetsFor(1)[0]!.y);
    assert.throws(() => EvalStageConfig.parse({ method: { kind: 'coreset', selection: 'herdin', size: 4 } }));
  });

  it('`randomised` tells the truth: rules declared without randomness give the same pairs for any seed (and eval selects them once)', async () => {
    const s = tinySet(4, 12, 24, 3, 2);
    for (const name of ['herding', 'kcenter', 'random', 'kmeans']) {
      const draws = [1, 2, 3, 4, 5].map((seed) => Array.from(selectCoreset(name, { train: s }, 5, rng(seed))).join());
      assert.equal(new Set(draws).size === 1, !coresetRule(name).randomised, name);
    }
    const sets = { train: s, val: s, test: s };
    const plan = await planRuns(EvalStageConfig.parse({ method: { kind: 'coreset', selection: 'herding', size: 4 } }), sets);
    assert.equal(plan.subsetsFor(0)[0], plan.subsetsFor(3)[0], 'the same subset object: selected once');
  });

  it('repro: a coreset method without `selection` parses without one (its cache key is unchanged)', () => {
    assert.deepEqual(ReproMethod.parse({ name: 'c', kind: 'coreset', size: 5 }), { name: 'c', kind: 'coreset', size: 5 });
    assert.equal((ReproMethod.parse({ name: 'c', kind: 'coreset', size: 5, selection: 'kmeans' }) as { selection?: string }).selection, 'kmeans');
    assert.throws(() => ReproMethod.parse({ name: 'c', kind: 'coreset', size: 5, selection: 'indices' }));
  });
});

describe('ptmst coreset on the generated shapes set', function () {
  this.timeout(600000);
  const cli = (cwd: string, ...args: string[]) => {
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), ...args, '--no-progress'], {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, PTMST_DATA_ROOT: '' },
    });
    return { code: r.status, err: r.stderr };
  };

  it('writes a JSON array of caption indices that eval --indices accepts', () => {
    const cwd = tempDir('ptmst-coreset-');
    writeFileSync(join(cwd, 'quick.json'), JSON.stringify({ data: { dataset: 'shapes', cacheDir: sharedCache() }, model: { dOut: 16 }, eval: { runs: 1, epochs: 2, evalEvery: 1, decayEpoch: 1 } }));
    assert.equal(cli(cwd, 'features', '--dataset', 'shapes', '--cache-dir', sharedCache()).code, 0);
    const made = cli(cwd, 'coreset', '--config', 'quick.json', '--method', 'kcenter', '--size', '8', '--out', 'idx.json');
    assert.equal(made.code, 0, made.err);
    assert.match(made.err, /kcenter: k-center greedy/);
    const idx = JSON.parse(readFileSync(join(cwd, 'idx.json'), 'utf8')) as number[];
    assert.equal(idx.length, 8);
    assert.equal(new Set(idx).size, 8);
    const r = cli(cwd, 'eval', '--config', 'quick.json', '--indices', 'idx.json', '--json', 'summary.json');
    assert.equal(r.code, 0, r.err);
    assert.equal((JSON.parse(readFileSync(join(cwd, 'summary.json'), 'utf8')) as { pairs: number }).pairs, 8);
    const bad = cli(cwd, 'coreset', '--config', 'quick.json', '--method', 'nope', '--size', '8', '--out', 'x.json');
    assert.equal(bad.code, 2, bad.err);
  });

  it('loss-hard reads its teacher from the expert buffer given to eval; without one it is an error naming the need', async () => {
    const cwd = tempDir('ptmst-coreset-teacher-');
    const data = { dataset: 'shapes', cacheDir: sharedCache() };
    await prepareFeatureSets(data, ['train', 'val', 'test']);
    const experts = await buildBuffer({ data, model: { dOut: 16 }, buffer: { numExperts: 1, epochs: 1, workers: 1 }, workspace: cwd });
    const [train, val, test] = await loadFeatureSets(data, ['train', 'val', 'test']);
    const sets = { train: train!, val: val!, test: test! };
    const method = { kind: 'coreset', selection: 'loss-hard', size: 8 };
    const plan = await planRuns(EvalStageConfig.parse({ data, model: { dOut: 16 }, method: { ...method, buffer: experts.dir }, workspace: cwd }), sets);
    const ctx = await coresetContext(coresetRule('loss-hard'), train!, { buffer: experts.dir, temperature: 0.07 });
    const want = selectCoreset('loss-hard', ctx, 8, rng(0));
    const x = plan.subsetsFor(0)[0]!.x;
    const d = train!.dImg;
    want.forEach((j, i) => assert.deepEqual(Array.from(x.subarray(i * d, (i + 1) * d)), Array.from(train!.img.subarray(train!.captionToImage[j]! * d, (train!.captionToImage[j]! + 1) * d))));
    await assert.rejects(planRuns(EvalStageConfig.parse({ data, model: { dOut: 16 }, method, workspace: cwd }), sets), /loss-hard needs an expert buffer/);
  });
});
