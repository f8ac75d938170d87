/**
 * The manifest beside every feature file: what the numbers are, where they came from, and a checksum
 * that the reader verifies before it trusts the file.
 */
import { z } from 'zod';

export const FEATURES_FORMAT = 'ptmst.features/1';

export const FeatureManifest = z.object({
  format: z.literal(FEATURES_FORMAT),
  dataset: z.string(),
  split: z.string(),
  modality: z.enum(['image', 'text']),
  encoder: z.object({
    id: z.string(),
    version: z.string(),
    /** an encoder the registry does not know: the features were computed elsewhere and imported */
    external: z.boolean().optional(),
    /** free text: which model, weights and preprocessing made the features (import-features --provenance) */
    provenance: z.string().optional(),
  }),
  /** rows (images or captions) */
  count: z.number().int().nonnegative(),
  dim: z.number().int().positive(),
  /** sha256 over the source list (image names and byte sizes, or raw captions; see sourceHashOf) */
  sourceHash: z.string(),
  /** `names`: sourceHash covers the image names only (imported features; no image file is read): ./split-match.ts */
  sourceHashOf: z.literal('names').optional(),
  /** sha256 of the safetensors file */
  sha256: z.string(),
  bytes: z.number().int().nonnegative(),
  createdAt: z.string(),
  wallSeconds: z.number().nonnegative(),
  /**
   * features computed elsewhere and dropped into the cache (README "Encoders"): their safetensors file may
   * lack ptmst's content digest. Files ptmst wrote carry it, and one without it is refused.
   */
  imported: z.boolean().optional(),
  /** the file the imported features were read from (`ptmst import-features`) */
  source: z
    .object({
      /** its name (basename: where it was is no part of what it holds) */
      file: z.string(),
      sha256: z.string(),
      bytes: z.number().int().nonnegative(),
      format: z.enum(['npy', 'npz', 'safetensors']),
      /** the npz member or safetensors tensor */
      key: z.string().optional(),
      /** the stored dtype before conversion to float32 (`f2`, `f4`, `f8`) */
      dtype: z.string(),
      /** the row-id list the rows were matched by (basename and sha256), when one was given */
      ids: z.object({ file: z.string(), sha256: z.string() }).optional(),
    })
    .optional(),
});
export type FeatureManifest = z.infer<typeof FeatureManifest>;
