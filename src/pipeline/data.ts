/**
 * From a DataConfig to feature sets: resolves the data root (generating the `shapes` set when asked),
 * computes any missing features through the feature stage, and loads them.
 */
import { join } from 'node:path';
import { ConfigError } from '../config/parse';
import type { DataConfig } from '../config/schemas';
import type { SplitName } from '../data/dataset';
import { loadSplit } from '../data/registry';
import { SHAPES_DATASET, ensureShapes } from '../data/shapes';
import { computeFeatures } from '../features';
import { type FeatureSet, loadFeatureSet } from '../features/feature-set';
import type { ProgressSink } from '../util/progress';

/** The folder holding `<dataset>/` for this config. */
export async function resolveDataRoot(data: DataConfig): Promise<string> {
  if (data.dataset === SHAPES_DATASET) {
    const root = join(data.cacheDir, 'generated');
    await ensureShapes(root);
    return root;
  }
  const root = data.dataRoot ?? process.env.PTMST_DATA_ROOT;
  if (!root) throw new ConfigError(`dataset ${data.dataset} needs a data root: pass --data-root DIR or set PTMST_DATA_ROOT`);
  return root;
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
