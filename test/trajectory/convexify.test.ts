import { strict as assert } from 'node:assert';
import { paramCount } from '../../src/model/head';
import { convexifyFlat, tensorSegments } from '../../src/trajectory/convexify';
import { rng } from '../../src/util/random';

describe('trajectory/convexify', () => {
  // 3 snapshots; tensor A (2 values) moves 5 then √481, tensor B (1 value) never moves
  const P = 3;
  const flat = new Float32Array([0, 0, 5, 3, -4, 5, 12, 16, 5]);
  const segments: [number, number][] = [[0, 2], [2, 1]];

  it('interpolates each tensor at its own pace (hand-computed β), endpoints bit-exact', () => {
    const out = convexifyFlat(flat, P, segments, 0, 3);
    const beta = 5 / (5 + Math.sqrt(481));
    assert.deepEqual([...out.subarray(0, 3)], [0, 0, 5]);
    assert.ok(Math.abs(out[3]! - beta * 12) < 1e-5);
    assert.ok(Math.abs(out[4]! - beta * 16) < 1e-5);
    assert.equal(out[5], 5, 'a tensor that never moved stays put (β = 0)');
    assert.deepEqual([...out.subarray(6, 9)], [12, 16, 5]);
  });

  it('works on a sub-slice and copies its endpoints exactly', () => {
    const traj = new Float32Array([...flat, 1.1, 2.2, 3.3]); // 4 snapshots
    const out = convexifyFlat(traj, P, segments, 1, 4);
    assert.equal(out.length, 3 * P);
    assert.deepEqual([...out.subarray(0, 3)], [3, -4, 5]);
    assert.deepEqual([...out.subarray(6, 9)], [...new Float32Array([1.1, 2.2, 3.3])]);
    assert.throws(() => convexifyFlat(traj, P, segments, 2, 3), /at least 2/);
  });
});

describe('trajectory/convexify on head parameters', () => {
  it('segments tile the flattened tower exactly, in PARAM_NAMES order', () => {
    const segs = tensorSegments({ dIn: 5, dOut: 3 });
    assert.deepEqual(segs, [[0, 15], [15, 3], [18, 9], [27, 3], [30, 3], [33, 3]]);
    assert.equal(segs[5]![0] + segs[5]![1], paramCount({ dIn: 5, dOut: 3 }));
  });

  it('keeps the endpoints of a real-sized tower and puts each tensor on its straight line', () => {
    const shape = { dIn: 6, dOut: 4 };
    const P = paramCount(shape);
    const r = rng(5);
    const flat = Float32Array.from({ length: 4 * P }, () => r.next() - 0.5);
    const out = convexifyFlat(flat, P, tensorSegments(shape), 0, 4);
    const dist = (x: Float32Array, i: number, j: number, [off, len]: [number, number]) =>
      Math.hypot(...Array.from({ length: len }, (_, k) => x[j * P + off + k]! - x[i * P + off + k]!));
    for (const seg of tensorSegments(shape)) {
      assert.ok(Math.abs(dist(out, 0, 3, seg) - dist(flat, 0, 3, seg)) < 1e-5);
      // on the tensor's segment: d(0,t) + d(t,K) = d(0,K) for every t
      for (const t of [1, 2]) assert.ok(Math.abs(dist(out, 0, t, seg) + dist(out, t, 3, seg) - dist(out, 0, 3, seg)) < 1e-5);
    }
  });
});
