/**
 * Shortcut trajectory (SPEC §4). From θ_s..θ_{e−1} of one expert, per parameter tensor l:
 *   n_{k,l} = ‖θ_{s+k+1,l} − θ_{s+k,l}‖,   β_l(t) = Σ_{k<t} n_{k,l} / Σ_{k<K} n_{k,l}   (0 if the sum is 0),
 *   θ̃_l(t) = (1 − β_l(t)) θ_{s,l} + β_l(t) θ_{e−1,l},   t = 0..K, K = e − s − 1,
 * i.e. the straight line between the slice's endpoints, travelled at the pace the expert moved.
 * The endpoints t = 0 and t = K are copied exactly.
 */
import { join } from 'node:path';
import { ConfigError } from '../errors';
import { TOWERS } from '../model/dual';
import { type HeadShape, PARAM_NAMES, paramShapes } from '../model/head';
import { ensureDir } from '../store/atomic';
import { type BufferManifest, type Trajectory, readBuffer, writeBufferManifest, writeTrajectory } from './store';

/** [offset, length] of each parameter tensor inside a flattened tower. */
export function tensorSegments(shape: HeadShape): [number, number][] {
  const shapes = paramShapes(shape);
  let offset = 0;
  return PARAM_NAMES.map((n) => {
    const len = shapes[n].reduce((a, b) => a * b, 1);
    const seg: [number, number] = [offset, len];
    offset += len;
    return seg;
  });
}

/** A slice [start, end) must hold at least 2 of a trajectory's snapshots: else a usage error (exit 2) naming both. */
export function checkSlice(start: number, end: number, snapshots: number, of: string): void {
  if (!(Number.isInteger(start) && Number.isInteger(end) && start >= 0 && end <= snapshots && end - start >= 2)) {
    throw new ConfigError(
      `convexify slice [${start}, ${end}): must hold at least 2 of the ${snapshots} snapshots of ${of} (integers with 0 ≤ start and start + 2 ≤ end ≤ ${snapshots})`,
    );
  }
}

/**
 * Convexify one flattened trajectory (`snapshots × P`, row-major) over the slice [start, end), with
 * `segments` the parameter tensors inside a row. Returns `(end − start) × P`.
 */
export function convexifyFlat(
  flat: Float32Array,
  params: number,
  segments: readonly (readonly [number, number])[],
  start: number,
  end: number,
): Float32Array {
  const snapshots = flat.length / params;
  checkSlice(start, end, snapshots, 'the trajectory');
  const K = end - start - 1;
  const row = (t: number) => flat.subarray((start + t) * params, (start + t + 1) * params);
  const out = new Float32Array((K + 1) * params);
  const first = row(0);
  const last = row(K);
  for (const [off, len] of segments) {
    const steps = Array.from({ length: K }, (_, k) => {
      const a = row(k);
      const b = row(k + 1);
      let s = 0;
      for (let i = off; i < off + len; i++) s += (b[i]! - a[i]!) ** 2;
      return Math.sqrt(s);
    });
    const total = steps.reduce((a, b) => a + b, 0);
    let cum = 0;
    for (let t = 0; t <= K; t++) {
      const target = out.subarray(t * params, (t + 1) * params);
      if (t === K) target.set(last.subarray(off, off + len), off);
      else if (t === 0) target.set(first.subarray(off, off + len), off);
      else {
        const beta = total === 0 ? 0 : cum / total;
        for (let i = off; i < off + len; i++) target[i] = (1 - beta) * first[i]! + beta * last[i]!;
      }
      if (t < K) cum += steps[t]!;
    }
  }
  return out;
}

export function convexifyTrajectory(t: Trajectory, start: number, end: number): Trajectory {
  const one = (tower: (typeof TOWERS)[number]) => {
    const params = t[tower].length / t.snapshots;
    return convexifyFlat(t[tower], params, tensorSegments(t.shape[tower]), start, end);
  };
  return { shape: t.shape, img: one('img'), txt: one('txt'), snapshots: end - start, retrieval: [], retrievalVal: [], ...(t.file ? { file: t.file } : {}) };
}

export const convexifiedDir = (source: string, start: number, end: number) => `${source}-convexified_${start}_${end}`;

/** `ptmst convexify`: a new buffer of shortcut trajectories whose manifest names its source and slice. */
export async function convexifyBuffer(
  source: string,
  start: number,
  end: number,
  out = convexifiedDir(source, start, end),
): Promise<{ dir: string; manifest: BufferManifest }> {
  const { manifest, trajectories } = await readBuffer(source);
  checkSlice(start, end, manifest.epochs + 1, `the experts in ${source} (--start ${start} --end ${end})`);
  await ensureDir(out);
  const entries = [];
  for (const [k, traj] of trajectories.entries()) {
    const e = manifest.experts[k]!;
    const written = await writeTrajectory(out, e.index, convexifyTrajectory(traj, start, end), {
      source: join(source, e.file),
      slice: `${start},${end}`,
    });
    entries.push({ ...written, seed: e.seed, wallSeconds: 0 });
  }
  const m: BufferManifest = {
    ...manifest,
    kind: 'convexified',
    epochs: end - start - 1,
    source: { buffer: source, start, end },
    numExperts: entries.length,
    experts: entries,
  };
  await writeBufferManifest(out, m);
  return { dir: out, manifest: m };
}

/**
 * The shape of a trajectory, per snapshot: the distance from its first snapshot and the length of the path
 * walked so far (float64, both towers). On an expert the path is much longer than the distance (SGD
 * meanders); on a shortcut trajectory every parameter tensor moves on a straight segment, so the two
 * differ only because the tensors keep their own pace (β_l).
 */
export function trajectoryGeometry(t: Trajectory): { snapshot: number; distance: number; pathLength: number }[] {
  const rows: { snapshot: number; distance: number; pathLength: number }[] = [];
  let path = 0;
  for (let s = 0; s < t.snapshots; s++) {
    let dist2 = 0;
    let step2 = 0;
    for (const tower of TOWERS) {
      const p = t[tower].length / t.snapshots;
      const a = t[tower];
      for (let i = 0; i < p; i++) {
        dist2 += (a[s * p + i]! - a[i]!) ** 2;
        if (s > 0) step2 += (a[s * p + i]! - a[(s - 1) * p + i]!) ** 2;
      }
    }
    path += Math.sqrt(step2);
    rows.push({ snapshot: s, distance: Math.sqrt(dist2), pathLength: path });
  }
  return rows;
}
