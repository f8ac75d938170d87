/** Pool worker of the evaluation stage: trains one student per job (see index.ts). */
import type { SplitSets } from '../features/feature-set';
import { poolWorker } from '../util/pool';
import { type EvalStageConfig, planRuns, runStudent } from './index';
import type { KdTeacher } from './student';

type Plan = Awaited<ReturnType<typeof planRuns>>;
let plan: Promise<Plan> | undefined; // once per thread

export default poolWorker<{ config: EvalStageConfig; sets: SplitSets; teacher?: KdTeacher }, number>(async ({ config, sets, teacher }, run, post) => {
  plan ??= planRuns(config, sets, teacher);
  post({ run, checkpoints: await runStudent(config, await plan, run) });
});
