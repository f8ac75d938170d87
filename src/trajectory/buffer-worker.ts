/** Worker thread of the buffer stage: trains its share of experts (see buffer.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '../backend';
import { failWorker } from '../util/workers';
import { type BufferStageConfig, type ExpertJob, runExpertJob } from './buffer';

interface Data {
  readonly config: BufferStageConfig;
  readonly dir: string;
  readonly jobs: readonly ExpertJob[];
}

async function main({ config, dir, jobs }: Data): Promise<void> {
  await ready(() => undefined);
  for (const job of jobs) await runExpertJob(config, dir, job, (m) => parentPort?.postMessage(m));
}

main(workerData as Data).catch(failWorker);
