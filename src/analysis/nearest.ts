/**
 * What a synthetic pair looks like: its nearest real training photos (by cosine similarity of its image
 * feature to the real image features) and nearest real captions (its text feature against the real caption
 * features). Exact search, float64 dot products, ties broken by the lower index.
 */
import type { ImageCaptionSplit } from '../data/dataset';
import type { SyntheticSet } from '../distill/synthetic-file';
import type { FeatureSet } from '../features/feature-set';

export interface Neighbour {
  readonly index: number;
  readonly cosine: number;
}

/** The `k` rows of `bank` (n × dim, row-major) most cosine-similar to each row of `queries` (m × dim). */
export function nearestRows(queries: Float32Array, bank: Float32Array, dim: number, k: number): Neighbour[][] {
  if (queries.length % dim !== 0 || bank.length % dim !== 0) throw new Error(`nearestRows: lengths ${queries.length} and ${bank.length} are not multiples of dim ${dim}`);
  const norms = (a: Float32Array) =>
    Float64Array.from({ length: a.length / dim }, (_, i) => {
      let s = 0;
      for (let j = 0; j < dim; j++) s += a[i * dim + j]! ** 2;
      return Math.sqrt(s);
    });
  const qn = norms(queries);
  const bn = norms(bank);
  return Array.from(qn, (qNorm, q) => {
    const scored: Neighbour[] = Array.from(bn, (bNorm, b) => {
      let dot = 0;
      for (let j = 0; j < dim; j++) dot += queries[q * dim + j]! * bank[b * dim + j]!;
      return { index: b, cosine: qNorm === 0 || bNorm === 0 ? 0 : dot / (qNorm * bNorm) };
    });
    return scored.sort((a, b) => b.cosine - a.cosine || a.index - b.index).slice(0, k);
  });
}

export interface SyntheticNeighbours {
  /** phase (0-based) and row of the synthetic pair */
  readonly phase: number;
  readonly row: number;
  /** nearest real photos: file (absolute) and cosine */
  readonly images: readonly { readonly file: string; readonly image: number; readonly cosine: number }[];
  /** nearest real captions: text as written and cosine */
  readonly captions: readonly { readonly text: string; readonly caption: number; readonly cosine: number }[];
}

/**
 * For the chosen synthetic pairs (`phase`, `row`), the `k` nearest real training photos and captions.
 * `features` and `split` must be the same split (their sizes are checked).
 */
export function syntheticNeighbours(
  set: SyntheticSet,
  features: FeatureSet,
  split: ImageCaptionSplit,
  pairs: readonly { readonly phase: number; readonly row: number }[],
  k = 3,
): SyntheticNeighbours[] {
  if (features.numImages !== split.images.length || features.numCaptions !== split.captions.length) {
    throw new Error(`syntheticNeighbours: features (${features.numImages} images) and split ${split.dataset}/${split.split} (${split.images.length}) differ`);
  }
  if (features.dImg !== set.dImg || features.dTxt !== set.dTxt) {
    throw new Error(`syntheticNeighbours: the synthetic set's dims ${set.dImg}/${set.dTxt} are not the features' ${features.dImg}/${features.dTxt}`);
  }
  return pairs.map(({ phase, row }) => {
    const p = set.phases[phase];
    if (!p || row < 0 || row >= p.n) throw new Error(`syntheticNeighbours: no synthetic pair ${row} in phase ${phase}`);
    const x = p.x.subarray(row * set.dImg, (row + 1) * set.dImg);
    const y = p.y.subarray(row * set.dTxt, (row + 1) * set.dTxt);
    const [images] = nearestRows(x, features.img, set.dImg, k);
    const [captions] = nearestRows(y, features.txt, set.dTxt, k);
    return {
      phase,
      row,
      images: images!.map((n) => ({ file: `${split.imageDir}/${split.images[n.index]}`, image: n.index, cosine: n.cosine })),
      captions: captions!.map((n) => ({ text: split.rawCaptions[n.index]!, caption: n.index, cosine: n.cosine })),
    };
  });
}
