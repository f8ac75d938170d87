/**
 * The Karpathy/BLIP annotation JSONs the paper uses for Flickr30k and COCO
 * (`flickr30k_train.json`, `flickr30k_val.json`, `flickr30k_test.json`, `coco_karpathy_*.json`):
 * train entries hold one caption each (`{image, caption, image_id}`), val/test entries hold all of an
 * image's captions (`{image, caption: [5 strings]}`). `image` is a path relative to the image root.
 * Order: images in first-appearance order, captions flattened image by image in annotation order (for
 * val/test, exactly the release's `txt2img`/`img2txt`; for train, an image's captions are grouped).
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { DatasetError, type ImageCaptionSplit, type SplitName, splitFromRows } from './dataset';

const Entry = z.object({
  image: z.string().min(1),
  caption: z.union([z.string(), z.array(z.string()).min(1)]),
  /** train entries carry it (a string or a number in the release's files); not needed to group by image */
  image_id: z.union([z.string(), z.number()]).optional(),
});

/**
 * Where a dataset folder keeps its annotation JSONs: `annotations/` (this project's name), else
 * `Annotation/`, else the dataset folder itself (the release passes an annotation root holding the JSONs
 * directly). The first that holds `<file>` wins; absent everywhere, `annotations/<file>` (named in the error).
 */
export const ANNOTATION_FOLDERS = ['annotations', 'Annotation', '.'] as const;
export function annotationPath(dir: string, file: string): string {
  const found = ANNOTATION_FOLDERS.map((f) => join(dir, f, file)).find((p) => existsSync(p));
  return found ?? join(dir, 'annotations', file);
}
const Annotation = z.array(Entry);

export async function readKarpathyJson(
  dataset: string,
  split: SplitName,
  annotationFile: string,
  imageDir: string,
): Promise<ImageCaptionSplit> {
  if (!existsSync(annotationFile)) throw new DatasetError(annotationFile, 'annotation file not found');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(annotationFile, 'utf8'));
  } catch (e) {
    throw new DatasetError(annotationFile, `not valid JSON: ${(e as Error).message}`);
  }
  const parsed = Annotation.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new DatasetError(annotationFile, `entry ${issue.path.join('.')}: ${issue.message}`);
  }
  const order: string[] = [];
  const byImage = new Map<string, string[]>();
  for (const { image, caption } of parsed.data) {
    const caps = typeof caption === 'string' ? [caption] : caption;
    const list = byImage.get(image);
    if (list) list.push(...caps);
    else {
      order.push(image);
      byImage.set(image, [...caps]);
    }
  }
  return splitFromRows(dataset, split, imageDir, order, byImage, annotationFile);
}
