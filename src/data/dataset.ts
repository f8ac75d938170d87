/**
 * An image-caption dataset split: what every later stage (features, experts, evaluation) reads.
 * Images and captions are parallel to the feature matrices built from them: row i of the image features
 * is `images[i]`, row j of the caption features is `captions[j]`, and `captionToImage[j]` links them.
 */
import { DatasetError } from '../errors';

export { DatasetError };

export const SPLITS = ['train', 'val', 'test', 'rest'] as const;
/** `rest`: images that the official split lists in no split (Flickr8k has 91). */
export type SplitName = (typeof SPLITS)[number];

export interface ImageCaptionSplit {
  /** dataset id, e.g. `flickr8k` */
  readonly dataset: string;
  readonly split: SplitName;
  /** image file names relative to `imageDir` */
  readonly images: readonly string[];
  readonly imageDir: string;
  /** captions after `preprocessCaption` */
  readonly captions: readonly string[];
  /** the captions as written in the source file */
  readonly rawCaptions: readonly string[];
  /** caption j shows image captionToImage[j] (retrieval: IR ground truth) */
  readonly captionToImage: Int32Array;
  /** image i is described by captions imageToCaptions[i] (retrieval: TR ground truth) */
  readonly imageToCaptions: readonly (readonly number[])[];
}


/** Longest caption kept, in words, as in the reference's `pre_caption(caption, max_words=30)`. */
export const MAX_CAPTION_WORDS = 30;

/**
 * Caption preprocessing: lower-case, every character that is not a letter, digit or whitespace
 * becomes a space, whitespace collapsed, at most `maxWords` words.
 */
export function preprocessCaption(caption: string, maxWords = MAX_CAPTION_WORDS): string {
  return caption
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s]/gu, ' ')
    .split(/\s+/)
    .filter((w) => w.length > 0)
    .slice(0, maxWords)
    .join(' ');
}

/** Build a split from (image, caption) rows grouped by image in first-appearance order. */
export function splitFromRows(
  dataset: string,
  split: SplitName,
  imageDir: string,
  imageOrder: readonly string[],
  captionsByImage: ReadonlyMap<string, readonly string[]>,
  source: string,
): ImageCaptionSplit {
  const rawCaptions: string[] = [];
  const captionToImage: number[] = [];
  const imageToCaptions: number[][] = [];
  imageOrder.forEach((image, i) => {
    const caps = captionsByImage.get(image);
    if (caps === undefined || caps.length === 0) throw new DatasetError(source, `no caption for image ${image}`);
    imageToCaptions.push(caps.map((_, k) => rawCaptions.length + k));
    for (const c of caps) {
      rawCaptions.push(c);
      captionToImage.push(i);
    }
  });
  return {
    dataset,
    split,
    images: imageOrder,
    imageDir,
    rawCaptions,
    captions: rawCaptions.map((c) => preprocessCaption(c)),
    captionToImage: Int32Array.from(captionToImage),
    imageToCaptions,
  };
}

/** The first `n` images of a split with their captions (quick runs, tests). */
export function takeImages(split: ImageCaptionSplit, n: number): ImageCaptionSplit {
  const images = split.images.slice(0, n);
  const captionIds = split.imageToCaptions.slice(0, n).flat();
  const remap = new Map(captionIds.map((c, k) => [c, k]));
  return {
    ...split,
    images,
    captions: captionIds.map((c) => split.captions[c]!),
    rawCaptions: captionIds.map((c) => split.rawCaptions[c]!),
    captionToImage: Int32Array.from(captionIds.map((c) => split.captionToImage[c]!)),
    imageToCaptions: split.imageToCaptions.slice(0, n).map((caps) => caps.map((c) => remap.get(c)!)),
  };
}
