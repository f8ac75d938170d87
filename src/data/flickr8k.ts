/**
 * Flickr8k as distributed: `captions.txt` (CSV `image,caption`, quoted fields may hold commas), the
 * official split lists `Flickr_8k.{train,dev,test}Images.txt`, and `images/`. Images named by a split
 * list but absent from `images/` are skipped (Flickr8k misses one train photo).
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
  return readCaptionsFolder('flickr8k', dir, split, FLICKR8K_SPLIT_FILES);
}

/** Any dataset laid out like Flickr8k: `captions.txt`, one image list per split, `images/`. */
export async function readCaptionsFolder(
  dataset: string,
  dir: string,
  split: SplitName,
  splitFiles: SplitFiles,
): Promise<ImageCaptionSplit> {
  const captionsFile = join(dir, 'captions.txt');
  const imageDir = join(dir, 'images');
  const captions = parseCaptionsCsv(await readText(captionsFile), captionsFile);
  if (!existsSync(imageDir)) throw new DatasetError(imageDir, 'image folder not found');
  const present = new Set(await readdir(imageDir));
  const lists = Object.fromEntries(
    await Promise.all(
      Object.entries(splitFiles).map(async ([s, f]) => [s, listNames(await readText(join(dir, f)))] as const),
    ),
  ) as Record<Exclude<SplitName, 'rest'>, string[]>;
  let names: string[];
  if (split === 'rest') {
    const listed = new Set(Object.values(lists).flat());
    names = [...captions.keys()].filter((n) => !listed.has(n));
  } else {
    names = lists[split];
  }
  const images = names.filter((n) => present.has(n) && captions.has(n));
  return splitFromRows(dataset, split, imageDir, images, captions, captionsFile);
}
