/**
 * Forgetting events (Toneva et al. 2019), adapted to retrieval: at every presentation of pair j (its
 * mini-batch during expert training) the pair is "learned" when caption j scores its own image at least as
 * high as every other image of the batch (see `learnedFlags` in model/train). A forgetting event is a
 * learned → not-learned transition between consecutive presentations of the same pair.
 *
 * Convention (Toneva's): a pair never learned in an expert's run is counted as the hardest, with
 * (the run's largest event count) + 1 events. The counts stored per expert already include it; summing
 * over experts keeps the order within each run.
 *
 * Per expert the counts are stored beside the trajectory as `forgetting-NNN.safetensors`: `counts` and
 * `events` (raw transitions), int32 [numPairs], with the safetensors content digest.
 */
import { join } from 'node:path';
import { CorruptFileError, readSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';

export const FORGETTING_FORMAT = 'ptmst.forgetting/1';
export const forgettingFileName = (i: number) => `forgetting-${String(i).padStart(3, '0')}.safetensors`;

/** One presentation of one pair. */
export interface Presentation {
  readonly pair: number;
  readonly learned: boolean;
}

/** The running state of one expert's count: enough to continue it after a resume. */
export interface ForgettingState {
  /** per pair: -1 never presented, else the learned flag (0/1) at its last presentation */
  readonly last: Int8Array;
  /** forgetting events so far */
  readonly events: Int32Array;
  /** 1 once the pair was learned at some presentation */
  readonly everLearned: Uint8Array;
}

/** Counts presentations as they come (the expert's `onBatch` hook feeds it). */
export class ForgettingTracker {
  readonly state: ForgettingState;

  constructor(numPairs: number, from?: ForgettingState) {
    if (from && (from.last.length !== numPairs || from.events.length !== numPairs || from.everLearned.length !== numPairs)) {
      throw new Error(`forgetting state has ${from.last.length} pairs, expected ${numPairs}`);
    }
    this.state = from
      ? { last: from.last.slice(), events: from.events.slice(), everLearned: from.everLearned.slice() }
      : { last: new Int8Array(numPairs).fill(-1), events: new Int32Array(numPairs), everLearned: new Uint8Array(numPairs) };
  }

  observe(pair: number, learned: boolean): void {
    const { last, events, everLearned } = this.state;
    if (!(pair >= 0 && pair < last.length)) throw new Error(`pair ${pair} out of range (${last.length} pairs)`);
    if (last[pair] === 1 && !learned) events[pair]!++;
    last[pair] = learned ? 1 : 0;
    if (learned) everLearned[pair] = 1;
  }

  /** One step's pairs and flags, as `trainEpoch`'s `onBatch` gives them. */
  observeBatch(pairs: ArrayLike<number>, learned: ArrayLike<number>): void {
    for (let i = 0; i < pairs.length; i++) this.observe(pairs[i]!, learned[i]! !== 0);
  }

  /** Events per pair, never-learned pairs set to (largest count among learned pairs) + 1. */
  counts(): Int32Array {
    const { events, everLearned } = this.state;
    let max = 0;
    for (let j = 0; j < events.length; j++) if (everLearned[j] && events[j]! > max) max = events[j]!;
    return Int32Array.from(events, (e, j) => (everLearned[j] ? e : max + 1));
  }
}

/** The forgetting counts of a scripted sequence of presentations (in order), with the never-learned convention. */
export function countForgetting(presentations: readonly Presentation[], numPairs: number): Int32Array {
  const t = new ForgettingTracker(numPairs);
  for (const p of presentations) t.observe(p.pair, p.learned);
  return t.counts();
}

/** Write one expert's counts (`counts` with the convention, `events` raw) beside its trajectory. */
export async function writeForgetting(dir: string, index: number, t: ForgettingTracker): Promise<void> {
  const n = t.state.events.length;
  await writeSafetensors(
    join(dir, forgettingFileName(index)),
    { counts: { shape: [n], data: t.counts() }, events: { shape: [n], data: t.state.events.slice() } },
    { format: FORGETTING_FORMAT, expert: String(index) },
  );
}

/** One expert's counts, verified (digest required, format, dtype, length). */
export async function readExpertForgetting(dir: string, index: number, numPairs?: number): Promise<Int32Array> {
  const path = join(dir, forgettingFileName(index));
  const st = await readSafetensors(path, { requireDigest: true });
  if (st.metadata.format !== FORGETTING_FORMAT) throw new CorruptFileError(path, `not a forgetting file (format ${st.metadata.format ?? 'missing'})`);
  const c = tensorOf(st, 'counts', path);
  if (c.dtype !== 'I32' || c.shape.length !== 1 || (numPairs !== undefined && c.shape[0] !== numPairs)) {
    throw new CorruptFileError(path, `counts has dtype ${c.dtype} shape [${c.shape}], expected I32 [${numPairs ?? 'pairs'}]`);
  }
  return c.data as Int32Array;
}

/** Forgetting counts summed over experts 0 … numExperts−1 of a buffer (every file verified; all the same length). */
export async function readForgetting(bufferDir: string, numExperts: number): Promise<Int32Array> {
  if (!(numExperts >= 1)) throw new Error(`readForgetting: numExperts must be at least 1, got ${numExperts}`);
  const first = await readExpertForgetting(bufferDir, 0);
  const sum = Int32Array.from(first);
  for (let e = 1; e < numExperts; e++) {
    const c = await readExpertForgetting(bufferDir, e, sum.length);
    for (let j = 0; j < sum.length; j++) sum[j]! += c[j]!;
  }
  return sum;
}
