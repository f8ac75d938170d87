/**
 * Buffers on disk: a folder with one safetensors file per expert trajectory and a `manifest.json`.
 * An expert file holds `img` and `txt` ([snapshots, parameters] float32, parameters flattened in
 * PARAM_NAMES order) and, for trained experts, `retrieval` and `retrievalVal` ([snapshots, 7] float64:
 * IR@1/5/10, TR@1/5/10, r_mean of each snapshot on the test and validation splits). Every file is listed in the manifest with
 * its sha256; a file that does not match is an error naming it.
 *
 * `readBuffer` is the one read path of a buffer, for every consumer (distillation, `eval --full`, KD teachers,
 * coresets, analyses): the manifest's own digest (`sha256`, store/json.ts), every expert it promises
 * (`numExperts`: a missing entry is an error naming the manifest, never a score over the others), each file's
 * checksum and content digest, finite parameters and scores, and retrieval scores that are percentages in
 * [0, 100]. Anything else is one CorruptFileError naming the file (exit 3) with what to do about it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RECALL_KEYS, type Retrieval } from '../model/retrieval';
import { type DualShape, dualShape } from '../model/dual';
import { paramCount } from '../model/head';
import { unusable } from '../errors';
import { sha256 } from '../store/atomic';
import { readJsonArtefact, writeJsonArtefact } from '../store/json';
import { CorruptFileError, type TensorRecord, decodeSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';

export const BUFFER_FORMAT = 'ptmst.buffer/1';

export const ExpertEntry = z.object({
  index: z.number().int().nonnegative(),
  file: z.string(),
  sha256: z.string(),
  bytes: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  wallSeconds: z.number().nonnegative(),
});
export type ExpertEntry = z.infer<typeof ExpertEntry>;

export const BufferManifest = z.object({
  format: z.literal(BUFFER_FORMAT),
  kind: z.enum(['experts', 'convexified']),
  dataset: z.string(),
  imageEncoder: z.string(),
  textEncoder: z.string(),
  dims: z.object({ img: z.number().int().positive(), txt: z.number().int().positive(), out: z.number().int().positive() }),
  /** snapshots per trajectory minus one (10 for the reference experts) */
  epochs: z.number().int().positive(),
  seed: z.number().int().nonnegative(),
  /** the training features the experts saw (FeatureSet.digest of the train split) */
  features: z.string().optional(),
  /** the expert-training configuration (or, for a convexified buffer, its source's) */
  config: z.record(z.string(), z.unknown()),
  /** for convexified buffers: the source buffer folder and the slice [start, end) */
  source: z.object({ buffer: z.string(), start: z.number().int(), end: z.number().int() }).optional(),
  /** experts promised (0 … numExperts − 1); `experts` lists the finished ones (all of them, once the buffer is complete) */
  numExperts: z.number().int().positive(),
  experts: z
    .array(ExpertEntry)
    .refine((es) => new Set(es.map((e) => e.index)).size === es.length, { message: 'an expert index is listed twice' })
    .refine((es) => es.every((e) => e.file === expertFileName(e.index)), { message: 'an expert file is not named expert-<index>.safetensors' }),
}).refine((m) => m.experts.every((e) => e.index < m.numExperts), { message: 'an expert index is not below numExperts', path: ['experts'] });
export type BufferManifest = z.infer<typeof BufferManifest>;

export interface Trajectory {
  readonly shape: DualShape;
  /** snapshots × parameters, row-major */
  readonly img: Float32Array;
  readonly txt: Float32Array;
  readonly snapshots: number;
  /** per snapshot, on the test split (trained experts only) */
  readonly retrieval: readonly Retrieval[];
  /** per snapshot, on the validation split (trained experts only) */
  readonly retrievalVal: readonly Retrieval[];
  /** the file it was read from (named in errors about it, such as a teacher whose matching loss is NaN) */
  readonly file?: string;
}

export const retrievalTensor = (rs: readonly Retrieval[]) => ({
  shape: [rs.length, RECALL_KEYS.length + 1],
  data: Float64Array.from(rs.flatMap((r) => [...RECALL_KEYS.map((k) => r[k]), r.rMean])),
});

/**
 * The rows of a stored retrieval tensor, checked: every score is a percentage in [0, 100] (NaN is refused
 * by the reader already); anything else is an error naming the file and the tensor.
 */
export function retrievalRows(t: { shape: readonly number[]; data: ArrayLike<number> } | undefined, file: string, name: string): Retrieval[] {
  if (!t) return [];
  for (let k = 0; k < t.data.length; k++) {
    const v = t.data[k]!;
    if (!(v >= 0 && v <= 100)) {
      throw new CorruptFileError(file, `${name} holds ${v} (element ${k}), outside [0, 100]: retrieval scores are percentages`);
    }
  }
  const w = RECALL_KEYS.length + 1;
  return Array.from({ length: t.shape[0]! }, (_, i) => {
    const row = Array.from({ length: w }, (_, j) => t.data[i * w + j]!);
    return { ...Object.fromEntries(RECALL_KEYS.map((k, j) => [k, row[j]!])), rMean: row[w - 1]! } as Retrieval;
  });
}

export const manifestPath = (dir: string) => join(dir, 'manifest.json');
export const expertFileName = (i: number) => `expert-${String(i).padStart(3, '0')}.safetensors`;

/** What to do about a buffer that fails verification. */
const remedy = (m: Pick<BufferManifest, 'kind'>) =>
  m.kind === 'convexified' ? 'rerun ptmst convexify to rebuild it' : 'rerun ptmst buffer with --force (it verifies every expert, retrains the ones that fail and rewrites the manifest)';

