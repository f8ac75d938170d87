/** Worker thread of the buffer stage: trains its share of experts (see buffer.ts). */
import { workerMain } from '../util/workers';
import { type BufferStageConfig, type ExpertJob, type ExpertSets, runExpertJob } from './buffer';

workerMain<{ config: BufferStageConfig; dir: string; sets: ExpertSets; jobs: readonly ExpertJob[] }>(async ({ config, dir, sets, jobs }, post) => {
  for (const job of jobs) await runExpertJob(config, dir, job, post, sets);
});
