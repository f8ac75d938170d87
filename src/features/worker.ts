/** Worker thread: encodes its share of image chunks with its own tfjs instance (see extract.ts). */
import { parentPort, workerData } from 'node:worker_threads';
import { ready } from '../backend';
import { IMAGE_ENCODERS, lookup } from '../encoders/registry';
import { type ChunkTask, encodeChunk } from './extract';

interface Job {
  readonly encoderId: string;
  readonly tasks: readonly ChunkTask[];
}

async function main(job: Job): Promise<void> {
  await ready(() => undefined);
  const encoder = await lookup(IMAGE_ENCODERS, 'image encoder', job.encoderId).load();
  try {
    for (const t of job.tasks) await encodeChunk(encoder, t, (images) => parentPort?.postMessage({ images }));
  } finally {
    encoder.dispose();
  }
}

main(workerData as Job).catch((e: unknown) => {
  // rethrown asynchronously so that the parent's 'error' event receives it
  setImmediate(() => {
    throw e;
  });
});
