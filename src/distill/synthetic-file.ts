/**
 * The distilled output: one safetensors file holding every phase's subset in order
 * (`p<k>.x`, `p<k>.y`, `p<k>.s` (materialised N×N), `p<k>.lrImg`, `p<k>.lrTxt`, plus the raw S factors),
 * with the configuration and per-phase provenance as JSON metadata. Python reads it with safetensors.
 */
import { readFile } from 'node:fs/promises';
import { sha256 } from '../store/atomic';
import { CorruptFileError, type TensorRecord, decodeSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';

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

export async function readSyntheticSet(path: string): Promise<SyntheticSet> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new CorruptFileError(path, `cannot read synthetic set (${(e as Error).message})`);
  }
  const st = decodeSafetensors(buf, path);
  if (st.metadata.format !== 'ptmst.synthetic/1') throw new CorruptFileError(path, 'not a ptmst synthetic set');
  const count = Number(st.metadata.phases);
  const phases: SyntheticPhase[] = [];
  let dImg = 0;
  let dTxt = 0;
  for (let k = 0; k < count; k++) {
    const x = tensorOf(st, `p${k}.x`, path);
    const y = tensorOf(st, `p${k}.y`, path);
    const s = tensorOf(st, `p${k}.s`, path);
    const n = x.shape[0]!;
    if (y.shape[0] !== n || s.shape[0] !== n || s.shape[1] !== n) {
      throw new CorruptFileError(path, `phase ${k}: x, y and s disagree on the number of pairs`);
    }
    dImg = x.shape[1]!;
    dTxt = y.shape[1]!;
    phases.push({
      n,
      x: x.data as Float32Array,
      y: y.data as Float32Array,
      s: s.data as Float32Array,
      lrImg: tensorOf(st, `p${k}.lrImg`, path).data[0]!,
      lrTxt: tensorOf(st, `p${k}.lrTxt`, path).data[0]!,
    });
  }
  let provenance: Record<string, unknown> = {};
  try {
    provenance = JSON.parse(st.metadata.provenance ?? '{}') as Record<string, unknown>;
  } catch {
    throw new CorruptFileError(path, 'provenance metadata is not valid JSON');
  }
  return { dImg, dTxt, phases, provenance };
}
