import { strict as assert } from 'node:assert';
import { arrangeSubsets } from '../../src/evaluate';
import type { TrainingSubset } from '../../src/evaluate/student';

describe('evaluation: how a multi-phase set trains its students (eval.subsets)', () => {
  // two phases: 2 pairs with a learned S and rates .1/.2, then 1 pair without S at .4/.8 (dImg 1, dTxt 2)
  const a: TrainingSubset = { n: 2, x: Float32Array.of(1, 2), y: Float32Array.of(1, 1, 2, 2), s: Float32Array.of(1, 0.5, 0.25, 1), lrImg: 0.1, lrTxt: 0.2, loss: 'infonce' };
  const b: TrainingSubset = { n: 1, x: Float32Array.of(3), y: Float32Array.of(3, 3), lrImg: 0.4, lrTxt: 0.8, loss: 'infonce' };

  it('sequence keeps the phases in order; first and last keep one', () => {
    assert.deepEqual(arrangeSubsets([a, b], 'sequence'), [a, b]);
    assert.deepEqual(arrangeSubsets([a, b], 'first'), [a]);
    assert.deepEqual(arrangeSubsets([a, b], 'last'), [b]);
    assert.deepEqual(arrangeSubsets([a], 'union'), [a]);
  });

  it('union: the pairs concatenated, S block-diagonal (identity where a phase has none), size-weighted rates', () => {
    const [u] = arrangeSubsets([a, b], 'union');
    assert.equal(u!.n, 3);
    assert.deepEqual(Array.from(u!.x), [1, 2, 3]);
    assert.deepEqual(Array.from(u!.y), [1, 1, 2, 2, 3, 3]);
    assert.deepEqual(Array.from(u!.s!), [1, 0.5, 0, 0.25, 1, 0, 0, 0, 1]);
    assert.ok(Math.abs(u!.lrImg - (2 * 0.1 + 0.4) / 3) < 1e-12);
    assert.ok(Math.abs(u!.lrTxt - (2 * 0.2 + 0.8) / 3) < 1e-12);
  });
});
