/** Worker thread of the buffer stage: trains its share of experts (see buffer.ts). */
import { workerMain } from '../util/workers';
import { type BufferStageConfig, type ExpertJob, runExpertJob } from './buffer';

workerMain<{ config: BufferStageConfig; dir: string; jobs: readonly ExpertJob[] }>(async ({ config, dir, jobs }, post) => {
  for (const job of jobs) await runExpertJob(config, dir, job, post);
});
