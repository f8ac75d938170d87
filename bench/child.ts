/**
 * One benchmark repetition of this project, in its own process (`node dist/bench/child.js '<case JSON>'`):
 * read the case's inputs, warm up (the same work once, or a smaller piece of it with the same shapes), then
 * time the work once, and print one result line `@@result {…}` with the time and the process's peak RSS.
 * A fresh process per repetition makes each peak RSS that repetition's own, and lets the harness alternate
 * ours and the peer's repetitions. Every timed path is the library's own verb: `distillIteration`,
 * `trainExpert`, `trainStudent`, `evaluateRetrieval`, an encoder of the registry.
 */
import { performance } from 'node:perf_hooks';
import { ready, tf } from '../src/backend';
import { EvalConfig, ModelConfig } from '../src/config/schemas';
import { distillIteration, type UnrollStep } from '../src/distill/iteration';
import type { SyntheticState } from '../src/distill/synthetic';
import { IMAGE_ENCODERS, lookup } from '../src/encoders/registry';
import type { FeatureSet } from '../src/features/feature-set';
import { type DualParams, TOWERS, disposeDual, dualShape, flattenTower, initDual } from '../src/model/dual';
import { PARAM_NAMES } from '../src/model/head';
import { evaluateRetrieval } from '../src/model/retrieval';
import { trainStudent } from '../src/evaluate/student';
import { type SafetensorsFile, type TensorRecord, readSafetensors, tensorOf, writeSafetensors } from '../src/store/safetensors';
import { trainExpert } from '../src/trajectory/expert';
import { rng } from '../src/util/random';
import type { BenchCase, EvalCase, ExpertCase, FeaturesCase, GradcheckCase, IterationCase, RetrievalCase, SgemmCase } from './cases';

/** What a child reports (the peer's children report the same fields). */
export interface ChildResult {
  /** wall time of the timed repetition */
  readonly seconds: number;
  /** wall time of the warm-up */
  readonly warmupSeconds: number;
  /** peak resident set of the process (KiB), and its high-water mark before the warm-up (after imports and inputs) */
  readonly peakRssKiB: number;
  readonly baseRssKiB: number;
  /** what ran it: backend and threads */
  readonly runtime: string;
  /** case-specific numbers (an encoder's load time) */
  readonly extra?: Readonly<Record<string, number | string>>;
}

/** A prepared case: `warm` then `run` (both awaited), then `dispose`. */
interface Prepared {
  warm(): Promise<void>;
  run(): Promise<void>;
  dispose(): void;
  extra?: Record<string, number | string>;
}

const RESULT_MARK = '@@result ';

function reader(f: SafetensorsFile, file: string) {
  const arr = (name: string) => tensorOf(f, name, file);
  const f32 = (name: string) => arr(name).data as Float32Array;
  const t = (name: string) => tf.tensor(f32(name), [...arr(name).shape]);
  const heads = (): DualParams =>
    Object.fromEntries(TOWERS.map((tw) => [tw, Object.fromEntries(PARAM_NAMES.map((p) => [p, t(`theta0.${tw}.${p}`)]))])) as unknown as DualParams;
  return { arr, f32, t, heads };
}

/** The state, teacher and steps of an iteration input file, and the call that runs it. */
async function iterationCall(c: IterationCase) {
  const r = reader(await readSafetensors(c.file), c.file);
  const theta0 = r.heads();
  const scalar = (name: string) => tf.tidy(() => tf.reshape(r.t(name), []));
  const state: Record<string, tf.Tensor> = { x: r.t('x'), y: r.t('y'), lrImg: scalar('lrImg'), lrTxt: scalar('lrTxt') };
  for (const k of c.similarity === 'full' ? ['sFull'] : ['sDiag', 'sL', 'sR']) state[k] = r.t(k);
  const teacher = {
    theta0,
    start: tf.tidy(() => ({ img: flattenTower(theta0.img), txt: flattenTower(theta0.txt) })),
    target: { img: r.t('target.img') as tf.Tensor1D, txt: r.t('target.txt') as tf.Tensor1D },
  };
  const batches = r.arr('batches').data as Int32Array;
  const [maskImg, maskTxt] = [r.f32('maskImg'), r.f32('maskTxt')];
  const per = c.batch * c.width;
  const steps: UnrollStep[] = Array.from({ length: c.synSteps }, (_, i) => ({
    batch: batches.slice(i * c.batch, (i + 1) * c.batch),
    maskImg: tf.tensor2d(maskImg.subarray(i * per, (i + 1) * per), [c.batch, c.width]),
    maskTxt: tf.tensor2d(maskTxt.subarray(i * per, (i + 1) * per), [c.batch, c.width]),
  }));
  const options = { loss: 'infonce' as const, temperature: c.temperature, similarity: { kind: c.similarity, rank: c.rank, alpha: c.rankAlpha }, mode: c.mode };
  /** one iteration, every gradient read back (so an asynchronous backend has finished) */
  const call = async () => {
    const res = await distillIteration(state as SyntheticState, teacher, steps, options);
    const grads = Object.fromEntries(await Promise.all(Object.entries(res.grads).map(async ([k, g]) => [k, { shape: g.shape, data: (await g.data()) as Float32Array }] as const)));
    tf.dispose(Object.values(res.grads));
    return { lossImg: res.lossImg, lossTxt: res.lossTxt, grads };
  };
  const dispose = () => {
    disposeDual(theta0);
    tf.dispose([...Object.values(state), teacher.start.img, teacher.start.txt, teacher.target.img, teacher.target.txt]);
    for (const s of steps) tf.dispose([s.maskImg!, s.maskTxt!]);
  };
  return { call, dispose };
}

