/** The feature stage: every split of a dataset through the frozen image and text encoders. */

import { ready } from '../backend';
import { parseConfig } from '../config/parse';
import { FeaturesConfig, inWorkspace } from '../config/schemas';
import { datasetEntry, datasetOptions, loadSplit, resolveDataRoot } from '../data/registry';
import { EncoderPool } from '../encoders/registry';
import type { ProgressSink } from '../util/progress';
import { type ExtractResult, extractFeatures } from './extract';

export * from './cache';
export * from './extract';
export * from './manifest';
export { ImportFeaturesConfig, type ImportFeaturesResult, importFeatures } from './import';
export { PYTORCH_MESSAGE, probeArray, readArray } from './array-file';

export interface FeatureStageResult {
  readonly config: FeaturesConfig;
  readonly outputs: readonly (ExtractResult & { readonly split: string; readonly modality: string })[];
}

/** Validate the config, then extract (or reuse) image and caption features for each split. */
export async function computeFeatures(input: unknown, onProgress?: ProgressSink): Promise<FeatureStageResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const parsed = parseConfig(FeaturesConfig, input, 'features config');
  const config = { ...parsed, cacheDir: inWorkspace(parsed.workspace, parsed.cacheDir) };
  const dataRoot = await resolveDataRoot(config.dataset, config.dataRoot, config.cacheDir);
  const splits = config.splits ?? datasetEntry(config.dataset).splits;
  const outputs: FeatureStageResult['outputs'][number][] = [];
  const loaded = new Map<string, Awaited<ReturnType<typeof loadSplit>>>();
  for (const name of splits) loaded.set(name, await loadSplit(dataRoot, config.dataset, name, datasetOptions(config)));
  const pool = new EncoderPool();
  try {
    for (const modality of ['image', 'text'] as const) {
      for (const name of splits) {
        const split = loaded.get(name)!;
        const result = await extractFeatures({
          split,
          modality,
          encoder: modality === 'image' ? config.imageEncoder : config.textEncoder,
          cacheDir: config.cacheDir,
          chunkSize: config.chunkSize,
          force: config.force,
          ...(config.workers !== undefined ? { workers: config.workers } : {}),
          ...(onProgress ? { onProgress } : {}),
          pool,
        });
        outputs.push({ ...result, split: name, modality });
      }
    }
  } finally {
    await pool.dispose();
  }
  return { config, outputs };
}
