/** Worker thread of the evaluation stage: trains its share of students (see index.ts). */
import { workerMain } from '../util/workers';
import { type EvalSets, type EvalStageConfig, planRuns, runStudent } from './index';

workerMain<{ config: EvalStageConfig; sets: EvalSets; jobs: readonly number[] }>(async ({ config, sets, jobs }, post) => {
  const plan = await planRuns(config, sets);
  for (const run of jobs) post({ run, checkpoints: await runStudent(config, plan, run) });
});
