/**
 * A planted-structure data set at any scale, for the scale benchmark and memory tests: N image–caption pairs
 * in `clusters` paired Gaussian clusters (pair i belongs to cluster i mod clusters; its image row is the
 * cluster's image centre plus noise, its caption row the cluster's text centre plus noise), so retrieval is
 * learnable and chance is known. Written as the CC3M data set (`<dataRoot>/cc3m/metadata.json`, no image
 * files: they are needed only to compute features) with its features straight into the cache format
 * (`<cacheDir>/features/cc3m/<split>.<modality>.<encoder>`), so `ptmst buffer`, `distill` and `eval` read it
 * with `--dataset cc3m --image-encoder planted-img --text-encoder planted-txt`. Seeded: the same options give
 * the same bytes.
 */
import { join } from 'node:path';
import { cc3mSplitSizes } from '../data/cc3m';
import { ensureDir, writeAtomicChunks, writeJsonAtomic } from '../store/atomic';
import { writeSafetensorsChunked } from '../store/safetensors';
import { deriveSeed, normal, rng } from '../util/random';
import { featurePaths, type Modality } from './cache';
import { sharedFloat32 } from './feature-set';
import { FEATURES_FORMAT, type FeatureManifest } from './manifest';

export const PLANTED_DATASET = 'cc3m';
export const PLANTED_ENCODERS = { image: 'planted-img', text: 'planted-txt' } as const;

export interface PlantedOptions {
  readonly dataRoot: string;
  readonly cacheDir: string;
  /** pairs in all splits together (record-order CC3M split: min(1000, N/10) each for val and test) */
  readonly pairs: number;
  readonly dImg: number;
  readonly dTxt: number;
  readonly clusters?: number;
  /** noise standard deviation per coordinate, relative to the centres' (1) */
  readonly noise?: number;
  readonly seed?: number;
  /** bytes per write (tests use a few) */
  readonly chunkBytes?: number;
}

export interface PlantedResult {
  readonly splits: Readonly<Record<'train' | 'val' | 'test', number>>;
  /** bytes of all feature files written */
  readonly featureBytes: number;
}

/** Rows `from`..`from + count` of one modality: centre of cluster (i mod clusters) plus noise, float32. */
function plantedRows(o: Required<Omit<PlantedOptions, 'chunkBytes'>>, modality: Modality, from: number, count: number): Float32Array {
  const dim = modality === 'image' ? o.dImg : o.dTxt;
  const centres = new Float32Array(o.clusters * dim);
  const rc = rng(deriveSeed(o.seed, 'planted-centres', modality));
  for (let k = 0; k < centres.length; k++) centres[k] = normal(rc) / Math.sqrt(dim);
  const out = sharedFloat32(count * dim);
  const rn = rng(deriveSeed(o.seed, 'planted-noise', modality, from));
  const s = o.noise / Math.sqrt(dim);
  for (let i = 0; i < count; i++) {
    const c = ((from + i) % o.clusters) * dim;
    const row = i * dim;
    for (let d = 0; d < dim; d++) out[row + d] = centres[c + d]! + s * normal(rn);
  }
  return out;
}

/** Write the planted data set (annotations and the three splits' feature files with manifests). */
export async function writePlanted(opts: PlantedOptions): Promise<PlantedResult> {
  const o = { clusters: 100, noise: 1, seed: 0, ...opts };
  const { chunkBytes, ...gen } = o;
  const splits = cc3mSplitSizes(o.pairs, 'holdout');
  const dir = join(o.dataRoot, PLANTED_DATASET);
  await ensureDir(dir);
  // metadata.json written record by record (600k records would be one large string otherwise)
  function* records(): Generator<Uint8Array> {
    yield Buffer.from('[\n');
    for (let i = 0; i < o.pairs; i++) {
      yield Buffer.from(`${i > 0 ? ',\n' : ''}{"id":"p${i}","image":"p${i}.jpg","caption":"pair ${i} of cluster ${i % o.clusters}"}`);
    }
    yield Buffer.from('\n]\n');
  }
  await writeAtomicChunks(join(dir, 'metadata.json'), records());
  // the split named explicitly (splits.json), so it holds whatever the reader's default split and test cap are
  const ids = (from: number, n: number) => Array.from({ length: n }, (_, k) => `"p${from + k}"`).join(',');
  await writeAtomicChunks(join(dir, 'splits.json'), [
    Buffer.from(`{"train":[${ids(0, splits.train)}],"val":[${ids(splits.train, splits.val)}],"test":[${ids(splits.train + splits.val, splits.test)}]}\n`),
  ]);
  let featureBytes = 0;
  let from = 0;
  for (const split of ['train', 'val', 'test'] as const) {
    const count = splits[split];
    for (const modality of ['image', 'text'] as const) {
      const t0 = performance.now();
      const dim = modality === 'image' ? o.dImg : o.dTxt;
      const encoder = PLANTED_ENCODERS[modality];
      const paths = featurePaths(o.cacheDir, PLANTED_DATASET, split, modality, encoder);
      const data = plantedRows(gen, modality, from, count);
      const version = `${encoder}@clusters=${o.clusters},noise=${o.noise},seed=${o.seed}`;
      const sum = await writeSafetensorsChunked(
        paths.file,
        { features: { shape: [count, dim], data } },
        { dataset: PLANTED_DATASET, split, modality, encoder: version },
        chunkBytes === undefined ? {} : { chunkBytes },
      );
      const manifest: FeatureManifest = {
        format: FEATURES_FORMAT,
        dataset: PLANTED_DATASET,
        split,
        modality,
        encoder: { id: encoder, version },
        count,
        dim,
        sourceHash: `planted:${o.pairs}:${from}`,
        sha256: sum.sha256,
        bytes: sum.bytes,
        createdAt: new Date().toISOString(),
        wallSeconds: (performance.now() - t0) / 1000,
      };
      await writeJsonAtomic(paths.manifest, manifest);
      featureBytes += sum.bytes;
    }
    from += count;
  }
  return { splits, featureBytes };
}
