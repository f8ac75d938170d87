/**
 * Bring-your-own data: a folder `<dataRoot>/<folder>/` holding `captions.txt` (CSV with the header
 * `image,caption`, quoted fields as Flickr8k's, any number of rows per image), `images/` (the files
 * `captions.txt` names), and optionally the split lists `train.txt`, `val.txt`, `test.txt` (one image name
 * per line). With all three lists each split is its list (an empty file is an empty split); with none, every
 * image is in split `test`, in `captions.txt` order (a set for cross-dataset evaluation), and asking for
 * `train` or `val` is an error; with some but not all, the folder is refused naming a missing list.
 *
 * Names: any such folder is the dataset `captions:<folder>` (one path segment) with no registry edit;
 * `coco-mini` is registered by name with this layout (no lists: test only).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { DatasetError, type ImageCaptionSplit, type SplitName } from './dataset';
import { type SplitFiles, readCaptionsFolder } from './flickr8k';

export const CAPTIONS_SPLIT_FILES: SplitFiles = { train: 'train.txt', val: 'val.txt', test: 'test.txt' };

/** The split lists to use: all three, or null when there are none. */
function splitLists(dir: string): SplitFiles | null {
  const missing = Object.values(CAPTIONS_SPLIT_FILES).filter((f) => !existsSync(join(dir, f)));
  if (missing.length === 0) return CAPTIONS_SPLIT_FILES;
  if (missing.length === 3) return null;
  throw new DatasetError(
    join(dir, missing[0]!),
    'not found: give all three split lists (train.txt, val.txt, test.txt; an empty file is an empty split) or none (every image in test)',
  );
}

/** Read one split of a `captions.txt` folder (see the module comment). */
export async function readCaptionsDir(dataset: string, dir: string, split: SplitName): Promise<ImageCaptionSplit> {
  const lists = splitLists(dir);
  if (lists === null && split !== 'test') {
    throw new DatasetError(dir, `no split lists (train.txt, val.txt, test.txt): every image is in split test, there is no split ${split}`);
  }
  return readCaptionsFolder(dataset, dir, split, lists);
}
