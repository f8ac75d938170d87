/**
 * Do the features carry meaning? For each image, its nearest other image by cosine similarity of the
 * encoder features: how often do their captions share a content word, against random pairs.
 */
import type { ImageCaptionSplit } from '../data/dataset';

/** Function words, colours, counts and generic verbs: what "shares a content word" should ignore. */
const NOT_NOUNS = new Set(
  ('a an the and or of in on at to with while his her their its is are be being was near into onto from by for ' +
    'as up down out over under through some one two three four five several many other another each this that ' +
    'there these those it he she they them who which what where something someone very big small large little ' +
    'black white red blue green yellow brown orange pink purple gray grey dark light colorful young old front ' +
    'back side top next behind along across around off has have looking looks look stands standing sits sitting ' +
    'holding holds wearing wears walks walking runs running plays playing jumping jumps')
    .split(' '),
);

export function contentWords(caption: string): Set<string> {
  return new Set(caption.split(' ').filter((w) => w.length > 2 && !NOT_NOUNS.has(w) && !w.endsWith('ing')));
}

export interface NeighbourAgreement {
  readonly images: number;
  /** fraction of images whose nearest neighbour shares a content word with them */
  readonly nearest: number;
  /** the same over all pairs of distinct images (chance level, exact) */
  readonly random: number;
}

/** `features`: row-major images × dim, rows in `split.images` order. */
export function neighbourAgreement(split: ImageCaptionSplit, features: Float32Array, dim: number): NeighbourAgreement {
  const n = split.images.length;
  const norms = Array.from({ length: n }, (_, i) => {
    let s = 0;
    for (let k = 0; k < dim; k++) s += features[i * dim + k]! ** 2;
    return Math.sqrt(s) || 1;
  });
  const words = split.imageToCaptions.map((caps) => {
    const set = new Set<string>();
    for (const c of caps) for (const w of contentWords(split.captions[c]!)) set.add(w);
    return set;
  });
  const share = (i: number, j: number) => [...words[i]!].some((w) => words[j]!.has(w));
  let nearest = 0;
  let random = 0;
  for (let i = 0; i < n; i++) {
    let best = -1;
    let shared = 0;
    let bestSim = -Infinity;
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      if (share(i, j)) shared++;
      let dot = 0;
      for (let k = 0; k < dim; k++) dot += features[i * dim + k]! * features[j * dim + k]!;
      const sim = dot / (norms[i]! * norms[j]!);
      if (sim > bestSim) {
        bestSim = sim;
        best = j;
      }
    }
    if (share(i, best)) nearest++;
    random += shared / (n - 1);
  }
  return { images: n, nearest: nearest / n, random: random / n };
}
