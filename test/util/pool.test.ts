import { strict as assert } from 'node:assert';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ready } from '../../src/backend';
import { runPool } from '../../src/util/pool';

/**
 * runPool: every job runs once, each worker gets the shared value, and the cores are divided among the workers
 * (as WebAssembly threads per op; beside BLAS each op runs on one thread, src/backend/blas).
 */
describe('util/pool: runPool', function () {
  this.timeout(120_000);
  const probe = join(__dirname, 'pool-probe-worker.js');
  const run = async (workers: number) => {
    const seen: { job: number; shared: string; backend: string; threads: number; shortfall: string | null; failures: string[] }[] = [];
    await runPool(probe, [0, 1, 2], workers, (m: (typeof seen)[number]) => void seen.push(m), 'shared value');
    return seen.sort((a, b) => a.job - b.job);
  };

  for (const workers of [1, 2]) {
    it(`${workers} worker(s): each job once, with the shared value, on cores / workers WebAssembly threads`, async () => {
      const share = Math.min(8, Math.max(1, Math.floor(availableParallelism() / workers)));
      const forced = process.env.PTMST_WASM_THREADS;
      const info = await ready();
      const threads = info.name !== 'wasm' || info.blas !== null ? 1 : forced ? Number(forced) : share;
      // the worker runs the main thread's backend; where it does not, or on fewer threads, its failures and shortfall
      // carry the reason (a backend that did not initialise, the threaded build that did not come up), so a failure
      // here names it
      const want = { shared: 'shared value', backend: info.name, threads, shortfall: null, failures: [] };
      assert.deepEqual(await run(workers), [0, 1, 2].map((job) => ({ job, ...want })));
    });
  }
});
