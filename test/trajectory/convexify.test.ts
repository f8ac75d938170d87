import { strict as assert } from 'node:assert';
import { convexifyFlat } from '../../src/trajectory/convexify';

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
