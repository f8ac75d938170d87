/**
 * Joint features of training pairs, shared by the feature-space coreset rules (herding, k-center, k-means).
 * Pair j's joint feature is [image row of captionToImage[j] ; caption row j], each half L2-normalised first so
 * that neither modality dominates the distances (the image and text encoders have different scales and sizes).
 * Plain loops over Float32Array with float64 accumulators: no tensors, memory O(n·d).
 */
import type { FeatureSet } from '../features/feature-set';

export interface JointFeatures {
  /** pairs (= train.numCaptions) */
  readonly n: number;
  /** dImg + dTxt */
  readonly d: number;
  /** n × d, row-major */
  readonly x: Float32Array;
}

/** Copy `src[from..from+len)` into `dst` at `to`, scaled to unit L2 norm (a zero row stays zero). */
function putUnit(dst: Float32Array, to: number, src: Float32Array, from: number, len: number): void {
  let ss = 0;
  for (let k = 0; k < len; k++) ss += src[from + k]! * src[from + k]!;
  const scale = ss > 0 ? 1 / Math.sqrt(ss) : 0;
  for (let k = 0; k < len; k++) dst[to + k] = src[from + k]! * scale;
}

/** The joint feature of every training pair, each modality's half L2-normalised. */
export function jointFeatures(train: FeatureSet): JointFeatures {
  const n = train.numCaptions;
  const { dImg, dTxt } = train;
  const d = dImg + dTxt;
  const x = new Float32Array(n * d);
  for (let j = 0; j < n; j++) {
    putUnit(x, j * d, train.img, train.captionToImage[j]! * dImg, dImg);
    putUnit(x, j * d + dImg, train.txt, j * dTxt, dTxt);
  }
  return { n, d, x };
}

/** Squared Euclidean distance between row `i` of `a` and row `j` of `b` (both d wide), accumulated in float64. */
export function sqDist(a: Float32Array | Float64Array, i: number, b: Float32Array | Float64Array, j: number, d: number): number {
  const oa = i * d;
  const ob = j * d;
  let s0 = 0;
  let s1 = 0;
  let k = 0;
  for (; k + 1 < d; k += 2) {
    const u = a[oa + k]! - b[ob + k]!;
    const v = a[oa + k + 1]! - b[ob + k + 1]!;
    s0 += u * u;
    s1 += v * v;
  }
  if (k < d) {
    const u = a[oa + k]! - b[ob + k]!;
    s0 += u * u;
  }
  return s0 + s1;
}

/** Dot product of row `i` of `a` and row `j` of `b`, accumulated in float64. */
export function dot(a: Float32Array | Float64Array, i: number, b: Float32Array | Float64Array, j: number, d: number): number {
  const oa = i * d;
  const ob = j * d;
  let s = 0;
  for (let k = 0; k < d; k++) s += a[oa + k]! * b[ob + k]!;
  return s;
}

/** The mean of all rows (float64). */
export function meanRow(f: JointFeatures): Float64Array {
  const { n, d, x } = f;
  const mu = new Float64Array(d);
  for (let i = 0; i < n; i++) for (let k = 0, o = i * d; k < d; k++) mu[k] = mu[k]! + x[o + k]!;
  for (let k = 0; k < d; k++) mu[k] = mu[k]! / n;
  return mu;
}
