/** Pool worker of the buffer stage: trains one expert per job (see buffer.ts). */
import type { SplitSets } from '../features/feature-set';
import { poolWorker } from '../util/pool';
import { type BufferStageConfig, type ExpertJob, type ExpertMessage, runExpertJob } from './buffer';

export default poolWorker<{ config: BufferStageConfig; dir: string; sets: SplitSets }, ExpertJob>(({ config, dir, sets }, job, post) =>
  runExpertJob(config, dir, job, post as (m: ExpertMessage) => void, sets),
);
