/**
 * Does a feature cache belong to this split? Features from the registry's encoders are keyed by image names
 * and byte sizes (./cache.ts `sourceHash`), which needs the image files; imported features (an external
 * encoder) are checked without them: dataset, split, modality, row count, and a hash of the image names
 * (or the raw captions). A cache that does not match is a StaleCacheError (exit 3) that says "stale cache"
 * and names the command that rebuilds it.
 */
import { createHash } from 'node:crypto';
import { basename } from 'node:path';
import type { ImageCaptionSplit } from '../data/dataset';
import { StaleCacheError } from '../errors';
import type { FeaturePaths, Modality } from './cache';
import type { FeatureManifest } from './manifest';

/** sha256 over the split's image names (image) or raw captions (text): what imported features are checked against. */
export function namesHash(split: ImageCaptionSplit, modality: Modality): string {
  const h = createHash('sha256');
  h.update(`${split.dataset}/${split.split}/${modality}/names\n`);
  for (const s of modality === 'image' ? split.images : split.rawCaptions) h.update(`${s}\n`);
  return h.digest('hex');
}

/** Features ptmst cannot recompute: imported ones and any whose encoder the registry does not know. */
export function isExternal(m: FeatureManifest, encoderKnown: boolean): boolean {
  return m.encoder.external === true || !encoderKnown;
}

/** The command that rebuilds a cache (import-features for external encoders, features otherwise). */
export function rebuildCommand(m: FeatureManifest, external: boolean): string {
  if (!external) return `ptmst features --dataset ${m.dataset} --force`;
  const file = m.source?.file ?? 'FILE';
  return `ptmst import-features --dataset ${m.dataset} --split ${m.split} --modality ${m.modality} --encoder ${m.encoder.id} --file ${file} --force`;
}

/**
 * Check a cache's manifest against the split (dataset, split, modality, rows; for imported features also the
 * names hash). Throws "stale cache: <file> …" naming the rebuild command.
 */
export function assertCacheMatches(
  paths: Pick<FeaturePaths, 'file' | 'manifest'>,
  m: FeatureManifest,
  split: ImageCaptionSplit,
  modality: Modality,
  external: boolean,
): void {
  const count = modality === 'image' ? split.images.length : split.captions.length;
  const what = modality === 'image' ? 'images' : 'captions';
  let reason: string | undefined;
  if (m.dataset !== split.dataset || m.split !== split.split || m.modality !== modality) {
    reason = `it holds ${m.dataset}/${m.split} ${m.modality} features, this is ${split.dataset}/${split.split} ${modality}`;
  } else if (m.count !== count) {
    reason = `it holds ${m.count} rows, the split has ${count} ${what}`;
  } else if (m.encoder.external === true && m.sourceHashOf === 'names' && m.sourceHash !== namesHash(split, modality)) {
    reason = `its rows were matched to other ${modality === 'image' ? 'image names' : 'captions'} (the annotations changed since the import)`;
  }
  if (reason !== undefined) {
    throw new StaleCacheError(paths.file, `${reason} (manifest ${basename(paths.manifest)}); rerun \`${rebuildCommand(m, external)}\``);
  }
}
