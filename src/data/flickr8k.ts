/**
 * Flickr8k as distributed: `captions.txt` (CSV `image,caption`, quoted fields may hold commas), the
 * official split lists `Flickr_8k.{train,dev,test}Images.txt`, and `images/`. A split whose list names an
 * image that is absent (no file, or no caption) is refused with an error naming the images — except the
 * images a dataset is known to lack (`knownMissing`: Flickr8k as distributed has no photo and no caption
 * for one train image), which are skipped.
 */
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { DatasetError, type ImageCaptionSplit, type SplitName, splitFromRows } from './dataset';

export type SplitFiles = Readonly<Record<Exclude<SplitName, 'rest'>, string>>;

export const FLICKR8K_SPLIT_FILES: SplitFiles = {
  train: 'Flickr_8k.trainImages.txt',
  val: 'Flickr_8k.devImages.txt',
  test: 'Flickr_8k.testImages.txt',
};

/** Listed in Flickr_8k.trainImages.txt but absent from every Flickr8k distribution (photo and captions). */
export const FLICKR8K_KNOWN_MISSING: readonly string[] = ['3050606344_af711c726c.jpg'];

/** Parse `captions.txt`: rows grouped by image, in file order. */
export function parseCaptionsCsv(text: string, source: string): Map<string, string[]> {
  let rows: string[][];
  try {
    rows = parse(text, { relax_column_count: false, skip_empty_lines: true, trim: false }) as string[][];
  } catch (e) {
    throw new DatasetError(source, `not a valid CSV: ${(e as Error).message}`);
  }
  const [header, ...body] = rows;
  if (header === undefined || header[0] !== 'image' || header[1] !== 'caption' || header.length !== 2) {
    throw new DatasetError(source, `expected the header "image,caption", found "${(header ?? []).join(',')}"`);
  }
  const byImage = new Map<string, string[]>();
  for (const [image, caption] of body as [string, string][]) {
    const list = byImage.get(image);
    if (list) list.push(caption);
    else byImage.set(image, [caption]);
  }
  return byImage;
}

async function readText(file: string): Promise<string> {
  if (!existsSync(file)) throw new DatasetError(file, 'not found (is the data root right? see README "Data")');
  return readFile(file, 'utf8');
}

const listNames = (text: string): string[] =>
  text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l.length > 0);

/** Read one split of Flickr8k from `dir` (the folder holding `captions.txt`). */
export function readFlickr8k(dir: string, split: SplitName): Promise<ImageCaptionSplit> {
  return readCaptionsFolder('flickr8k', dir, split, FLICKR8K_SPLIT_FILES, FLICKR8K_KNOWN_MISSING);
}

/**
 * Any dataset laid out like Flickr8k: `captions.txt`, one image list per split, `images/`. With no lists
 * (`splitFiles` null) the split is every image of `captions.txt`, in file order: the caller decides which
 * split that is (src/data/captions.ts: `test`).
 */
export async function readCaptionsFolder(
  dataset: string,
  dir: string,
  split: SplitName,
  splitFiles: SplitFiles | null,
  knownMissing: readonly string[] = [],
): Promise<ImageCaptionSplit> {
  const captionsFile = join(dir, 'captions.txt');
  const imageDir = join(dir, 'images');
  const captions = parseCaptionsCsv(await readText(captionsFile), captionsFile);
  if (!existsSync(imageDir)) throw new DatasetError(imageDir, 'image folder not found');
  const present = new Set(await readdir(imageDir));
  const { names, listFile } =
    splitFiles === null
      ? { names: [...captions.keys()], listFile: captionsFile }
      : await listedNames(dir, split, splitFiles, captions, captionsFile);
  const skip = new Set(knownMissing);
  const absent = names.filter((n) => !skip.has(n) && !(present.has(n) && captions.has(n)));
  if (absent.length > 0) {
    const what = (n: string) => `${n} (${present.has(n) ? 'no caption' : 'no image file'})`;
    throw new DatasetError(
      listFile,
      `${absent.length} listed image(s) of split ${split} are missing: ${absent.slice(0, 5).map(what).join(', ')}` +
        `${absent.length > 5 ? ', …' : ''} — the data set is incomplete (an unfinished copy?)`,
    );
  }
  const images = names.filter((n) => present.has(n) && captions.has(n));
  return splitFromRows(dataset, split, imageDir, images, captions, captionsFile);
}

/** The images a split list names (`rest`: the captioned images that no list names) and the file naming them. */
async function listedNames(
  dir: string,
  split: SplitName,
  splitFiles: SplitFiles,
  captions: ReadonlyMap<string, readonly string[]>,
  captionsFile: string,
): Promise<{ names: string[]; listFile: string }> {
  const lists = Object.fromEntries(
    await Promise.all(
      Object.entries(splitFiles).map(async ([s, f]) => [s, listNames(await readText(join(dir, f)))] as const),
    ),
  ) as Record<Exclude<SplitName, 'rest'>, string[]>;
  if (split === 'rest') {
    const listed = new Set(Object.values(lists).flat());
    return { names: [...captions.keys()].filter((n) => !listed.has(n)), listFile: captionsFile };
  }
  return { names: lists[split], listFile: join(dir, splitFiles[split]) };
}
