/**
 * `importFeatures` (`ptmst import-features`): features computed elsewhere (NFNet, BERT, CLIP, … in Python)
 * into the project's feature cache, exactly where the feature stage would write them (./cache.ts
 * `featurePaths`), with a manifest that names the external encoder (id, dim, provenance) and the source file
 * (name, sha256). Rows must be in the split's order (images; captions flattened in annotation order), or be
 * matched to it by a sidecar id list (./row-ids.ts). Values become float32, checked finite. The file and its
 * manifest are written atomically, manifest last, under the cache's lock.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { z } from 'zod';
import { parseConfig } from '../config/parse';
import { DataConfig, SafeName, Workspace, inWorkspace } from '../config/schemas';
import { SPLITS } from '../data/dataset';
import { datasetEntry, datasetOptions, loadSplit, resolveDataRoot } from '../data/registry';
import { ConfigError } from '../errors';
import { sha256, writeJsonAtomic } from '../store/atomic';
import { withLock } from '../store/lock';
import { writeSafetensorsChunked } from '../store/safetensors';
import { type ExternalArray, probeArray, readArray } from './array-file';
import { type FeaturePaths, featurePaths, readManifest } from './cache';
import { FEATURES_FORMAT, type FeatureManifest } from './manifest';
import { orderByIds, readIds } from './row-ids';
import { namesHash } from './split-match';

export const ImportFeaturesConfig = z
  .object({
    /** dataset in the registry whose split order the rows follow */
    dataset: z.string().min(1),
    split: z.enum(SPLITS),
    modality: z.enum(['image', 'text']),
    /** the .npy, .npz or .safetensors file */
    file: z.string().min(1),
    /** npz member (default: the only array) or safetensors tensor (default: the only one, or `features`) */
    key: z.string().min(1).optional(),
    /** the name the features go under (data.imageEncoder / data.textEncoder of later stages) */
    encoder: SafeName,
    /** free text: model, weights, preprocessing */
    provenance: z.string().optional(),
    /** row ids (text, or 1-D .npy), one per row: rows are matched by id and put in the split's order */
    ids: z.string().min(1).optional(),
    dataRoot: z.string().min(1).optional(),
    /** cc3m only: the split rule and test limit the later stages use (data.cc3mSplit, data.cc3mTestLimit) */
    cc3mSplit: DataConfig.shape.cc3mSplit,
    cc3mTestLimit: DataConfig.shape.cc3mTestLimit,
    cacheDir: z.string().default('data'),
    workspace: Workspace,
    /** replace a cache made from another source */
    force: z.boolean().default(false),
    /** bytes per read (tests make it small) */
    chunkBytes: z.number().int().positive().optional(),
  })
  .strict();
export type ImportFeaturesConfig = z.infer<typeof ImportFeaturesConfig>;

export interface ImportFeaturesResult {
  readonly paths: FeaturePaths;
  readonly manifest: FeatureManifest;
  /** the same source was already imported for this split: nothing was written */
  readonly reused: boolean;
}

/** Import one feature file for one split and modality. */
export async function importFeatures(input: z.input<typeof ImportFeaturesConfig>): Promise<ImportFeaturesResult> {
  const t0 = performance.now();
  const config = parseConfig(ImportFeaturesConfig, input, 'import-features config');
  const cacheDir = inWorkspace(config.workspace, config.cacheDir);
  const file = resolve(config.file);
  const entry = datasetEntry(config.dataset);
  if (!entry.splits.includes(config.split)) throw new ConfigError(`split: dataset ${config.dataset} has no split "${config.split}"; valid: ${entry.splits.join(', ')}`);
  // the header first: a wrong file is an error before the annotations are read
  const array: ExternalArray = await probeArray(file, config.key);
  const dataRoot = await resolveDataRoot(config.dataset, config.dataRoot, cacheDir);
  const split = await loadSplit(dataRoot, config.dataset, config.split, datasetOptions(config));
  const { modality } = config;
  const count = modality === 'image' ? split.images.length : split.captions.length;
  const what = modality === 'image' ? 'images' : 'captions (flattened in annotation order)';
  if (array.rows !== count) {
    throw new ConfigError(
      `${file} holds ${array.rows} rows, the ${config.dataset} ${config.split} split has ${count} ${what} ` +
        `(read from ${join(dataRoot, entry.folder ?? config.dataset)}); import the ${config.split} split's own features`,
    );
  }
  const ids = config.ids === undefined ? undefined : resolve(config.ids);
  const rowOf = ids === undefined ? undefined : orderByIds(await readIds(ids), split, modality, ids);
  const idsRecord = ids === undefined ? undefined : { file: basename(ids), sha256: sha256(await readFile(ids)) };
  const paths = featurePaths(cacheDir, config.dataset, config.split, modality, config.encoder);
  const hash = namesHash(split, modality);
  return withLock(paths.file, 'features', async () => {
    // an existing cache is kept unless --force: reused when it is this very import, an error otherwise
    const old = !config.force && existsSync(paths.manifest) && existsSync(paths.file) ? await readManifest(paths.manifest).catch(() => undefined) : undefined;
    const sameImport = (m: FeatureManifest) =>
      m.encoder.external === true && m.sourceHash === hash && m.source?.file === basename(file) && m.source.key === array.key && m.source.ids?.sha256 === idsRecord?.sha256;
    if (old && !sameImport(old)) {
      const from = old.encoder.external ? `imported from ${old.source?.file ?? 'another file'}` : `computed by ${old.encoder.version}`;
      throw new ConfigError(`${paths.file} exists (${from}); pass --force to replace it`);
    }
    const read = await readArray(array, { ...(rowOf ? { rowOf } : {}), ...(config.chunkBytes ? { chunkBytes: config.chunkBytes } : {}) });
    if (old) {
      if (old.source?.sha256 === read.sha256) return { paths, manifest: old, reused: true };
      throw new ConfigError(`${paths.file} exists, imported from another version of ${basename(file)} (its sha256 differs); pass --force to replace it`);
    }
    const metadata = { dataset: split.dataset, split: split.split, modality, encoder: `external:${config.encoder}` };
    const out = await writeSafetensorsChunked(paths.file, { features: { shape: [array.rows, array.dim], data: read.data } }, metadata);
    const manifest: FeatureManifest = {
      format: FEATURES_FORMAT,
      dataset: split.dataset,
      split: split.split,
      modality,
      encoder: { id: config.encoder, version: 'external', external: true, ...(config.provenance !== undefined ? { provenance: config.provenance } : {}) },
      count: array.rows,
      dim: array.dim,
      sourceHash: hash,
      sourceHashOf: 'names',
      sha256: out.sha256,
      bytes: out.bytes,
      createdAt: new Date().toISOString(),
      wallSeconds: (performance.now() - t0) / 1000,
      imported: true,
      source: {
        file: basename(file),
        sha256: read.sha256,
        bytes: read.bytes,
        format: array.format,
        ...(array.key !== undefined ? { key: array.key } : {}),
        dtype: array.dtype,
        ...(idsRecord ? { ids: idsRecord } : {}),
      },
    };
    await writeJsonAtomic(paths.manifest, manifest);
    return { paths, manifest, reused: false };
  });
}
