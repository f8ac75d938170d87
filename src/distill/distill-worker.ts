/** Worker thread of the distillation stage: distils its share of phases (see index.ts). */
import type { FeatureSet } from '../features/feature-set';
import { workerMain } from '../util/workers';
import { type DistillStageConfig, type PhaseJob, runPhaseJob } from './index';

workerMain<{ config: DistillStageConfig; dir: string; train: FeatureSet; jobs: readonly PhaseJob[] }>(async ({ config, dir, train, jobs }, post) => {
  for (const job of jobs) await runPhaseJob(config, dir, job, post, train);
});
