/**
 * Buffers on disk: a folder with one safetensors file per expert trajectory and a `manifest.json`.
 * An expert file holds `img` and `txt` ([snapshots, parameters] float32, parameters flattened in
 * PARAM_NAMES order) and, for trained experts, `retrieval` and `retrievalVal` ([snapshots, 7] float64:
 * IR@1/5/10, TR@1/5/10, r_mean of each snapshot on the test and validation splits). Every file is listed in the manifest with
 * its sha256; a file that does not match is an error naming it.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { RECALL_KEYS, type Retrieval } from '../model/retrieval';
import { type DualShape, dualShape } from '../model/dual';
import { paramCount } from '../model/head';
import { sha256, writeJsonAtomic } from '../store/atomic';
import { readJsonFile } from '../store/json';
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
  /** experts planned; `experts` lists the finished ones */
  numExperts: z.number().int().positive(),
  experts: z
    .array(ExpertEntry)
    .refine((es) => new Set(es.map((e) => e.index)).size === es.length, { message: 'an expert index is listed twice' })
    .refine((es) => es.every((e) => e.file === expertFileName(e.index)), { message: 'an expert file is not named expert-<index>.safetensors' }),
});
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
}

export const retrievalTensor = (rs: readonly Retrieval[]) => ({
  shape: [rs.length, RECALL_KEYS.length + 1],
  data: Float64Array.from(rs.flatMap((r) => [...RECALL_KEYS.map((k) => r[k]), r.rMean])),
});

export function retrievalRows(t: { shape: readonly number[]; data: ArrayLike<number> } | undefined): Retrieval[] {
  if (!t) return [];
  const w = RECALL_KEYS.length + 1;
  return Array.from({ length: t.shape[0]! }, (_, i) => {
    const row = Array.from({ length: w }, (_, j) => t.data[i * w + j]!);
    return { ...Object.fromEntries(RECALL_KEYS.map((k, j) => [k, row[j]!])), rMean: row[w - 1]! } as Retrieval;
  });
}

export const manifestPath = (dir: string) => join(dir, 'manifest.json');
export const expertFileName = (i: number) => `expert-${String(i).padStart(3, '0')}.safetensors`;

export async function readBufferManifest(dir: string): Promise<BufferManifest> {
  const path = manifestPath(dir);
  if (!existsSync(path)) throw new CorruptFileError(path, 'buffer manifest not found (run ptmst buffer first)');
  return readJsonFile(path, BufferManifest, 'buffer manifest');
}

export async function writeBufferManifest(dir: string, m: BufferManifest): Promise<void> {
  await writeJsonAtomic(manifestPath(dir), { ...m, experts: [...m.experts].sort((a, b) => a.index - b.index) });
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
  const st = decodeSafetensors(buf, path);
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
    retrieval: retrievalRows(st.tensors.get('retrieval')),
    retrievalVal: retrievalRows(st.tensors.get('retrievalVal')),
  };
}

/** The finished experts of a buffer with index < `limit` (all by default), in index order. */
export async function readBuffer(dir: string, limit = Infinity): Promise<{ manifest: BufferManifest; trajectories: Trajectory[] }> {
  const manifest = await readBufferManifest(dir);
  const experts = manifest.experts.filter((e) => e.index < limit);
  if (experts.length === 0) throw new CorruptFileError(manifestPath(dir), 'buffer has no finished expert');
  const trajectories = await Promise.all(experts.map((e) => readTrajectory(dir, manifest, e)));
  return { manifest, trajectories };
}
