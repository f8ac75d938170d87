/** A split as the trainable stages see it: image and caption feature matrices plus the retrieval maps. */
import type { ImageCaptionSplit } from '../data/dataset';
import type { RetrievalSplit } from '../model/retrieval';
import { sha256 } from '../store/atomic';
import { type FeaturePaths, featurePaths, loadFeatures } from './cache';

/** The matrices and caption maps (RetrievalSplit: caption j shows image captionToImage[j]), and their origin. */
export interface FeatureSet extends RetrievalSplit {
  readonly dataset: string;
  readonly split: string;
  readonly imageEncoder: string;
  readonly textEncoder: string;
  /** what the numbers are: a hash of both feature files' checksums (artefact keys include it) */
  readonly digest: string;
}

/** The three verified splits a training stage reads (loaded once by the stage, cloned to its workers). */
export interface SplitSets {
  readonly train: FeatureSet;
  readonly val: FeatureSet;
  readonly test: FeatureSet;
}

export function featureSetPaths(cacheDir: string, dataset: string, split: string, imageEncoder: string, textEncoder: string): {
  img: FeaturePaths;
  txt: FeaturePaths;
} {
  return {
    img: featurePaths(cacheDir, dataset, split, 'image', imageEncoder),
    txt: featurePaths(cacheDir, dataset, split, 'text', textEncoder),
  };
}

/** Load cached features of one split (checksums verified) and attach the split's caption maps. */
export async function loadFeatureSet(
  cacheDir: string,
  split: ImageCaptionSplit,
  imageEncoder: string,
  textEncoder: string,
): Promise<FeatureSet> {
  const p = featureSetPaths(cacheDir, split.dataset, split.split, imageEncoder, textEncoder);
  const [img, txt] = await Promise.all([loadFeatures(p.img), loadFeatures(p.txt)]);
  if (img.count !== split.images.length || txt.count !== split.captions.length) {
    throw new Error(
      `${p.img.file}: features hold ${img.count} images / ${txt.count} captions, the split has ` +
        `${split.images.length} / ${split.captions.length}; rerun ptmst features`,
    );
  }
  return {
    dataset: split.dataset,
    split: split.split,
    imageEncoder,
    textEncoder,
    numImages: img.count,
    numCaptions: txt.count,
    dImg: img.dim,
    dTxt: txt.dim,
    img: img.data,
    txt: txt.data,
    captionToImage: split.captionToImage,
    imageToCaptions: split.imageToCaptions,
    digest: sha256(`${img.manifest.sha256}\n${txt.manifest.sha256}`),
  };
}
