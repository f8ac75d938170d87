/** A pool worker for test/util/pool.test.ts: reports its backend, threads per op (with why fewer or why a faster backend failed) and the shared value it received. */
import { ready } from '../../src/backend';
import { poolWorker } from '../../src/util/pool';

export default poolWorker(async (shared: string, job: number, post) => {
  const info = await ready();
  post({ job, shared, backend: info.name, threads: info.threads, shortfall: info.threadsShortfall, failures: info.failures });
});
