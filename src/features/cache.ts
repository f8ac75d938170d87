/**
 * Feature cache: one safetensors file per (dataset, split, modality, encoder) plus a JSON manifest.
 * A cache is used only when its manifest matches the current source list and encoder and the file's
 * checksum matches the manifest; a file that fails its checksum or does not parse is an error naming it.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ImageCaptionSplit } from '../data/dataset';
import { readJsonFile } from '../store/json';
import {
  type ChunkOptions,
  CorruptFileError,
  DIGEST_KEY,
  type FileChecksum,
  MissingFileError,
  type SafetensorsFile,
  readSafetensorsChunked,
  tensorOf,
} from '../store/safetensors';
import { FEATURES_FORMAT, FeatureManifest } from './manifest';

export type Modality = 'image' | 'text';

export interface FeaturePaths {
  readonly file: string;
  readonly manifest: string;
  /** resumable partial results of an unfinished extraction */
  readonly partialDir: string;
}

export function featurePaths(
  cacheDir: string,
  dataset: string,
  split: string,
  modality: Modality,
  encoderId: string,
): FeaturePaths {
  const base = join(cacheDir, 'features', dataset, `${split}.${modality}.${encoderId}`);
  return { file: `${base}.safetensors`, manifest: `${base}.json`, partialDir: `${base}.partial` };
}

/** Hash of what the features are computed from: image names and byte sizes, or the raw captions. */
export async function sourceHash(split: ImageCaptionSplit, modality: Modality): Promise<string> {
  const h = createHash('sha256');
  h.update(`${split.dataset}/${split.split}/${modality}\n`);
  if (modality === 'image') {
    const sizes = await Promise.all(split.images.map(async (f) => (await stat(join(split.imageDir, f))).size));
    split.images.forEach((f, i) => h.update(`${f}\t${sizes[i]}\n`));
  } else {
    for (const c of split.rawCaptions) h.update(`${c}\n`);
  }
  return h.digest('hex');
}

export interface FeatureMatrix {
  readonly count: number;
  readonly dim: number;
  /** row-major count × dim */
  readonly data: Float32Array;
  readonly manifest: FeatureManifest;
}

export type CacheCheck =
  | { readonly status: 'valid'; readonly manifest: FeatureManifest }
  | { readonly status: 'missing' | 'stale'; readonly reason: string };

export function readManifest(path: string): Promise<FeatureManifest> {
  return readJsonFile(path, FeatureManifest, 'manifest');
}

/** Decide whether a cached feature file can be used for this source and encoder. */
export async function checkCache(
  paths: FeaturePaths,
  expect: { readonly sourceHash: string; readonly encoderId: string; readonly encoderVersion: string },
): Promise<CacheCheck> {
  if (!existsSync(paths.manifest)) return { status: 'missing', reason: `no manifest ${paths.manifest}` };
  const m = await readManifest(paths.manifest);
  if (m.encoder.id !== expect.encoderId || m.encoder.version !== expect.encoderVersion) {
    return { status: 'stale', reason: `encoder changed (${m.encoder.version} → ${expect.encoderVersion})` };
  }
  if (m.sourceHash !== expect.sourceHash) return { status: 'stale', reason: 'source files changed' };
  if (!existsSync(paths.file)) return { status: 'stale', reason: `manifest without data file ${paths.file}` };
  return { status: 'valid', manifest: m };
}

/**
 * Load a feature file and verify it against its manifest (checksum, shape). The file is read in chunks
 * straight into a SharedArrayBuffer-backed matrix (files beyond 2 GiB; worker threads share it uncopied),
 * its sha256 computed as it streams and compared with the manifest's before any other verdict.
 */
export async function loadFeatures(paths: Pick<FeaturePaths, 'file' | 'manifest'>, opts: ChunkOptions = {}): Promise<FeatureMatrix> {
  const manifest = await readManifest(paths.manifest);
  const verifyFile = (sum: FileChecksum): void => {
    if (sum.bytes !== manifest.bytes || sum.sha256 !== manifest.sha256) {
      throw new CorruptFileError(
        paths.file,
        `checksum mismatch with ${paths.manifest} (${sum.bytes} bytes, manifest says ${manifest.bytes}): ` +
          'the file is truncated or corrupted; delete it or rerun with --force to rebuild',
      );
    }
  };
  // ptmst's own feature files carry their content digest (and every value is checked finite); imported ones need not
  let st: SafetensorsFile;
  try {
    st = await readSafetensorsChunked(paths.file, { ...opts, shared: true, verifyFile, requireDigest: manifest.imported !== true });
  } catch (e) {
    if (e instanceof MissingFileError) throw new CorruptFileError(paths.file, `cannot read (${e.message})`);
    if (e instanceof CorruptFileError && e.message.includes(`has no ${DIGEST_KEY}`)) {
      throw new CorruptFileError(
        paths.file,
        `has no ${DIGEST_KEY}: features an older ptmst wrote (rebuild them: ptmst features --force) or computed elsewhere ` +
          `(say so with "imported": true in ${paths.manifest})`,
      );
    }
    throw e;
  }
  const t = tensorOf(st, 'features', paths.file);
  if (t.dtype !== 'F32' || t.shape.length !== 2 || t.shape[0] !== manifest.count || t.shape[1] !== manifest.dim) {
    throw new CorruptFileError(paths.file, `features tensor ${t.dtype}[${t.shape}] does not match the manifest`);
  }
  return { count: manifest.count, dim: manifest.dim, data: t.data as Float32Array, manifest };
}

export { FEATURES_FORMAT };
