/** Decode photos into the float tensors an image encoder takes. */
import { readFile } from 'node:fs/promises';
import jpeg from 'jpeg-js';
import { tf } from '../backend';
import { DatasetError } from '../data/dataset';

export interface RgbImage {
  readonly width: number;
  readonly height: number;
  /** row-major RGB bytes, length width × height × 3 */
  readonly data: Uint8Array;
}

export async function decodeJpegFile(path: string): Promise<RgbImage> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new DatasetError(path, `cannot read image: ${(e as Error).message}`);
  }
  try {
    const img = jpeg.decode(buf, { useTArray: true, formatAsRGBA: false, maxMemoryUsageInMB: 1024 });
    return { width: img.width, height: img.height, data: img.data };
  } catch (e) {
    throw new DatasetError(path, `not a decodable JPEG: ${(e as Error).message}`);
  }
}

/**
 * Images → `[n, size, size, 3]` float tensor with pixels in [0, 1], resized bilinearly with aligned
 * corners (as nsfwjs does for its own models).
 */
export function toInputBatch(images: readonly RgbImage[], size: number): tf.Tensor4D {
  return tf.tidy(() => {
    const resized = images.map((img) => {
      const t = tf.tensor3d(img.data, [img.height, img.width, 3], 'int32').toFloat().div(255) as tf.Tensor3D;
      return img.height === size && img.width === size ? t : tf.image.resizeBilinear(t, [size, size], true);
    });
    return tf.stack(resized) as tf.Tensor4D;
  });
}
