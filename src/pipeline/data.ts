/**
 * From a DataConfig to feature sets: resolves the data root (generating the `shapes` set when asked),
 * computes any missing features through the feature stage, and loads them.
 */
import type { DataConfig } from '../config/schemas';
import type { SplitName } from '../data/dataset';
import { loadSplit, resolveDataRoot as resolveRoot } from '../data/registry';
import { computeFeatures } from '../features';
import { type FeatureSet, loadFeatureSet } from '../features/feature-set';
import type { ProgressSink } from '../util/progress';

/** The folder holding `<dataset>/` for this config. */
export function resolveDataRoot(data: DataConfig): Promise<string> {
  return resolveRoot(data.dataset, data.dataRoot, data.cacheDir);
}

/** Load (computing first if needed) the feature sets of the given splits. */
export async function prepareFeatureSets(
  data: DataConfig,
  splits: readonly SplitName[],
  onProgress?: ProgressSink,
): Promise<FeatureSet[]> {
  const dataRoot = await resolveDataRoot(data);
  await computeFeatures(
    {
      dataset: data.dataset,
      dataRoot,
      cacheDir: data.cacheDir,
      imageEncoder: data.imageEncoder,
      textEncoder: data.textEncoder,
      splits: [...splits],
    },
    onProgress,
  );
  return Promise.all(
    splits.map(async (s) =>
      loadFeatureSet(data.cacheDir, await loadSplit(dataRoot, data.dataset, s), data.imageEncoder, data.textEncoder),
    ),
  );
}
