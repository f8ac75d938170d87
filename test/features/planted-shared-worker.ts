/** A pool worker for test/features/planted.test.ts: writes job + 0.5 into row `job` of the shared image matrix it got. */
import type { FeatureSet } from '../../src/features/feature-set';
import { poolWorker } from '../../src/util/pool';

export default poolWorker(async (shared: FeatureSet, job: number, post) => {
  shared.img[job * shared.dImg] = job + 0.5;
  post({ job, sharedBuffer: shared.img.buffer instanceof SharedArrayBuffer });
});
