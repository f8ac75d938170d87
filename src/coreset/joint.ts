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

/**
 * The joint rows of a feature set without the n × d copy (at CC3M scale, 600k × 3072 floats, that copy alone is
 * 7.4 GB): each row is made on demand from the image and caption matrices and the halves' scales. `fill` writes
 * rows exactly as `jointFeatures` stores them (float32); `dotAll` and `row` work in float64 on the scaled halves
 * (the image half's dot product is computed once per image, however many captions share it).
 */
export interface JointRows {
  readonly n: number;
  readonly d: number;
  /** rows [from, from + rows) into `out` (float32, row-major, as `jointFeatures` has them) */
  fill(from: number, rows: number, out: Float32Array): void;
  /** out[i] = x_i · v for every row, float64 */
  dotAll(v: Float64Array, out: Float64Array): void;
  /** out[r] = x_idx[r] · v for r < count, float64 */
  dotRows(v: Float64Array, idx: Int32Array, count: number, out: Float64Array): void;
  /** row i in float64 */
  row(i: number): Float64Array;
  /** ‖x_i‖² of every row, float64 */
  sqNorms(): Float64Array;
  /** the mean row, float64 */
  mean(): Float64Array;
}

/** Σ_q a[ao + q] · v[vo + q] for q < len, four float64 accumulators. */
export function dotF32F64(a: Float32Array, ao: number, v: Float64Array, vo: number, len: number): number {
  let s0 = 0;
  let s1 = 0;
  let s2 = 0;
  let s3 = 0;
  let q = 0;
  for (; q + 3 < len; q += 4) {
    s0 += a[ao + q]! * v[vo + q]!;
    s1 += a[ao + q + 1]! * v[vo + q + 1]!;
    s2 += a[ao + q + 2]! * v[vo + q + 2]!;
    s3 += a[ao + q + 3]! * v[vo + q + 3]!;
  }
  for (; q < len; q++) s0 += a[ao + q]! * v[vo + q]!;
  return s0 + s1 + (s2 + s3);
}

/** 1/‖row‖ of every row of a matrix (0 for a zero row), the scale `putUnit` applies, and ‖row‖². */
function unitScales(m: Float32Array, rows: number, len: number): { scale: Float64Array; sq: Float64Array } {
  const scale = new Float64Array(rows);
  const sq = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    let ss = 0;
    for (let k = 0, o = i * len; k < len; k++) ss += m[o + k]! * m[o + k]!;
    scale[i] = ss > 0 ? 1 / Math.sqrt(ss) : 0;
    sq[i] = ss;
  }
  return { scale, sq };
}

/** The joint rows of a training set, made on demand (see JointRows). */
export function jointRows(train: FeatureSet): JointRows {
  const n = train.numCaptions;
  const { dImg, dTxt, img, txt, captionToImage } = train;
  const d = dImg + dTxt;
  const si = unitScales(img, train.numImages, dImg);
  const st = unitScales(txt, n, dTxt);
  const imgDots = new Float64Array(train.numImages);
  return {
    n,
    d,
    fill(from, rows, out) {
      for (let r = 0; r < rows; r++) {
        const j = from + r;
        const m = captionToImage[j]!;
        const a = si.scale[m]!;
        const b = st.scale[j]!;
        for (let q = 0, o = r * d, s = m * dImg; q < dImg; q++) out[o + q] = img[s + q]! * a;
        for (let q = 0, o = r * d + dImg, s = j * dTxt; q < dTxt; q++) out[o + q] = txt[s + q]! * b;
      }
    },
    dotAll(v, out) {
      for (let m = 0; m < train.numImages; m++) imgDots[m] = si.scale[m]! * dotF32F64(img, m * dImg, v, 0, dImg);
      for (let j = 0; j < n; j++) out[j] = imgDots[captionToImage[j]!]! + st.scale[j]! * dotF32F64(txt, j * dTxt, v, dImg, dTxt);
    },
    dotRows(v, idx, count, out) {
      for (let r = 0; r < count; r++) {
        const j = idx[r]!;
        const m = captionToImage[j]!;
        out[r] = si.scale[m]! * dotF32F64(img, m * dImg, v, 0, dImg) + st.scale[j]! * dotF32F64(txt, j * dTxt, v, dImg, dTxt);
      }
    },
    row(i) {
      const out = new Float64Array(d);
      const m = captionToImage[i]!;
      for (let q = 0; q < dImg; q++) out[q] = img[m * dImg + q]! * si.scale[m]!;
      for (let q = 0; q < dTxt; q++) out[dImg + q] = txt[i * dTxt + q]! * st.scale[i]!;
      return out;
    },
    sqNorms() {
      return Float64Array.from({ length: n }, (_, j) => {
        const m = captionToImage[j]!;
        return si.sq[m]! * si.scale[m]! ** 2 + st.sq[j]! * st.scale[j]! ** 2;
      });
    },
    mean() {
      const mu = new Float64Array(d);
      const weight = new Float64Array(train.numImages);
      for (let j = 0; j < n; j++) weight[captionToImage[j]!] = weight[captionToImage[j]!]! + 1;
      for (let m = 0; m < train.numImages; m++) {
        const w = weight[m]! * si.scale[m]!;
        if (w !== 0) for (let q = 0, o = m * dImg; q < dImg; q++) mu[q] = mu[q]! + img[o + q]! * w;
      }
      for (let j = 0; j < n; j++) {
        const w = st.scale[j]!;
        for (let q = 0, o = j * dTxt; q < dTxt; q++) mu[dImg + q] = mu[dImg + q]! + txt[o + q]! * w;
      }
      for (let q = 0; q < d; q++) mu[q] = mu[q]! / n;
      return mu;
    },
  };
}

/** JointRows over a dense n × d matrix (rows as they are). */
export function matrixRows(x: Float32Array, n: number, d: number): JointRows {
  return {
    n,
    d,
    fill(from, rows, out) {
      out.set(x.subarray(from * d, (from + rows) * d));
    },
    dotAll(v, out) {
      for (let i = 0; i < n; i++) out[i] = dotF32F64(x, i * d, v, 0, d);
    },
    row(i) {
      return Float64Array.from(x.subarray(i * d, (i + 1) * d));
    },
    dotRows(v, idx, count, out) {
      for (let r = 0; r < count; r++) out[r] = dotF32F64(x, idx[r]! * d, v, 0, d);
    },
    sqNorms() {
      const zero = new Float64Array(d);
      return Float64Array.from({ length: n }, (_, i) => sqDist(x, i, zero, 0, d));
    },
    mean: () => meanRow({ n, d, x }),
  };
}
