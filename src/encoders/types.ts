/**
 * Frozen encoders: an image or a caption in, a feature vector out. Callers (feature extraction, the CLI)
 * only see these interfaces and the registry, so another tfjs model from a local folder or features
 * computed elsewhere plug in without touching them.
 */
export interface EncoderInfo {
  /** registry name, e.g. `mobilenet_v2` */
  readonly id: string;
  /** what exactly produced the numbers (package@version and layer); part of every cache manifest */
  readonly version: string;
  /** feature dimension */
  readonly dim: number;
}

export interface ImageEncoder extends EncoderInfo {
  readonly modality: 'image';
  /** images per forward pass that suits this encoder */
  readonly batchSize: number;
  /** features of the given image files, row-major `paths.length × dim` */
  encode(paths: readonly string[]): Promise<Float32Array>;
  dispose(): void;
}

export interface TextEncoder extends EncoderInfo {
  readonly modality: 'text';
  /** features of preprocessed captions, row-major `captions.length × dim` */
  encode(captions: readonly string[]): Promise<Float32Array>;
  dispose(): void;
}

export type Encoder = ImageEncoder | TextEncoder;