async function iteration(c: IterationCase): Promise<Prepared> {
  const { call, dispose } = await iterationCall(c);
  const repeat = (n: number) => async () => {
    for (let i = 0; i < n; i++) await call();
  };
  return { warm: repeat(c.warmIterations), run: repeat(c.timedIterations), dispose };
}

/** A random-feature training split (FeatureSet) of the first `captions` captions of an expert input file. */
function featureSet(c: ExpertCase, img: Float32Array, txt: Float32Array, map: Int32Array, captions: number): FeatureSet {
  const images = Math.ceil(captions / c.captionsPerImage);
  return {
    dataset: 'bench',
    split: 'train',
    imageEncoder: 'random',
    textEncoder: 'random',
    digest: '',
    numImages: images,
    numCaptions: captions,
    dImg: c.dImg,
    dTxt: c.dTxt,
    img: img.subarray(0, images * c.dImg),
    txt: txt.subarray(0, captions * c.dTxt),
    captionToImage: map.subarray(0, captions),
    imageToCaptions: Array.from({ length: images }, (_, i) => Array.from({ length: c.captionsPerImage }, (_, k) => i * c.captionsPerImage + k)),
  };
}

async function expert(c: ExpertCase): Promise<Prepared> {
  const r = reader(await readSafetensors(c.file), c.file);
  const [img, txt, map] = [r.f32('img'), r.f32('txt'), r.arr('captionToImage').data as Int32Array];
  const opts = { epochs: 1, lrImg: c.lr, lrTxt: c.lr, batchSize: c.batch, dropout: c.dropout, loss: 'infonce' as const, dOut: c.width, temperature: c.temperature };
  return {
    warm: async () => void (await trainExpert(featureSet(c, img, txt, map, c.warmPairs), {}, opts, rng(1))),
    run: async () => void (await trainExpert(featureSet(c, img, txt, map, map.length), {}, opts, rng(2))),
    dispose: () => undefined,
  };
}

/** The test split of an eval input file as a FeatureSet. */
async function testSplit(c: EvalCase | RetrievalCase) {
  const f = await readSafetensors(c.file);
  const r = reader(f, c.file);
  const test: FeatureSet = {
    dataset: 'bench',
    split: 'test',
    imageEncoder: 'random',
    textEncoder: 'random',
    digest: '',
    numImages: c.testImages,
    numCaptions: c.testImages * c.captionsPerImage,
    dImg: c.dImg,
    dTxt: c.dTxt,
    img: r.f32('test.img'),
    txt: r.f32('test.txt'),
    captionToImage: r.arr('test.captionToImage').data as Int32Array,
    imageToCaptions: Array.from({ length: c.testImages }, (_, i) => Array.from({ length: c.captionsPerImage }, (_, k) => i * c.captionsPerImage + k)),
  };
  return { r, test };
}

async function evaluation(c: EvalCase): Promise<Prepared> {
  const { r, test } = await testSplit(c);
  const subset = { n: c.n, x: r.f32('x'), y: r.f32('y'), s: r.f32('s'), lrImg: c.lr, lrTxt: c.lr, loss: 'infonce' as const };
  const shape = dualShape(c.dImg, c.dTxt, c.width);
  const model = ModelConfig.parse({ dOut: c.width, temperature: c.temperature, dropout: c.dropout });
  const cfg = (epochs: number, evalEvery: number) =>
    EvalConfig.parse({ runs: 1, epochs, evalEvery, decayEpoch: c.decayEpoch, batchSize: c.batch, momentum: c.momentum, weightDecay: c.weightDecay });
  return {
    // warm-up: one epoch and its two checkpoints (4 retrievals), the same shapes
    warm: async () => void (await trainStudent([subset], { val: test, test }, shape, model, cfg(1, 1), rng(1), 'bench warm-up')),
    run: async () => void (await trainStudent([subset], { val: test, test }, shape, model, cfg(c.epochs, c.evalEvery), rng(2), 'bench')),
    dispose: () => undefined,
  };
}

