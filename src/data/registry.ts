/**
 * Datasets by name, each read from `<dataRoot>/<name>/`. Layouts:
 * - flickr8k: `captions.txt`, `Flickr_8k.{train,dev,test}Images.txt`, `images/` (as distributed)
 * - flickr30k, coco: `annotations/<prefix>_{train,val,test}.json` (or `Annotation/`, or the folder itself;
 *   Karpathy/BLIP format) and the image
 *   paths those files name, relative to the dataset folder (e.g. `flickr30k-images/…`, `val2014/…`)
 * - cc3m: LLaVA-CC3M-Pretrain-595K `chat.json` (or `metadata.json`), optional `splits.json`, `images/` (./cc3m.ts)
 * - coco-mini, and `captions:<folder>` for any folder: `captions.txt`, optional `{train,val,test}.txt`,
 *   `images/` (./captions.ts); `captions:<folder>` reads `<dataRoot>/<folder>/`
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, DatasetError } from '../errors';
import type { ImageCaptionSplit, SplitName } from './dataset';
import { readCaptionsDir } from './captions';
import { CC3M_DATASET, type Cc3mOptions, readCc3m } from './cc3m';
import { readCaptionsFolder, readFlickr8k } from './flickr8k';
import { GENERATED_DATASETS, SHAPES_DATASET, SHAPES_SHIFTED_DATASET, SHAPES_SPLIT_FILES, ensureGeneratedDataset } from './shapes';
import { annotationPath, readKarpathyJson } from './karpathy';

/** Dataset-specific reading options (the data config's fields of the same names). */
export type DatasetOptions = Cc3mOptions;

/** The dataset options a data config carries (only those set: an unset one keeps the reader's default). */
export function datasetOptions(data: { readonly cc3mSplit?: '3:1:1' | 'holdout' | undefined; readonly cc3mTestLimit?: number | null | undefined }): DatasetOptions {
  return {
    ...(data.cc3mSplit !== undefined ? { cc3mSplit: data.cc3mSplit } : {}),
    ...(data.cc3mTestLimit !== undefined ? { cc3mTestLimit: data.cc3mTestLimit } : {}),
  };
}

export interface DatasetEntry {
  readonly describe: string;
  readonly splits: readonly SplitName[];
  readonly load: (dir: string, split: SplitName, options?: DatasetOptions) => Promise<ImageCaptionSplit>;
  /** the folder under the data root, when it is not the dataset's name (`captions:<folder>`) */
  readonly folder?: string;
}

function karpathy(name: string, prefix: string, describe: string): DatasetEntry {
  return {
    describe,
    splits: ['train', 'val', 'test'],
    load: (dir, split) => readKarpathyJson(name, split, annotationPath(dir, `${prefix}_${split}.json`), dir),
  };
}

export const DATASETS: Readonly<Record<string, DatasetEntry>> = Object.freeze({
  flickr8k: {
    describe: 'Flickr8k, official split 6,000/1,000/1,000 images (+ 91 in no split: "rest")',
    splits: ['train', 'val', 'test', 'rest'],
    load: readFlickr8k,
  },
  [SHAPES_DATASET]: {
    describe: 'generated coloured shapes with counted, coloured captions (500/100/100 images); no data root needed',
    splits: ['train', 'val', 'test'],
    load: (dir, split) => readCaptionsFolder(SHAPES_DATASET, dir, split, SHAPES_SPLIT_FILES),
  },
  [SHAPES_SHIFTED_DATASET]: {
    describe: 'generated: 100 shapes photos on a dark background, from another seed, all test (cross-dataset checks); no data root needed',
    splits: ['test'],
    load: (dir, split) => readCaptionsFolder(SHAPES_SHIFTED_DATASET, dir, split, null),
  },
  flickr30k: karpathy('flickr30k', 'flickr30k', 'Flickr30k, Karpathy split, BLIP annotation JSONs'),
  coco: karpathy('coco', 'coco_karpathy', 'MS-COCO, Karpathy split, BLIP annotation JSONs'),
  [CC3M_DATASET]: {
    describe: 'CC3M as LLaVA-CC3M-Pretrain-595K (cc3m_captions_*.json, chat.json or metadata.json); splits.json, else 3:1:1 by record order (or holdout); test capped at 10,000',
    splits: ['train', 'val', 'test'],
    load: readCc3m,
  },
  'coco-mini': {
    describe: '407 COCO images, five captions each, a captions.txt folder with no split lists: all test (cross-dataset evaluation)',
    splits: ['test'],
    load: (dir, split) => readCaptionsDir('coco-mini', dir, split),
  },
});

/** `captions:<folder>`: any `captions.txt` folder under the data root, without a registry entry (./captions.ts). */
export const CAPTIONS_PREFIX = 'captions:';

function captionsEntry(name: string): DatasetEntry {
  const folder = name.slice(CAPTIONS_PREFIX.length);
  if (folder === '' || folder === '.' || folder === '..' || /[/\\]/.test(folder)) {
    throw new ConfigError(`dataset "${name}": ${CAPTIONS_PREFIX}<folder> names one folder under the data root`);
  }
  return {
    describe: `the captions.txt folder ${folder}/ (split lists train.txt, val.txt, test.txt; without them all test)`,
    splits: ['train', 'val', 'test'],
    load: (dir, split) => readCaptionsDir(name, dir, split),
    folder,
  };
}

export function datasetEntry(name: string): DatasetEntry {
  if (name.startsWith(CAPTIONS_PREFIX)) return captionsEntry(name);
  const entry = DATASETS[name];
  if (entry === undefined || !Object.hasOwn(DATASETS, name)) {
    throw new ConfigError(`unknown dataset "${name}"; valid: ${Object.keys(DATASETS).join(', ')}, ${CAPTIONS_PREFIX}<folder>`);
  }
  return entry;
}

/** Read one split of a named dataset under a data root. */
export async function loadSplit(dataRoot: string, dataset: string, split: SplitName, options: DatasetOptions = {}): Promise<ImageCaptionSplit> {
  const entry = datasetEntry(dataset);
  if (!entry.splits.includes(split)) {
    throw new ConfigError(`dataset ${dataset} has no split "${split}"; valid: ${entry.splits.join(', ')}`);
  }
  const dir = join(dataRoot, entry.folder ?? dataset);
  if (!existsSync(dir)) throw new DatasetError(dir, `dataset folder not found under data root ${dataRoot}`);
  return entry.load(dir, split, options);
}

/**
 * The folder holding `<dataset>/`: the given data root (or PTMST_DATA_ROOT); for the generated sets
 * (`shapes`, `shapes-shifted`), `<cacheDir>/generated` (generated on first use; no data root needed). The dataset name is checked
 * first, so a typo is reported as an unknown dataset, not as a missing data root.
 */
export async function resolveDataRoot(dataset: string, dataRoot: string | undefined, cacheDir: string): Promise<string> {
  datasetEntry(dataset);
  if (GENERATED_DATASETS.includes(dataset)) {
    const root = join(cacheDir, 'generated');
    await ensureGeneratedDataset(root, dataset);
    return root;
  }
  const root = dataRoot ?? process.env.PTMST_DATA_ROOT;
  if (!root) throw new ConfigError(`dataset ${dataset} needs a data root: no data root: pass --data-root DIR or set PTMST_DATA_ROOT`);
  return root;
}
