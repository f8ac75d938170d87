/** Worker thread of the evaluation stage: trains its share of students (see index.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '../backend';
import { failWorker } from '../util/workers';
import { type EvalStageConfig, planRuns, runStudent } from './index';

interface Data {
  readonly config: EvalStageConfig;
  readonly jobs: readonly number[];
}

async function main({ config, jobs }: Data): Promise<void> {
  await ready(() => undefined);
  const plan = await planRuns(config);
  for (const run of jobs) parentPort?.postMessage({ run, checkpoints: await runStudent(config, plan, run) });
}

main(workerData as Data).catch(failWorker);
