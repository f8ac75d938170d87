/**
 * Every stage's configuration as a zod schema. Defaults are the reference hyperparameters (SPEC §3–6)
 * unless a comment says why this project's CPU default differs; `configs/*.json` name the reference
 * values where they differ. Unknown fields are errors.
 */
import { z } from 'zod';
import { LOSS_NAMES } from '../model/losses';

const loss = z.enum(LOSS_NAMES as [string, ...string[]]);

export const DataConfig = z
  .object({
    /** dataset in the registry, or `shapes` for the generated set */
    dataset: z.string().default('flickr8k'),
    /** folder holding `<dataset>/`; PTMST_DATA_ROOT when absent; not needed for `shapes` */
    dataRoot: z.string().optional(),
    /** generated artefacts (features, generated datasets); git-ignored */
    cacheDir: z.string().default('data'),
    imageEncoder: z.string().default('mobilenet_v2'),
    textEncoder: z.string().default('wink-sg-100d'),
  })
  .strict();
export type DataConfig = z.infer<typeof DataConfig>;

export const ModelConfig = z
  .object({
    /** head output size; chosen by measurement on Flickr8k (README "Model size") */
    dOut: z.number().int().positive().default(256),
    /** SPEC §1 */
    temperature: z.number().positive().default(0.07),
    /** SPEC §1: ProjectionHead dropout while training experts and evaluation students */
    dropout: z.number().min(0).max(0.9).default(0.1),
  })
  .strict();
export type ModelConfig = z.infer<typeof ModelConfig>;

export const BufferConfig = z
  .object({
    /** SPEC §3: 20 experts in the reference; 10 by default here to fit the CPU time budget */
    numExperts: z.number().int().positive().default(10),
    /** SPEC §3 */
    epochs: z.number().int().positive().default(10),
    lrImg: z.number().positive().default(0.1),
    lrTxt: z.number().positive().default(0.1),
    batchSize: z.number().int().positive().default(128),
    /** experts train with the symmetric cross-entropy (InfoNCE with S = I) */
    loss: loss.default('infonce'),
    seed: z.number().int().nonnegative().default(0),
    /** worker threads (one expert each at a time); default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
  })
  .strict();
export type BufferConfig = z.infer<typeof BufferConfig>;
