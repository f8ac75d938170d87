/**
 * From a DataConfig to feature sets. `loadFeatureSets` is what a stage does: read the cached features of
 * the splits it needs, verified (checksum, counts) — it never computes them; a missing cache is an error
 * naming the file and the command that makes it. `prepareFeatureSets` is what the planner (`repro`) does:
 * compute whatever is missing or stale first (the feature stage), then load.
 */
import { existsSync } from 'node:fs';
import type { z } from 'zod';
import { parseConfig } from '../config/parse';
import { DataConfig } from '../config/schemas';
import type { SplitName } from '../data/dataset';
import { datasetOptions, loadSplit, resolveDataRoot } from '../data/registry';
import { ConfigError, MissingFileError } from '../errors';
import { IMAGE_ENCODERS, TEXT_ENCODERS } from '../encoders/registry';
import type { ProgressSink } from '../util/progress';
import { type FeatureSet, featureSetPaths, fractionImages, loadFeatureSet, subsetImages } from './feature-set';
import { computeFeatures } from './index';

/** A data section as written in a config (defaults filled in by the schema). */
export type DataInput = z.input<typeof DataConfig>;

/** Load the cached, verified feature sets of `splits` (train cut to `data.trainFraction`); never computes. */
export async function loadFeatureSets(input: DataInput, splits: readonly SplitName[]): Promise<FeatureSet[]> {
  const data = parseConfig(DataConfig, input, 'data config');
  const dataRoot = await resolveDataRoot(data.dataset, data.dataRoot, data.cacheDir);
  return Promise.all(
    splits.map(async (s) => {
      const p = featureSetPaths(data.cacheDir, data.dataset, s, data.imageEncoder, data.textEncoder);
      for (const [f, field, table, kind, name] of [
        [p.img.manifest, 'imageEncoder', IMAGE_ENCODERS, 'image encoder', data.imageEncoder],
        [p.txt.manifest, 'textEncoder', TEXT_ENCODERS, 'text encoder', data.textEncoder],
      ] as const) {
        if (existsSync(f)) continue;
        // features under any name can be imported into the cache; absent ones must come from a known encoder
        if (!Object.hasOwn(table, name)) {
          throw new ConfigError(`data.${field}: unknown ${kind} "${name}"; valid: ${Object.keys(table).join(', ')} (or features imported under that name: none at ${f}; \`ptmst import-features --encoder ${name} …\` makes them)`);
        }
        throw new MissingFileError(f, `features not found: run \`ptmst features --dataset ${data.dataset} --cache-dir ${data.cacheDir}\` first`);
      }
      const set = await loadFeatureSet(data.cacheDir, await loadSplit(dataRoot, data.dataset, s, datasetOptions(data)), data.imageEncoder, data.textEncoder);
      const fraction = data.trainFraction;
      if (s !== 'train' || fraction === undefined || fraction === 1) return set;
      return subsetImages(set, fractionImages(set.numImages, fraction), `trainFraction ${fraction}`);
    }),
  );
}

/** Compute the features of `splits` where missing or stale (the feature stage), then load them. */
export async function prepareFeatureSets(
  input: DataInput,
  splits: readonly SplitName[],
  onProgress?: ProgressSink,
): Promise<FeatureSet[]> {
  const data = parseConfig(DataConfig, input, 'data config');
  await computeFeatures(
    {
      dataset: data.dataset,
      dataRoot: data.dataRoot,
      cacheDir: data.cacheDir,
      imageEncoder: data.imageEncoder,
      textEncoder: data.textEncoder,
      splits: [...splits],
    },
    onProgress,
  );
  return loadFeatureSets(data, splits);
}
