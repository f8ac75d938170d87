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
  encoder: z.object({ id: z.string(), version: z.string() }),
  /** rows (images or captions) */
  count: z.number().int().nonnegative(),
  dim: z.number().int().positive(),
  /** sha256 over the source list (image names and byte sizes, or raw captions) */
  sourceHash: z.string(),
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
});
export type FeatureManifest = z.infer<typeof FeatureManifest>;
