/** Worker thread of the distillation stage: distils its share of phases (see index.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '../backend';
import { failWorker } from '../util/workers';
import { type DistillStageConfig, type PhaseJob, runPhaseJob } from './index';

interface Data {
  readonly config: DistillStageConfig;
  readonly dir: string;
  readonly jobs: readonly PhaseJob[];
}

async function main({ config, dir, jobs }: Data): Promise<void> {
  await ready(() => undefined);
  for (const job of jobs) await runPhaseJob(config, dir, job, (m) => parentPort?.postMessage(m));
}

main(workerData as Data).catch(failWorker);
