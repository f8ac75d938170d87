/**
 * The Karpathy/BLIP annotation JSONs the paper uses for Flickr30k and COCO
 * (`flickr30k_train.json`, `flickr30k_val.json`, `flickr30k_test.json`, `coco_karpathy_*.json`):
 * train entries hold one caption each (`{image, caption, image_id}`), val/test entries hold all of an
 * image's captions (`{image, caption: [5 strings]}`). `image` is a path relative to the image root.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { DatasetError, type ImageCaptionSplit, type SplitName, splitFromRows } from './dataset';

const Entry = z.object({
  image: z.string().min(1),
  caption: z.union([z.string(), z.array(z.string()).min(1)]),
});
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
