import { strict as assert } from 'node:assert';
import { peerEnv } from '../../bench/processes';

describe('bench/processes', () => {
  it("pins the peer's thread pools to the requested count and lets idle OpenMP threads sleep unless the caller says otherwise", () => {
    const saved = process.env.OMP_WAIT_POLICY;
    try {
      delete process.env.OMP_WAIT_POLICY;
      const env = peerEnv(1);
      assert.deepEqual([env.OMP_NUM_THREADS, env.OPENBLAS_NUM_THREADS, env.MKL_NUM_THREADS, env.OMP_WAIT_POLICY], ['1', '1', '1', 'PASSIVE']);
      process.env.OMP_WAIT_POLICY = 'ACTIVE';
      assert.equal(peerEnv(2).OMP_WAIT_POLICY, 'ACTIVE');
      assert.equal(peerEnv(2).OMP_NUM_THREADS, '2');
    } finally {
      if (saved === undefined) delete process.env.OMP_WAIT_POLICY;
      else process.env.OMP_WAIT_POLICY = saved;
    }
  });
});
