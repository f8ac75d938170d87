/** Pool worker of the feature stage: encodes one chunk of images per job with its thread's encoder (see extract.ts). */
import { IMAGE_ENCODERS, lookup } from '../encoders/registry';
import type { ImageEncoder } from '../encoders/types';
import { poolWorker } from '../util/pool';
import { type ChunkTask, encodeChunk } from './extract';

let encoder: Promise<ImageEncoder> | undefined; // loaded once per thread, freed with the thread

export default poolWorker<{ encoderId: string }, ChunkTask>(async ({ encoderId }, task, post) => {
  encoder ??= lookup(IMAGE_ENCODERS, 'image encoder', encoderId).load();
  await encodeChunk(await encoder, task, (images) => post({ images }));
});
