/** A split as the trainable stages see it: image and caption feature matrices plus the retrieval maps. */
import type { ImageCaptionSplit } from '../data/dataset';
import { IMAGE_ENCODERS, TEXT_ENCODERS } from '../encoders/registry';
import { ConfigError, CorruptFileError } from '../errors';
import type { RetrievalSplit } from '../model/retrieval';
import { sha256 } from '../store/atomic';
import { deriveSeed, permutation, rng } from '../util/random';
import { type FeaturePaths, featurePaths, loadFeatures, readManifest } from './cache';
import { assertCacheMatches, isExternal } from './split-match';

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
  // the manifests first (cheap): a cache made for other inputs is "stale cache … rerun …", before any data is read
  for (const [paths, modality, table, id] of [
    [p.img, 'image', IMAGE_ENCODERS, imageEncoder],
    [p.txt, 'text', TEXT_ENCODERS, textEncoder],
  ] as const) {
    const m = await readManifest(paths.manifest);
    assertCacheMatches(paths, m, split, modality, isExternal(m, Object.hasOwn(table, id)));
  }
  const [img, txt] = await Promise.all([loadFeatures(p.img), loadFeatures(p.txt)]);
  if (img.count !== split.images.length || txt.count !== split.captions.length) {
    throw new CorruptFileError(
      p.img.file,
      `features hold ${img.count} images / ${txt.count} captions, the split has ` +
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

/**
 * The images of a split a `trainFraction` keeps: the first ⌈fraction · n⌉ of one fixed permutation (its seed
 * is part of the definition, not of any config), in their original order, so 25% ⊂ 50% ⊂ 100%.
 */
export function fractionImages(numImages: number, fraction: number): Int32Array {
  if (!(fraction > 0 && fraction <= 1)) throw new ConfigError(`data.trainFraction: ${fraction} is not in (0, 1]`);
  const keep = Math.ceil(fraction * numImages);
  return permutation(rng(deriveSeed(0, 'train-fraction')), numImages).slice(0, keep).sort();
}

/**
 * A feature set restricted to some of its images, each with all its captions (rows copied, caption maps
 * renumbered); its digest names the selection, so every artefact keyed on it is another artefact.
 */
export function subsetImages(set: FeatureSet, images: Int32Array, tag: string): FeatureSet {
  const captions = Array.from(images, (i) => set.imageToCaptions[i] ?? []).flat();
  const img = sharedFloat32(images.length * set.dImg);
  images.forEach((i, k) => img.set(set.img.subarray(i * set.dImg, (i + 1) * set.dImg), k * set.dImg));
  const txt = sharedFloat32(captions.length * set.dTxt);
  captions.forEach((c, k) => txt.set(set.txt.subarray(c * set.dTxt, (c + 1) * set.dTxt), k * set.dTxt));
  const imageToCaptions: number[][] = [];
  let next = 0;
  for (const i of images) imageToCaptions.push((set.imageToCaptions[i] ?? []).map(() => next++));
  return {
    ...set,
    numImages: images.length,
    numCaptions: captions.length,
    img,
    txt,
    captionToImage: Int32Array.from(imageToCaptions.flatMap((caps, k) => caps.map(() => k))),
    imageToCaptions,
    digest: sha256(`${set.digest}\n${tag}`),
  };
}

/** A zeroed Float32Array on a SharedArrayBuffer: worker threads given a feature set share its rows, uncopied. */
export function sharedFloat32(length: number): Float32Array {
  return new Float32Array(new SharedArrayBuffer(length * Float32Array.BYTES_PER_ELEMENT));
}
