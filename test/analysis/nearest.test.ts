import { strict as assert } from 'node:assert';
import { nearestRows, syntheticNeighbours } from '../../src/analysis/nearest';
import type { FeatureSet } from '../../src/features/feature-set';
import type { ImageCaptionSplit } from '../../src/data/dataset';
import { normal, rng } from '../../src/util/random';

/** Brute force in float64, written differently: all cosines, then a stable sort by (−cosine, index). */
function bruteForce(q: Float32Array, bank: Float32Array, dim: number, k: number) {
  const rows = bank.length / dim;
  const cos = (a: ArrayLike<number>, b: ArrayLike<number>) => {
    const dot = Array.from(a).reduce((s, x, i) => s + x * b[i]!, 0);
    const na = Math.hypot(...Array.from(a));
    const nb = Math.hypot(...Array.from(b));
    return dot / (na * nb);
  };
  return Array.from({ length: q.length / dim }, (_, i) =>
    Array.from({ length: rows }, (_, j) => [j, cos(q.subarray(i * dim, (i + 1) * dim), bank.subarray(j * dim, (j + 1) * dim))] as const)
      .sort((a, b) => b[1] - a[1] || a[0] - b[0])
      .slice(0, k),
  );
}

describe('nearest real neighbours of synthetic pairs', () => {
  it('matches brute force on random data (indices and cosines)', () => {
    const r = rng(7);
    const dim = 13;
    const bank = Float32Array.from({ length: 50 * dim }, () => normal(r));
    const q = Float32Array.from({ length: 4 * dim }, () => normal(r));
    const got = nearestRows(q, bank, dim, 5);
    const want = bruteForce(q, bank, dim, 5);
    got.forEach((row, i) => {
      assert.deepEqual(row.map((n) => n.index), want[i]!.map(([j]) => j));
      row.forEach((n, t) => assert.ok(Math.abs(n.cosine - want[i]![t]![1]) < 1e-12));
    });
  });

  it('a scaled copy of a bank row is its own nearest neighbour at cosine 1; ties go to the lower index', () => {
    const bank = Float32Array.of(1, 0, 0, 1, 1, 1, 0, 1); // rows: e1, e2, e1+e2, e2 (a duplicate)
    const [[first]] = nearestRows(Float32Array.of(3, 3), bank, 2, 1);
    assert.equal(first!.index, 2);
    assert.ok(Math.abs(first!.cosine - 1) < 1e-12);
    assert.deepEqual(nearestRows(Float32Array.of(0, 5), bank, 2, 2)[0]!.map((n) => n.index), [1, 3]);
    assert.throws(() => nearestRows(Float32Array.of(1, 2, 3), bank, 2, 1), /not multiples of dim 2/);
  });

  it('maps synthetic pairs to photo files and captions of the split', () => {
    const features = { numImages: 2, numCaptions: 3, dImg: 2, dTxt: 2, img: Float32Array.of(1, 0, 0, 1), txt: Float32Array.of(1, 0, 0, 1, 1, 1) } as FeatureSet;
    const split = { dataset: 'd', split: 'train', imageDir: '/imgs', images: ['a.jpg', 'b.jpg'], captions: ['x', 'y', 'z'], rawCaptions: ['X', 'Y', 'Z'] } as unknown as ImageCaptionSplit;
    const set = { dImg: 2, dTxt: 2, provenance: {}, phases: [{ n: 1, x: Float32Array.of(0, 2), y: Float32Array.of(2, 1.9), s: Float32Array.of(1), lrImg: 0.1, lrTxt: 0.1 }] };
    const [n] = syntheticNeighbours(set, features, split, [{ phase: 0, row: 0 }], 1);
    assert.equal(n!.images[0]!.file, '/imgs/b.jpg');
    assert.equal(n!.captions[0]!.text, 'Z');
    assert.throws(() => syntheticNeighbours(set, features, split, [{ phase: 1, row: 0 }]), /no synthetic pair 0 in phase 1/);
  });
});
