/** A pool worker for test/util/pool.test.ts: reports its backend's threads per op (and why fewer, if so) and the shared value it received. */
import { ready } from '../../src/backend';
import { poolWorker } from '../../src/util/pool';

export default poolWorker(async (shared: string, job: number, post) => {
  const info = await ready();
  post({ job, shared, threads: info.threads, shortfall: info.threadsShortfall });
});
