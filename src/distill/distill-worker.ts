/** Pool worker of the distillation stage: distils one phase per job (see index.ts). */
import type { FeatureSet } from '../features/feature-set';
import { poolWorker } from '../util/pool';
import { type PhasedStageConfig, type PhaseJob, type PhaseMessage, runPhaseJob } from './index';

export default poolWorker<{ config: PhasedStageConfig; dir: string; train: FeatureSet }, PhaseJob>(({ config, dir, train }, job, post) =>
  runPhaseJob(config, dir, job, post as (m: PhaseMessage) => void, train),
);
