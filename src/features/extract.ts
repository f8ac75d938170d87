/**
 * Feature extraction for one (dataset split, modality, encoder), cached and resumable.
 *
 * Images are encoded in chunks (default 256 images); each finished chunk is written atomically to
 * `<file>.partial/`, so a killed run resumes at the first unfinished chunk. Chunks are spread over
 * worker threads (one tfjs instance each, on its share of the cores: util/pool).
 * When all chunks exist they are joined into the final file, the manifest is written last, and the
 * partial folder is removed.
 */
import { existsSync } from 'node:fs';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ready } from '../backend';
import type { ImageCaptionSplit } from '../data/dataset';
import { ConfigError, MissingFileError } from '../errors';
import { type EncoderEntry, EncoderPool, IMAGE_ENCODERS, TEXT_ENCODERS, lookup } from '../encoders/registry';
import type { ImageEncoder } from '../encoders/types';
import { ensureDir, writeJsonAtomic } from '../store/atomic';
import { withLock } from '../store/lock';
import { readSafetensors, writeSafetensors, writeSafetensorsChunked } from '../store/safetensors';
import type { ProgressSink } from '../util/progress';
import { runPool, threadCount } from '../util/pool';
import { type FeaturePaths, type Modality, checkCache, featurePaths, loadFeatures, readManifest, sourceHash } from './cache';
import { assertCacheMatches, isExternal, rebuildCommand } from './split-match';
import { FEATURES_FORMAT, type FeatureManifest } from './manifest';

export interface ExtractOptions {
  readonly split: ImageCaptionSplit;
  readonly modality: Modality;
  readonly encoder: string;
  /** folder holding `features/` (the project's `data/` by default) */
  readonly cacheDir: string;
  /** worker threads for image encoding; default: available cores, at most 2 */
  readonly workers?: number;
  /** images per resumable chunk */
  readonly chunkSize?: number;
  /** rebuild even when a valid cache exists */
  readonly force?: boolean;
  readonly onProgress?: ProgressSink;
  /** share loaded encoders across calls (the stage passes one); a private pool otherwise */
  readonly pool?: EncoderPool;
  /** hears a line when another process holds this target and this call waits */
  readonly log?: (line: string) => void;
}

export interface ExtractResult {
  readonly paths: FeaturePaths;
  readonly manifest: FeatureManifest;
  /** the cache was valid and nothing was computed */
  readonly reused: boolean;
  /** why an existing cache was not used, if one existed */
  readonly staleReason?: string;
  /** image chunks found finished from an earlier, interrupted run */
  readonly resumedChunks: number;
}

/** One unit of resumable image work. */
export interface ChunkTask {
  readonly index: number;
  readonly paths: readonly string[];
  readonly file: string;
  /** safetensors metadata that identifies the chunk's source, checked on resume */
  readonly meta: Readonly<Record<string, string>>;
}

/** Encode one chunk in encoder-sized batches and write it atomically. */
export async function encodeChunk(
  encoder: ImageEncoder,
  task: ChunkTask,
  onImages: (n: number) => void,
): Promise<void> {
  const out = new Float32Array(task.paths.length * encoder.dim);
  for (let i = 0; i < task.paths.length; i += encoder.batchSize) {
    const batch = task.paths.slice(i, i + encoder.batchSize);
    out.set(await encoder.encode(batch), i * encoder.dim);
    onImages(batch.length);
  }
  await writeSafetensors(task.file, { features: { shape: [task.paths.length, encoder.dim], data: out } }, task.meta);
}

async function chunkIsDone(task: ChunkTask): Promise<Float32Array | undefined> {
  if (!existsSync(task.file)) return undefined;
  try {
    const st = await readSafetensors(task.file, { requireDigest: true });
    const same = Object.entries(task.meta).every(([k, v]) => st.metadata[k] === v);
    const t = st.tensors.get('features');
    return same && t !== undefined && t.shape[0] === task.paths.length ? (t.data as Float32Array) : undefined;
  } catch {
    return undefined; // an unreadable partial chunk is simply recomputed
  }
}

async function extractImageMatrix(
  opts: ExtractOptions,
  paths: FeaturePaths,
  hash: string,
  version: string,
  dim: number,
): Promise<{ data: Float32Array; resumed: number }> {
  const { split } = opts;
  const chunkSize = opts.chunkSize ?? 256;
  const files = split.images.map((f) => join(split.imageDir, f));
  const tasks: ChunkTask[] = [];
  for (let start = 0, index = 0; start < files.length; start += chunkSize, index++) {
    const chunk = files.slice(start, start + chunkSize);
    tasks.push({
      index,
      paths: chunk,
      file: join(paths.partialDir, `chunk-${String(index).padStart(5, '0')}.safetensors`),
      meta: { sourceHash: hash, encoder: version, start: String(start), count: String(chunk.length) },
    });
  }
  await ensureDir(paths.partialDir);
  const done = await Promise.all(tasks.map(chunkIsDone));
  const todo = tasks.filter((_, k) => done[k] === undefined);
  let finished = files.length - todo.reduce((a, t) => a + t.paths.length, 0);
  const report = (n: number) => {
    finished += n;
    opts.onProgress?.({ label: `${split.dataset}/${split.split} images`, done: finished, total: files.length });
  };
  report(0);
  const workers = threadCount(opts.workers, todo.length);
  if (todo.length > 0) {
    if (workers === 1) {
      const pool = opts.pool ?? new EncoderPool();
      try {
        const encoder = await pool.image(opts.encoder);
        for (const t of todo) await encodeChunk(encoder, t, report);
      } finally {
        if (!opts.pool) await pool.dispose();
      }
    } else {
      await runPool(join(__dirname, 'worker.js'), todo, workers, (m: { images: number }) => report(m.images), { encoderId: opts.encoder });
    }
  }
  const data = new Float32Array(files.length * dim);
  for (const t of tasks) {
    const part = await chunkIsDone(t);
    if (part === undefined) throw new Error(`chunk ${t.file} was not written (a bug: please report it)`);
    data.set(part, Number(t.meta.start) * dim);
  }
  return { data, resumed: tasks.length - todo.length };
}

