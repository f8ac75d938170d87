/**
 * Image encoders shipped inside `nsfwjs@4.4.0`: Keras MobileNetV2 (224 px) and InceptionV3 (299 px)
 * fine-tuned to an NSFW classifier; features are the pooled `flatten_1` layer. Loaded through the
 * package's documented API (`nsfwjs/core` + `nsfwjs/models/...`), no network needed.
 */
import { tf } from '../backend';
import { foldedForward } from './fold-batchnorm';
import { decodeJpegFile, toInputBatch } from './image-decode';
import type { ImageEncoder } from './types';
import { packageVersion } from '../util/package-version';

export interface NsfwjsModelSpec {
  readonly id: string;
  readonly nsfwjsName: 'MobileNetV2' | 'InceptionV3';
  readonly definition: () => unknown;
  readonly inputSize: number;
  readonly dim: number;
  readonly batchSize: number;
}

export const NSFWJS_MODELS: Readonly<Record<'mobilenet_v2' | 'inception_v3', NsfwjsModelSpec>> = Object.freeze({
  mobilenet_v2: {
    id: 'mobilenet_v2',
    nsfwjsName: 'MobileNetV2',
    definition: () => (require('nsfwjs/models/mobilenet_v2') as { MobileNetV2Model: unknown }).MobileNetV2Model,
    inputSize: 224,
    dim: 1280,
    batchSize: 16,
  },
  inception_v3: {
    id: 'inception_v3',
    nsfwjsName: 'InceptionV3',
    definition: () => (require('nsfwjs/models/inception_v3') as { InceptionV3Model: unknown }).InceptionV3Model,
    inputSize: 299,
    dim: 2048,
    batchSize: 8,
  },
});

/** the layer whose output is the image feature (the pooled features before the classifier) */
export const FEATURE_LAYER = 'flatten_1';


export function nsfwjsEncoderVersion(spec: NsfwjsModelSpec): string {
  return `nsfwjs@${packageVersion('nsfwjs')}/${spec.nsfwjsName}/${FEATURE_LAYER}/${spec.inputSize}px-bilinear-aligned`;
}

export async function loadNsfwjsEncoder(spec: NsfwjsModelSpec): Promise<ImageEncoder> {
  const core = require('nsfwjs/core') as {
    load: (name: string, opts: { size: number; modelDefinitions: unknown[] }) => Promise<{ model: tf.LayersModel; dispose(): void }>;
  };
  const info = console.info;
  console.info = () => undefined; // nsfwjs prints a hosting hint on every load
  let net: { model: tf.LayersModel; dispose(): void };
  try {
    net = await core.load(spec.nsfwjsName, { size: spec.inputSize, modelDefinitions: [spec.definition()] });
  } finally {
    console.info = info;
  }
  // batch normalisations folded into the convolutions before them (./fold-batchnorm): the same features up to
  // float32 rounding, without two of every three kernels
  const features = foldedForward(net.model, FEATURE_LAYER);
  return {
    modality: 'image',
    id: spec.id,
    version: nsfwjsEncoderVersion(spec),
    dim: spec.dim,
    batchSize: spec.batchSize,
    async encode(paths) {
      const images = await Promise.all(paths.map((p) => decodeJpegFile(p)));
      const out = tf.tidy(() => features.predict(toInputBatch(images, spec.inputSize)));
      try {
        return (await out.data()) as Float32Array;
      } finally {
        out.dispose();
      }
    },
    dispose() {
      features.dispose(); // the folded kernels
      net.dispose(); // the model's weights and nsfwjs's own tensors
    },
  };
}
