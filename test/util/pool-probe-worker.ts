/** A pool worker for test/util/pool.test.ts: reports its backend's threads per op and the shared value it received. */
import { ready } from '../../src/backend';
import { poolWorker } from '../../src/util/pool';

export default poolWorker(async (shared: string, job: number, post) => {
  post({ job, shared, threads: (await ready()).threads });
});
