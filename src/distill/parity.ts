/**
 * Parity hook (`ptmst step`): one distillation iteration from one state file, dropout off, written out
 * with every gradient, so another implementation (the Python reference, or your own) can be checked
 * against this one number by number.
 *
 * State file (safetensors, float32 unless noted):
 *   theta0.img.{W1,b1,W2,b2,gamma,beta}, theta0.txt.{…}   the student's start (snapshot t); W is [d_in, d_out]
 *                                                          (PyTorch's nn.Linear.weight transposed)
 *   target.img, target.txt                                θ* flattened per tower in the order above
 *   x [N, d_img], y [N, d_txt], s [N, N], lrImg [1], lrTxt [1]
 *   batches [steps, batch] (I32)                          synthetic indices of each unrolled step
 * Output file: loss, lossImg, lossTxt [1] and grad.x, grad.y, grad.s, grad.lrImg, grad.lrTxt.
 */
import { tf } from '../backend';
import { CorruptFileError } from '../errors';
import { type DualParams, TOWERS, flattenTower, initDual, dualShape } from '../model/dual';
import { PARAM_NAMES } from '../model/head';
import type { LossName } from '../model/losses';
import { type TensorRecord, readSafetensors, tensorOf, writeSafetensors } from '../store/safetensors';
import { rng } from '../util/random';
import { type GradientMode, distillIteration } from './iteration';

export interface ParityOptions {
  readonly loss: LossName;
  readonly mode: GradientMode;
  readonly temperature: number;
}

export async function parityStep(stateFile: string, outFile: string, o: ParityOptions): Promise<{ loss: number }> {
  const st = await readSafetensors(stateFile);
  const t = (name: string) => {
    const v = tensorOf(st, name, stateFile);
    return tf.tensor(v.data as Float32Array, [...v.shape]);
  };
  const batches = tensorOf(st, 'batches', stateFile);
  if (batches.dtype !== 'I32' || batches.shape.length !== 2) throw new CorruptFileError(stateFile, 'batches must be I32 [steps, batch]');
  const theta0 = Object.fromEntries(
    TOWERS.map((tw) => [tw, Object.fromEntries(PARAM_NAMES.map((n) => [n, t(`theta0.${tw}.${n}`)]))]),
  ) as unknown as DualParams;
  const state = { x: t('x'), y: t('y'), sFull: t('s'), lrImg: tf.reshape(t('lrImg'), []), lrTxt: tf.reshape(t('lrTxt'), []) };
  const [steps, batch] = batches.shape as [number, number];
  const res = await distillIteration(
    state,
    {
      theta0,
      start: { img: flattenTower(theta0.img), txt: flattenTower(theta0.txt) },
      target: { img: t('target.img') as tf.Tensor1D, txt: t('target.txt') as tf.Tensor1D },
    },
    Array.from({ length: steps }, (_, i) => ({
      batch: (batches.data as Int32Array).slice(i * batch, (i + 1) * batch),
      maskImg: null,
      maskTxt: null,
    })),
    { loss: o.loss, temperature: o.temperature, similarity: { kind: 'full', rank: 0, alpha: 1 }, mode: o.mode },
  );
  const arr = async (x: tf.Tensor) => ({ shape: x.shape.length ? x.shape : [1], data: (await x.data()) as Float32Array });
  const out: TensorRecord = {
    loss: { shape: [1], data: Float32Array.of(res.lossImg + res.lossTxt) },
    lossImg: { shape: [1], data: Float32Array.of(res.lossImg) },
    lossTxt: { shape: [1], data: Float32Array.of(res.lossTxt) },
    'grad.x': await arr(res.grads.x!),
    'grad.y': await arr(res.grads.y!),
    'grad.s': await arr(res.grads.sFull!),
    'grad.lrImg': await arr(res.grads.lrImg!),
    'grad.lrTxt': await arr(res.grads.lrTxt!),
  };
  await writeSafetensors(outFile, out, { loss: o.loss, mode: o.mode, temperature: String(o.temperature), dropout: 'off' });
  tf.dispose([...Object.values(res.grads), ...Object.values(state)]);
  return { loss: res.lossImg + res.lossTxt };
}

/** A small random state file in the format above (to see the format, or to seed a parity test). */
export async function writeExampleState(path: string, seed = 0): Promise<void> {
  const r = rng(seed);
  const u = () => r.next();
  const shape = dualShape(12, 6, 8);
  const theta0 = initDual(shape, u);
  const n = 10;
  const rec: TensorRecord = {};
  for (const tw of TOWERS) for (const p of PARAM_NAMES) rec[`theta0.${tw}.${p}`] = { shape: theta0[tw][p].shape, data: theta0[tw][p].dataSync() as Float32Array };
  for (const tw of TOWERS) {
    const flat = flattenTower(theta0[tw]).dataSync() as Float32Array;
    rec[`target.${tw}`] = { shape: [flat.length], data: flat.map((v) => v + 0.1 * (u() - 0.5)) };
  }
  rec.x = { shape: [n, 12], data: Float32Array.from({ length: n * 12 }, u) };
  rec.y = { shape: [n, 6], data: Float32Array.from({ length: n * 6 }, () => u() - 0.5) };
  rec.s = { shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0)) };
  rec.lrImg = { shape: [1], data: Float32Array.of(0.1) };
  rec.lrTxt = { shape: [1], data: Float32Array.of(0.1) };
  rec.batches = { shape: [3, 4], data: Int32Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]) };
  await writeSafetensors(path, rec, { format: 'ptmst.parity-state/1' });
  for (const tw of TOWERS) for (const p of PARAM_NAMES) theta0[tw][p].dispose();
}
