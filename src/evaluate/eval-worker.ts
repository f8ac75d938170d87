/** Worker thread of the evaluation stage: trains its share of students (see index.ts). */
import { workerMain } from '../util/workers';
import { type EvalStageConfig, planRuns, runStudent } from './index';

workerMain<{ config: EvalStageConfig; jobs: readonly number[] }>(async ({ config, jobs }, post) => {
  const plan = await planRuns(config);
  for (const run of jobs) post({ run, checkpoints: await runStudent(config, plan, run) });
});
