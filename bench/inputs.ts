/**
 * The benchmark's inputs, made once per run from fixed seeds and written as safetensors, so that this
 * project's child processes and the PyTorch peer (bench/peer.py) compute on the same numbers. Random features
 * of the right shapes stand in for encoder outputs: timings do not depend on the values, and the benchmark
 * needs no dataset.
 *
 * Tensor names (float32 unless noted; W is [d_in, d_out], PyTorch's nn.Linear.weight transposed, as in
 * src/distill/parity.ts):
 *   theta0.{img,txt}.{W1,b1,W2,b2,gamma,beta}   heads at PyTorch's default initialisation (src/model/head.ts)
 * iteration-*.safetensors
 *   target.img, target.txt                      θ*: θ_0 flattened per tower (PARAM_NAMES order) plus a small step
 *   x [N, d_img], y [N, d_txt], lrImg [1], lrTxt [1]
 *   sFull [N, N]  |  sDiag [N], sL [N, r], sR [N, r]   (metadata: rank, rankAlpha)
 *   batches [T, B] (I32)                        synthetic indices of each unrolled step
 *   maskImg, maskTxt [T, B, d]                  inverted-dropout masks of each step (0 or 1/(1 − rate))
 * expert.safetensors
 *   img [images, d_img], txt [captions, d_txt], captionToImage [captions] (I32; caption c shows image ⌊c/5⌋)
 * eval.safetensors
 *   x [n, d_img], y [n, d_txt], s [n, n]          the student's training subset (its learning rate is the case's)
 *   test.img [images, d_img], test.txt [captions, d_txt], test.captionToImage [captions] (I32)
 */
import { tf } from '../src/backend';
import { TOWERS, dualShape, flattenTower, initDual } from '../src/model/dual';
import { PARAM_NAMES } from '../src/model/head';
import { type TensorRecord, writeSafetensors } from '../src/store/safetensors';
import { type Rng, deriveSeed, normal, rng, sampleWithoutReplacement } from '../src/util/random';
import type { EvalInputs, ExpertCase, IterationInputs } from './cases';

const uniform = (r: Rng, n: number, lo = 0, hi = 1) => Float32Array.from({ length: n }, () => lo + (hi - lo) * r.next());
const gaussian = (r: Rng, n: number, sd: number) => Float32Array.from({ length: n }, () => sd * normal(r));

/** Heads of input widths dImg/dTxt and width d, as tensors named theta0.<tower>.<param>, and flattened per tower. */
function heads(dImg: number, dTxt: number, width: number, r: Rng): { rec: TensorRecord; flat: Record<'img' | 'txt', Float32Array> } {
  const theta = initDual(dualShape(dImg, dTxt, width), () => r.next());
  const rec: TensorRecord = {};
  for (const tw of TOWERS) for (const p of PARAM_NAMES) rec[`theta0.${tw}.${p}`] = { shape: theta[tw][p].shape, data: theta[tw][p].dataSync() as Float32Array };
  const flat = tf.tidy(() => ({ img: flattenTower(theta.img).dataSync() as Float32Array, txt: flattenTower(theta.txt).dataSync() as Float32Array }));
  for (const tw of TOWERS) for (const p of PARAM_NAMES) theta[tw][p].dispose();
  return { rec, flat };
}

/** Caption c shows image ⌊c / perImage⌋ (Flickr8k's layout: 5 captions per image, in image order). */
const captionMap = (images: number, perImage: number) => Int32Array.from({ length: images * perImage }, (_, c) => Math.floor(c / perImage));

