/** Pool worker of the buffer stage: trains one expert per job (see buffer.ts). */
import { poolWorker } from '../util/pool';
import { type BufferStageConfig, type ExpertJob, type ExpertMessage, type ExpertSets, runExpertJob } from './buffer';

export default poolWorker<{ config: BufferStageConfig; dir: string; sets: ExpertSets }, ExpertJob, void>(({ config, dir, sets }, job, post) =>
  runExpertJob(config, dir, job, post as (m: ExpertMessage) => void, sets),
);