/**
 * Read and verify a buffer's manifest (its schema and digest). `unverified`: the digest is not checked
 * (`ptmst buffer --force`, which verifies every expert file itself before it rewrites the manifest).
 */
export async function readBufferManifest(dir: string, opts: { unverified?: boolean } = {}): Promise<BufferManifest> {
  const path = manifestPath(dir);
  if (!existsSync(path)) throw new CorruptFileError(path, 'buffer manifest not found (run ptmst buffer first)');
  return readJsonArtefact(path, BufferManifest, 'buffer manifest', { remedy, ...(opts.unverified ? { unverified: true } : {}) });
}

export async function writeBufferManifest(dir: string, m: BufferManifest): Promise<void> {
  await writeJsonArtefact(manifestPath(dir), { ...m, experts: [...m.experts].sort((a, b) => a.index - b.index) });
}

export function bufferShape(m: BufferManifest): DualShape {
  return dualShape(m.dims.img, m.dims.txt, m.dims.out);
}

/** Write one trajectory file; returns its manifest entry (without seed and time). */
export async function writeTrajectory(
  dir: string,
  index: number,
  t: Omit<Trajectory, 'shape'>,
  metadata: Record<string, string>,
): Promise<Pick<ExpertEntry, 'index' | 'file' | 'sha256' | 'bytes'>> {
  const file = expertFileName(index);
  const pImg = t.img.length / t.snapshots;
  const pTxt = t.txt.length / t.snapshots;
  const tensors: TensorRecord = {
    img: { shape: [t.snapshots, pImg], data: t.img },
    txt: { shape: [t.snapshots, pTxt], data: t.txt },
  };
  if (t.retrieval.length > 0) tensors.retrieval = retrievalTensor(t.retrieval);
  if (t.retrievalVal.length > 0) tensors.retrievalVal = retrievalTensor(t.retrievalVal);
  const buf = await writeSafetensors(join(dir, file), tensors, metadata);
  return { index, file, sha256: sha256(buf), bytes: buf.length };
}

/** Read and verify one expert's trajectory. */
export async function readTrajectory(dir: string, m: BufferManifest, entry: ExpertEntry): Promise<Trajectory> {
  const path = join(dir, entry.file);
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new CorruptFileError(path, `cannot read (${(e as Error).message})`);
  }
  if (buf.length !== entry.bytes || sha256(buf) !== entry.sha256) {
    throw new CorruptFileError(path, `checksum mismatch with ${manifestPath(dir)}: truncated or corrupted`);
  }
  // ptmst wrote every expert file with its content digest: one without it is from an older version (finite values checked here too)
  const st = decodeSafetensors(buf, path, { requireDigest: true });
  const shape = bufferShape(m);
  const img = tensorOf(st, 'img', path);
  const txt = tensorOf(st, 'txt', path);
  const snapshots = m.epochs + 1;
  if (
    img.dtype !== 'F32' || txt.dtype !== 'F32' || img.shape.length !== 2 || txt.shape.length !== 2 ||
    img.shape[0] !== snapshots || txt.shape[0] !== snapshots ||
    img.shape[1] !== paramCount(shape.img) || txt.shape[1] !== paramCount(shape.txt)
  ) {
    throw new CorruptFileError(path, `trajectory shape img[${img.shape}] txt[${txt.shape}] does not match the manifest dims`);
  }
  for (const name of ['retrieval', 'retrievalVal']) {
    const r = st.tensors.get(name);
    if (r && (r.dtype !== 'F64' || r.shape.length !== 2 || r.shape[0] !== snapshots || r.shape[1] !== RECALL_KEYS.length + 1)) {
      throw new CorruptFileError(path, `${name} has shape [${r.shape}], expected [${snapshots}, ${RECALL_KEYS.length + 1}]`);
    }
  }
  return {
    shape,
    img: img.data as Float32Array,
    txt: txt.data as Float32Array,
    snapshots,
    retrieval: retrievalRows(st.tensors.get('retrieval'), path, 'retrieval'),
    retrievalVal: retrievalRows(st.tensors.get('retrievalVal'), path, 'retrievalVal'),
    file: path,
  };
}

/**
 * Experts 0 … N−1 of a buffer, N = min(`limit`, the experts its manifest promises), in index order, each
 * verified. A promised expert the manifest does not list is an error naming the manifest (an unfinished
 * buffer, or an edited manifest), never a result over the others.
 */
export async function readBuffer(dir: string, limit = Infinity): Promise<{ manifest: BufferManifest; trajectories: Trajectory[] }> {
  const manifest = await readBufferManifest(dir);
  const wanted = Math.min(limit, manifest.numExperts);
  const experts = manifest.experts.filter((e) => e.index < wanted);
  if (experts.length < wanted) {
    const listed = new Set(experts.map((e) => e.index));
    const missing = Array.from({ length: wanted }, (_, i) => i).filter((i) => !listed.has(i));
    const shown = missing.length > 5 ? `${missing.slice(0, 5).join(', ')}, …` : missing.join(', ');
    throw new CorruptFileError(
      manifestPath(dir),
      `promises ${manifest.numExperts} experts and lists ${manifest.experts.length} (expert${missing.length > 1 ? 's' : ''} ${shown} missing): ` +
        `an unfinished buffer (run ptmst buffer to finish it) or an edited manifest (${remedy(manifest)})`,
    );
  }
  const trajectories = await Promise.all(
    experts.map((e) => readTrajectory(dir, manifest, e).catch((err: unknown) => unusable(err, join(dir, e.file), remedy(manifest)))),
  );
  return { manifest, trajectories };
}