/** One iteration's state, teacher and unrolled steps (the same draws as src/distill/phase-loop.ts `sampleUnroll`). */
export async function writeIterationInputs(c: IterationInputs, seed: number): Promise<void> {
  const r = rng(deriveSeed(seed, 'bench', 'iteration', c.width, c.similarity));
  const { n, dImg, dTxt, width, batch, synSteps: T } = c;
  const { rec, flat } = heads(dImg, dTxt, width, r);
  // a teacher step the size of one expert epoch, roughly: θ* = θ_0 + 0.003·N(0, 1)
  for (const tw of TOWERS) rec[`target.${tw}`] = { shape: [flat[tw].length], data: flat[tw].map((v) => v + 0.003 * normal(r)) };
  rec.x = { shape: [n, dImg], data: uniform(r, n * dImg) };
  rec.y = { shape: [n, dTxt], data: uniform(r, n * dTxt, -0.5, 0.5) };
  rec.lrImg = { shape: [1], data: Float32Array.of(0.1) };
  rec.lrTxt = { shape: [1], data: Float32Array.of(0.1) };
  if (c.similarity === 'full') {
    // a learned S near I: the identity plus small off-diagonal mass
    rec.sFull = { shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0) + 0.05 * r.next()) };
  } else {
    rec.sDiag = { shape: [n], data: new Float32Array(n).fill(1) };
    rec.sL = { shape: [n, c.rank], data: gaussian(r, n * c.rank, 1) };
    // LoRS starts R at 0; a small non-zero R gives L a gradient for the peer to check
    rec.sR = { shape: [n, c.rank], data: gaussian(r, n * c.rank, 0.01) };
  }
  const batches = new Int32Array(T * batch);
  const keep = 1 / (1 - c.dropout);
  const mask = () => Float32Array.from({ length: T * batch * width }, () => (r.next() >= c.dropout ? keep : 0));
  for (let i = 0; i < T; i++) batches.set(sampleWithoutReplacement(r, n, batch), i * batch);
  rec.batches = { shape: [T, batch], data: batches };
  rec.maskImg = { shape: [T, batch, width], data: mask() };
  rec.maskTxt = { shape: [T, batch, width], data: mask() };
  await writeSafetensors(c.file, rec, { format: 'ptmst.bench-iteration/1', rank: String(c.rank), rankAlpha: String(c.rankAlpha) });
}

/** The expert's training pairs: random image and caption features, 5 captions per image. */
export async function writeExpertInputs(c: ExpertCase, seed: number): Promise<void> {
  const r = rng(deriveSeed(seed, 'bench', 'expert'));
  const captions = c.numImages * c.captionsPerImage;
  const { rec } = heads(c.dImg, c.dTxt, c.width, r);
  rec.img = { shape: [c.numImages, c.dImg], data: uniform(r, c.numImages * c.dImg) };
  rec.txt = { shape: [captions, c.dTxt], data: uniform(r, captions * c.dTxt, -0.5, 0.5) };
  rec.captionToImage = { shape: [captions], data: captionMap(c.numImages, c.captionsPerImage) };
  await writeSafetensors(c.file, rec, { format: 'ptmst.bench-expert/1' });
}

/** The student's synthetic training subset and the test split. */
export async function writeEvalInputs(c: EvalInputs, seed: number): Promise<void> {
  const r = rng(deriveSeed(seed, 'bench', 'eval'));
  const { n } = c;
  const captions = c.testImages * c.captionsPerImage;
  const { rec } = heads(c.dImg, c.dTxt, c.width, r);
  rec.x = { shape: [n, c.dImg], data: uniform(r, n * c.dImg) };
  rec.y = { shape: [n, c.dTxt], data: uniform(r, n * c.dTxt, -0.5, 0.5) };
  rec.s = { shape: [n, n], data: Float32Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0) + 0.05 * r.next()) };
  rec['test.img'] = { shape: [c.testImages, c.dImg], data: uniform(r, c.testImages * c.dImg) };
  rec['test.txt'] = { shape: [captions, c.dTxt], data: uniform(r, captions * c.dTxt, -0.5, 0.5) };
  rec['test.captionToImage'] = { shape: [captions], data: captionMap(c.testImages, c.captionsPerImage) };
  await writeSafetensors(c.file, rec, { format: 'ptmst.bench-eval/1' });
}
