/**
 * Image–text retrieval metrics (SPEC §6), computed exactly over the whole split.
 * IR@K (text→image): for each caption, is its image among the K best-scoring images.
 * TR@K (image→text): for each image, is the best-ranked of its captions among the K best captions.
 * Ties rank as in the reference's `np.argsort(score)[::-1]` with a stable sort: among equal scores the
 * item with the larger index comes first. A NaN score ranks last, never first: a NaN target is ranked
 * below every other item, a NaN competitor below every number, so a diverged student scores 0, never
 * above chance (NaN compares false with everything, and a `>` test alone would rank it first).
 */
import { ready, tf } from '../backend';
import { withValues } from '../backend/host-tensor';
import { NonFiniteError } from '../errors';
import type { DualParams } from './dual';
import { embed } from './head';
import { mm } from './linalg';
import { finiteArray } from './finite';

export const RECALL_KEYS = ['ir1', 'ir5', 'ir10', 'tr1', 'tr5', 'tr10'] as const;
export type RecallKey = (typeof RECALL_KEYS)[number];
export type Retrieval = Readonly<Record<RecallKey | 'rMean', number>>;

/** Whether `a` ranks before `b` (higher score, ties to the larger index; NaN after every number). */
const before = (a: number, ia: number, b: number, ib: number): boolean =>
  Number.isNaN(b) ? !Number.isNaN(a) || ia > ib : a > b || (a === b && ia > ib);

/** 0-based ranks: each caption's image among all images (IR), each image's best-ranked caption among all captions (TR). */
export interface RetrievalRanks {
  readonly ir: Int32Array;
  readonly tr: Int32Array;
}

/**
 * Ranks by the rule of the module comment, in one row-major pass over `scores` (images × captions). Per image row,
 * every caption's IR rank gains the images that outrank its own, and the image's TR rank counts the captions that
 * outrank its best own caption. Written without branches on the scores (random scores make `if (v > t)` a coin flip
 * the CPU mispredicts); NaN competitors fail both tests of a comparison, so they rank below every number, and a NaN
 * target is put last afterwards. 1,000 × 5,000: 46 → 32 ms against separate IR and TR passes.
 */
export function retrievalRanks(
  scores: Float32Array,
  numImages: number,
  captionToImage: Int32Array,
  imageToCaptions: readonly (readonly number[])[],
): RetrievalRanks {
  const numCaptions = captionToImage.length;
  if (scores.length !== numImages * numCaptions) {
    throw new Error(`scores hold ${scores.length} values, expected ${numImages} × ${numCaptions}`);
  }
  const ir = new Int32Array(numCaptions);
  const tr = new Int32Array(numImages);
  const target = new Float32Array(numCaptions);
  for (let j = 0; j < numCaptions; j++) target[j] = scores[captionToImage[j]! * numCaptions + j]!;
  for (let i = 0; i < numImages; i++) {
    const row = i * numCaptions;
    // the image's best-ranked caption is the own caption that comes first in the ranking order
    let first = imageToCaptions[i]![0]!;
    for (const j of imageToCaptions[i]!) if (before(scores[row + j]!, j, scores[row + first]!, first)) first = j;
    const s = scores[row + first]!;
    let rank = 0;
    for (let j = 0; j < numCaptions; j++) {
      const v = scores[row + j]!;
      const t = target[j]!;
      ir[j] += +(v > t) + +(v === t && i > captionToImage[j]!);
      rank += +(v > s) + +(v === s && j > first);
    }
    tr[i] = Number.isNaN(s) ? numCaptions - 1 : rank;
  }
  for (let j = 0; j < numCaptions; j++) if (Number.isNaN(target[j]!)) ir[j] = numImages - 1;
  return { ir, tr };
}

/** `scores`: row-major images × captions similarity. */
export function retrievalFromScores(
  scores: Float32Array,
  numImages: number,
  captionToImage: Int32Array,
  imageToCaptions: readonly (readonly number[])[],
): Retrieval {
  const { ir, tr } = retrievalRanks(scores, numImages, captionToImage, imageToCaptions);
  const at = (ranks: Int32Array, k: number) => (100 * ranks.filter((r) => r < k).length) / ranks.length;
  const r = { ir1: at(ir, 1), ir5: at(ir, 5), ir10: at(ir, 10), tr1: at(tr, 1), tr5: at(tr, 5), tr10: at(tr, 10) };
  return { ...r, rMean: RECALL_KEYS.reduce((a, k) => a + r[k], 0) / RECALL_KEYS.length };
}

/** What retrieval needs of a split (a FeatureSet is one): both feature matrices and the caption maps. */
export interface RetrievalSplit {
  readonly numImages: number;
  readonly numCaptions: number;
  readonly dImg: number;
  readonly dTxt: number;
  /** row-major numImages × dImg and numCaptions × dTxt */
  readonly img: Float32Array;
  readonly txt: Float32Array;
  readonly captionToImage: Int32Array;
  readonly imageToCaptions: readonly (readonly number[])[];
}

/** Embed a split with trained heads and score retrieval over it. */
export async function evaluateRetrieval(theta: DualParams, data: RetrievalSplit, label = 'retrieval'): Promise<Retrieval> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const scores = tf.tidy(() => {
    const u = embed(theta.img, tf.tensor2d(data.img, [data.numImages, data.dImg]));
    const v = embed(theta.txt, tf.tensor2d(data.txt, [data.numCaptions, data.dTxt]));
    return mm(u, v, false, true);
  });
  try {
    return await withValues(scores, (values) => {
      // finite parameters can still overflow in the forward pass: a score that is not a number is never ranked
      if (!finiteArray(values)) throw new NonFiniteError(`${label}: retrieval scores are NaN or infinite (the heads overflow); stopped`);
      return retrievalFromScores(values, data.numImages, data.captionToImage, data.imageToCaptions);
    });
  } finally {
    scores.dispose();
  }
}