/**
 * Compute (or reuse) the features of one split and modality; returns where they are. The target is
 * locked while this runs: a second process waits, then finds the cache valid and reuses it.
 */
export async function extractFeatures(opts: ExtractOptions): Promise<ExtractResult> {
  await ready(); // library verbs pick the fastest backend themselves (wasm, not plain JS)
  const paths = featurePaths(opts.cacheDir, opts.split.dataset, opts.split.split, opts.modality, opts.encoder);
  const table = opts.modality === 'image' ? IMAGE_ENCODERS : TEXT_ENCODERS;
  const known = Object.hasOwn(table, opts.encoder);
  // imported features (an encoder the registry does not know, or a manifest that says external): checked
  // against the split's names and counts, never recomputed, no image read; --force cannot recompute them
  if (existsSync(paths.manifest) && (!known || !opts.force)) {
    const m = await readManifest(paths.manifest);
    if (isExternal(m, known)) {
      assertCacheMatches(paths, m, opts.split, opts.modality, true);
      if (!existsSync(paths.file)) throw new MissingFileError(paths.file, `imported features without their data file; rerun \`${rebuildCommand(m, true)}\``);
      return reuse(paths, m);
    }
  }
  if (!known) {
    throw new ConfigError(
      `unknown ${opts.modality} encoder "${opts.encoder}"; valid: ${Object.keys(table).join(', ')}, or features imported under that name ` +
        `(none at ${paths.manifest}: \`ptmst import-features --dataset ${opts.split.dataset} --split ${opts.split.split} --modality ${opts.modality} --encoder ${opts.encoder} --file FILE\`)`,
    );
  }
  const entry = lookup<EncoderEntry<unknown>>(table, `${opts.modality} encoder`, opts.encoder);
  const expect = { sourceHash: await sourceHash(opts.split, opts.modality), encoderId: opts.encoder, encoderVersion: entry.version() };
  // a valid cache is only read, without the lock (a read-only cache works); under the lock the check is made
  // again, since another process may have just finished the same features
  const check = await checkCache(paths, expect);
  if (check.status === 'valid' && !opts.force) return reuse(paths, check.manifest);
  return withLock(paths.file, 'features', () => extractLocked(opts, paths, entry.dim, expect), opts.log);
}

/** The cache, verified (checksum): a corrupted cache is an error, never used. */
async function reuse(paths: FeaturePaths, manifest: FeatureManifest): Promise<ExtractResult> {
  await loadFeatures(paths);
  return { paths, manifest, reused: true, resumedChunks: 0 };
}

async function extractLocked(
  opts: ExtractOptions,
  paths: FeaturePaths,
  dim: number,
  expect: { readonly sourceHash: string; readonly encoderId: string; readonly encoderVersion: string },
): Promise<ExtractResult> {
  const { split, modality } = opts;
  const { sourceHash: hash, encoderVersion: version } = expect;
  const check = await checkCache(paths, expect);
  if (check.status === 'valid' && !opts.force) return reuse(paths, check.manifest);
  const t0 = performance.now();
  let data: Float32Array;
  let resumed = 0;
  const count = modality === 'image' ? split.images.length : split.captions.length;
  if (modality === 'image') {
    ({ data, resumed } = await extractImageMatrix(opts, paths, hash, version, dim));
  } else {
    const pool = opts.pool ?? new EncoderPool();
    try {
      data = await (await pool.text(opts.encoder)).encode(split.captions);
    } finally {
      if (!opts.pool) await pool.dispose();
    }
    opts.onProgress?.({ label: `${split.dataset}/${split.split} captions`, done: count, total: count });
  }
  const sum = await writeSafetensorsChunked(
    paths.file,
    { features: { shape: [count, dim], data } },
    { dataset: split.dataset, split: split.split, modality, encoder: version },
  );
  const manifest: FeatureManifest = {
    format: FEATURES_FORMAT,
    dataset: split.dataset,
    split: split.split,
    modality,
    encoder: { id: opts.encoder, version },
    count,
    dim,
    sourceHash: hash,
    sha256: sum.sha256,
    bytes: sum.bytes,
    createdAt: new Date().toISOString(),
    wallSeconds: (performance.now() - t0) / 1000,
  };
  await writeJsonAtomic(paths.manifest, manifest);
  if (existsSync(paths.partialDir)) await rm(paths.partialDir, { recursive: true, force: true });
  return {
    paths,
    manifest,
    reused: false,
    resumedChunks: resumed,
    ...(check.status === 'stale' ? { staleReason: check.reason } : {}),
  };
}

/** Partial chunk files left by an interrupted extraction (for tests and `--json` summaries). */
export async function partialChunks(paths: FeaturePaths): Promise<string[]> {
  return existsSync(paths.partialDir) ? (await readdir(paths.partialDir)).filter((f) => f.endsWith('.safetensors')) : [];
}