async function retrieval(c: RetrievalCase): Promise<Prepared> {
  const { test } = await testSplit(c);
  const r = rng(3);
  const theta = initDual(dualShape(c.dImg, c.dTxt, c.width), () => r.next()); // fresh heads: the values do not change the work
  return {
    warm: async () => void (await evaluateRetrieval(theta, test, 'bench warm-up')),
    run: async () => void (await evaluateRetrieval(theta, test, 'bench')),
    dispose: () => disposeDual(theta),
  };
}

async function sgemm(c: SgemmCase): Promise<Prepared> {
  const a = tf.randomUniform([c.n, c.n], -1, 1, 'float32', 1) as tf.Tensor2D;
  const b = tf.randomUniform([c.n, c.n], -1, 1, 'float32', 2) as tf.Tensor2D;
  const call = async () => {
    const p = tf.matMul(a, b);
    await p.data();
    p.dispose();
  };
  return { warm: call, run: call, dispose: () => tf.dispose([a, b]) };
}

async function features(c: FeaturesCase): Promise<Prepared> {
  const t0 = performance.now();
  const encoder = await lookup(IMAGE_ENCODERS, 'image encoder', c.encoder).load();
  const loadSeconds = (performance.now() - t0) / 1000;
  const all = async () => {
    for (let i = 0; i < c.images.length; i += encoder.batchSize) await encoder.encode(c.images.slice(i, i + encoder.batchSize));
  };
  return {
    warm: async () => void (await encoder.encode(c.images.slice(0, encoder.batchSize))),
    run: all,
    dispose: () => encoder.dispose(),
    extra: { loadSeconds, images: c.images.length, batchSize: encoder.batchSize },
  };
}

/** Our gradients of one iteration, written for the peer's check (not timed). */
async function gradcheck(c: GradcheckCase): Promise<void> {
  const { call, dispose } = await iterationCall(c.iteration);
  const res = await call();
  dispose();
  const rec: TensorRecord = {
    lossImg: { shape: [1], data: Float32Array.of(res.lossImg) },
    lossTxt: { shape: [1], data: Float32Array.of(res.lossTxt) },
  };
  for (const [k, g] of Object.entries(res.grads)) rec[`grad.${k}`] = { shape: g.shape.length ? g.shape : [1], data: g.data };
  await writeSafetensors(c.out, rec, { format: 'ptmst.bench-grads/1', mode: c.iteration.mode });
}

/** Which backend, how many threads each op uses, and the BLAS that runs the products. */
async function runtime(): Promise<string> {
  const info = await ready(() => undefined);
  if (info.name !== 'wasm') return `tfjs ${tf.version.tfjs} ${info.name}`;
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const products = info.blas ? `, products on ${info.blas}` : ', products on XNNPACK';
  return `tfjs ${tf.version.tfjs} wasm${simd ? ' simd' : ''}, ${info.threads} thread(s) per op${products}`;
}

const maxRssKiB = () => process.resourceUsage().maxRSS;

async function prepare(c: Exclude<BenchCase, GradcheckCase>): Promise<Prepared> {
  switch (c.kind) {
    case 'iteration':
      return iteration(c);
    case 'expert':
      return expert(c);
    case 'eval':
      return evaluation(c);
    case 'retrieval':
      return retrieval(c);
    case 'sgemm':
      return sgemm(c);
    case 'features':
      return features(c);
  }
}

async function main(): Promise<void> {
  const c = JSON.parse(process.argv[2] ?? 'null') as BenchCase | null;
  if (c === null) throw new Error('usage: node dist/bench/child.js <case JSON>');
  const rt = await runtime();
  if (c.kind === 'gradcheck') {
    await gradcheck(c);
    process.stdout.write(`${RESULT_MARK}${JSON.stringify({ written: c.out, runtime: rt })}\n`);
    return;
  }
  const p = await prepare(c);
  const baseRssKiB = maxRssKiB();
  let t = performance.now();
  await p.warm();
  const warmupSeconds = (performance.now() - t) / 1000;
  t = performance.now();
  await p.run();
  const seconds = (performance.now() - t) / 1000;
  p.dispose();
  const out: ChildResult = { seconds, warmupSeconds, peakRssKiB: maxRssKiB(), baseRssKiB, runtime: rt, ...(p.extra ? { extra: p.extra } : {}) };
  process.stdout.write(`${RESULT_MARK}${JSON.stringify(out)}\n`);
}

if (require.main === module) {
  main().catch((e: unknown) => {
    process.stderr.write(`${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  });
}
