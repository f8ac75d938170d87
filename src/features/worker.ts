/** Worker thread: encodes its share of image chunks with its own tfjs instance (see extract.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '../backend';
import { IMAGE_ENCODERS, lookup } from '../encoders/registry';
import { failWorker } from '../util/workers';
import { type ChunkTask, encodeChunk } from './extract';

interface Job {
  readonly encoderId: string;
  readonly jobs: readonly ChunkTask[];
}

async function main(job: Job): Promise<void> {
  await ready(() => undefined);
  const encoder = await lookup(IMAGE_ENCODERS, 'image encoder', job.encoderId).load();
  try {
    for (const t of job.jobs) await encodeChunk(encoder, t, (images) => parentPort?.postMessage({ images }));
  } finally {
    encoder.dispose();
  }
}

main(workerData as Job).catch(failWorker);
