/** Worker thread: encodes its share of image chunks with its own tfjs instance (see extract.ts). */
import { IMAGE_ENCODERS, lookup } from '../encoders/registry';
import { workerMain } from '../util/workers';
import { type ChunkTask, encodeChunk } from './extract';

workerMain<{ encoderId: string; jobs: readonly ChunkTask[] }>(async ({ encoderId, jobs }, post) => {
  const encoder = await lookup(IMAGE_ENCODERS, 'image encoder', encoderId).load();
  try {
    for (const t of jobs) await encodeChunk(encoder, t, (images) => post({ images }));
  } finally {
    encoder.dispose();
  }
});
