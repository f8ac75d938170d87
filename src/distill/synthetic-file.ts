/**
 * The distilled output: one safetensors file holding every phase's subset in order
 * (`p<k>.x`, `p<k>.y`, `p<k>.s` (materialised N×N), `p<k>.lrImg`, `p<k>.lrTxt`, plus the raw S factors),
 * with the configuration and per-phase provenance as JSON metadata. Python reads it with safetensors.
 */
import { readFile, stat } from 'node:fs/promises';
import { CorruptFileError, MissingFileError } from '../errors';
import { sha256 } from '../store/atomic';
import { type TensorRecord, decodeSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
import { finiteArray } from '../model/finite';

export interface SyntheticPhase {
  readonly n: number;
  readonly x: Float32Array;
  readonly y: Float32Array;
  readonly s: Float32Array;
  readonly lrImg: number;
  readonly lrTxt: number;
}

export interface SyntheticSet {
  readonly dImg: number;
  readonly dTxt: number;
  readonly phases: readonly SyntheticPhase[];
  /** free-form provenance: config, buffers, slices, ranges, iterations, final losses */
  readonly provenance: Record<string, unknown>;
}

export interface VerifiedSyntheticSet extends SyntheticSet {
  /** sha256 of the file */
  readonly digest: string;
}

export async function writeSyntheticSet(path: string, set: SyntheticSet): Promise<string> {
  const tensors: TensorRecord = {};
  set.phases.forEach((p, k) => {
    tensors[`p${k}.x`] = { shape: [p.n, set.dImg], data: p.x };
    tensors[`p${k}.y`] = { shape: [p.n, set.dTxt], data: p.y };
    tensors[`p${k}.s`] = { shape: [p.n, p.n], data: p.s };
    tensors[`p${k}.lrImg`] = { shape: [1], data: Float32Array.of(p.lrImg) };
    tensors[`p${k}.lrTxt`] = { shape: [1], data: Float32Array.of(p.lrTxt) };
  });
  const buf = await writeSafetensors(path, tensors, {
    format: 'ptmst.synthetic/1',
    phases: String(set.phases.length),
    provenance: JSON.stringify(set.provenance),
  });
  return sha256(buf);
}

/**
 * Read a synthetic set and verify it before use: its content digest, every phase's tensors and their
 * shapes, finite values and positive learning rates. Any failure is one CorruptFileError naming the file.
 */
export async function readSyntheticSet(path: string): Promise<VerifiedSyntheticSet> {
  // one read: the digest describes exactly the bytes that were verified and used
  let buf: Buffer;
  try {
    if (!(await stat(path)).isFile()) throw new CorruptFileError(path, 'not a regular file');
    buf = await readFile(path);
  } catch (e) {
    if (e instanceof CorruptFileError) throw e;
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(path);
    throw new CorruptFileError(path, `cannot read (${(e as Error).message})`);
  }
  const st = decodeSafetensors(buf, path, { requireDigest: true });
  if (st.metadata.format !== 'ptmst.synthetic/1') throw new CorruptFileError(path, 'not a ptmst synthetic set');
  const count = Number(st.metadata.phases);
  if (!Number.isInteger(count) || count < 1) throw new CorruptFileError(path, `metadata phases = ${st.metadata.phases} is not a phase count`);
  const phases: SyntheticPhase[] = [];
  let dImg = 0;
  let dTxt = 0;
  for (let k = 0; k < count; k++) {
    const x = tensorOf(st, `p${k}.x`, path);
    const y = tensorOf(st, `p${k}.y`, path);
    const s = tensorOf(st, `p${k}.s`, path);
    const n = x.shape[0]!;
    if (x.shape.length !== 2 || y.shape.length !== 2 || y.shape[0] !== n || s.shape[0] !== n || s.shape[1] !== n || n < 1) {
      throw new CorruptFileError(path, `phase ${k}: x [${x.shape}], y [${y.shape}] and s [${s.shape}] disagree on the number of pairs`);
    }
    if (k > 0 && (x.shape[1] !== dImg || y.shape[1] !== dTxt)) throw new CorruptFileError(path, `phase ${k}: feature sizes differ from phase 0`);
    dImg = x.shape[1]!;
    dTxt = y.shape[1]!;
    const lr = (name: string) => {
      const t = tensorOf(st, `p${k}.${name}`, path);
      const v = t.data[0];
      if (t.dtype !== 'F32' || t.data.length !== 1 || v === undefined || !(v > 0) || !Number.isFinite(v)) {
        throw new CorruptFileError(path, `p${k}.${name} = ${v} is not a positive learning rate`);
      }
      return v;
    };
    for (const t of [x, y, s]) {
      if (t.dtype !== 'F32' || !finiteArray(t.data as Float32Array)) throw new CorruptFileError(path, `phase ${k}: NaN, infinite or non-F32 values`);
    }
    phases.push({ n, x: x.data as Float32Array, y: y.data as Float32Array, s: s.data as Float32Array, lrImg: lr('lrImg'), lrTxt: lr('lrTxt') });
  }
  let provenance: Record<string, unknown> = {};
  try {
    provenance = JSON.parse(st.metadata.provenance ?? '{}') as Record<string, unknown>;
  } catch {
    throw new CorruptFileError(path, 'provenance metadata is not valid JSON');
  }
  return { dImg, dTxt, phases, provenance, digest: sha256(buf) };
}
