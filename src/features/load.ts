/**
 * From a DataConfig to feature sets: resolves the data root (generating the `shapes` set when asked),
 * computes any missing features through the feature stage, and loads them.
 */
import type { DataConfig } from '../config/schemas';
import type { SplitName } from '../data/dataset';
import { loadSplit, resolveDataRoot } from '../data/registry';
import { type FeatureSet, loadFeatureSet } from './feature-set';
import { computeFeatures } from './index';
import type { ProgressSink } from '../util/progress';

/** Load (computing first if needed) the feature sets of the given splits. */
export async function prepareFeatureSets(
  data: DataConfig,
  splits: readonly SplitName[],
  onProgress?: ProgressSink,
): Promise<FeatureSet[]> {
  const dataRoot = await resolveDataRoot(data.dataset, data.dataRoot, data.cacheDir);
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
