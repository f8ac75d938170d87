/**
 * A float64 reference of one distillation iteration (SPEC §1, §2 InfoNCE, §5.2–5.4), in plain JS, for parity
 * checks of the float32 tfjs code: the head's forward and hand-written backward (head.ts) with the input
 * gradient added, the dual encoder's InfoNCE step (dual.ts, losses.ts), the unroll θ_{i+1} = θ_i − α g_i,
 * the matching loss and its derivatives (matching.ts). Dropout off.
 *
 * The TESLA data gradient ∂/∂data Σ_i ⟨c, g_i(θ_i; data)⟩ (c = ∂ℓ/∂g_i) is a mixed second derivative; by
 * the symmetry of second derivatives it equals Σ_i ∂/∂ε ∇_data loss(θ_i + ε c; data) at ε = 0, which is
 * taken here by central differences with one Richardson step in float64 (truncation O(h⁴), rounding
 * O(u/h): ~1e-10 relative), so only first derivatives need writing out. The full-unroll loss is given as a
 * function of the state, for directional derivatives the same way.
 *
 * Parameters are flat per tower in PARAM_NAMES order (W1 [dIn, dOut], b1, W2 [dOut, dOut], b2, γ, β), as
 * `flattenTower` lays them out; matrices are row-major. `parityCase` makes one problem twice: as the tfjs
 * inputs of `distillIteration` and as their float32 values widened to float64.
 */
import { tf } from '../../src/backend';
import type { Teacher, UnrollStep } from '../../src/distill/iteration';
import type { SyntheticState } from '../../src/distill/synthetic';
import { TOWERS, type Tower, dualShape, flattenTower, initDual } from '../../src/model/dual';
import { normal, rng, sampleWithoutReplacement } from '../../src/util/random';

export interface Shape64 {
  readonly dIn: number;
  readonly dOut: number;
}

/** The iteration's inputs, float32 values widened to float64. */
export interface Problem64 {
  readonly shape: Readonly<Record<Tower, Shape64>>;
  /** θ_0 and θ* flattened per tower */
  readonly start: Readonly<Record<Tower, Float64Array>>;
  readonly target: Readonly<Record<Tower, Float64Array>>;
  readonly n: number;
  /** N × dImg, N × dTxt, N × N */
  readonly x: Float64Array;
  readonly y: Float64Array;
  readonly s: Float64Array;
  readonly lr: Readonly<Record<Tower, number>>;
  readonly batches: readonly Int32Array[];
  readonly temperature: number;
}

const LN_EPS = 1e-5;

/** erf to ~1e-16: 2/√π · x e^{−x²} Σ (2x²)ⁿ / (1·3···(2n+1)) (positive terms, no cancellation); ±1 beyond |x| = 6. */
export function erf64(x: number): number {
  const ax = Math.abs(x);
  if (ax >= 6) return Math.sign(x);
  let term = ax;
  let sum = ax;
  for (let n = 1; term > 1e-17 * sum; n++) {
    term *= (2 * ax * ax) / (2 * n + 1);
    sum += term;
  }
  return Math.sign(x) * Math.min(1, (2 / Math.sqrt(Math.PI)) * Math.exp(-ax * ax) * sum);
}

/** a [m×k] · b [k×n], with aᵀ or bᵀ (not both) read in place when asked (a stored [k×m], b stored [n×k]). */
function mm(a: Float64Array, b: Float64Array, m: number, k: number, n: number, ta = false, tb = false): Float64Array {
  const out = new Float64Array(m * n);
  if (tb) {
    // rows of a against rows of b: both read in order
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0, oa = i * k, ob = j * k; q < k; q++) s += a[oa + q]! * b[ob + q]!;
        out[i * n + j] = s;
      }
    }
    return out;
  }
  for (let i = 0; i < m; i++) {
    const row = out.subarray(i * n, (i + 1) * n);
    for (let q = 0; q < k; q++) {
      const av = ta ? a[q * m + i]! : a[i * k + q]!;
      const bq = b.subarray(q * n, (q + 1) * n);
      for (let j = 0; j < n; j++) row[j] += av * bq[j]!;
    }
  }
  return out;
}

/** Views of a flat tower's parameters. */
function views(theta: Float64Array, { dIn, dOut }: Shape64) {
  let at = 0;
  const take = (len: number) => theta.subarray(at, (at += len));
  return { W1: take(dIn * dOut), b1: take(dOut), W2: take(dOut * dOut), b2: take(dOut), gamma: take(dOut), beta: take(dOut) };
}

/** Forward to the L2-normalised embedding of `x` (B × dIn), keeping what the backward pass needs (`u`: the embedding). */
export function headForward(theta: Float64Array, shape: Shape64, x: Float64Array, B: number) {
  const { dIn, dOut: d } = shape;
  const w = views(theta, shape);
  const p = mm(x, w.W1, B, dIn, d);
  const a = new Float64Array(B * d);
  for (let i = 0; i < B * d; i++) {
    p[i] = p[i]! + w.b1[i % d]!;
    a[i] = 0.5 * p[i]! * (1 + erf64(p[i]! * Math.SQRT1_2));
  }
  const z = mm(a, w.W2, B, d, d);
  const zhat = new Float64Array(B * d);
  const invSigma = new Float64Array(B);
  const u = new Float64Array(B * d);
  const norm = new Float64Array(B);
  for (let r = 0; r < B; r++) {
    const row = (j: number) => r * d + j;
    let mu = 0;
    for (let j = 0; j < d; j++) mu += (z[row(j)] = z[row(j)]! + w.b2[j]! + p[row(j)]!);
    mu /= d;
    let v = 0;
    for (let j = 0; j < d; j++) v += (z[row(j)]! - mu) ** 2;
    invSigma[r] = 1 / Math.sqrt(v / d + LN_EPS);
    let nn = 0;
    for (let j = 0; j < d; j++) {
      zhat[row(j)] = (z[row(j)]! - mu) * invSigma[r]!;
      u[row(j)] = zhat[row(j)]! * w.gamma[j]! + w.beta[j]!;
      nn += u[row(j)]! ** 2;
    }
    norm[r] = Math.sqrt(nn);
    for (let j = 0; j < d; j++) u[row(j)] = u[row(j)]! / norm[r]!;
  }
  return { x, p, a, zhat, invSigma, u, norm, B };
}

/** Gradients of the flat parameters and of the input, given dLoss/du (head.ts's formulas, plus gx = gp W1ᵀ). */
function headBackward(theta: Float64Array, shape: Shape64, c: ReturnType<typeof headForward>, gu: Float64Array) {
  const { dIn, dOut: d } = shape;
  const { B } = c;
  const w = views(theta, shape);
  const grad = new Float64Array(theta.length);
  const g = views(grad, shape);
  const gz = new Float64Array(B * d);
  for (let r = 0; r < B; r++) {
    const row = (j: number) => r * d + j;
    let ug = 0;
    for (let j = 0; j < d; j++) ug += c.u[row(j)]! * gu[row(j)]!;
    let m1 = 0;
    let m2 = 0;
    const gzhat = new Float64Array(d);
    for (let j = 0; j < d; j++) {
      const go = (gu[row(j)]! - c.u[row(j)]! * ug) / c.norm[r]!;
      g.gamma[j] = g.gamma[j]! + go * c.zhat[row(j)]!;
      g.beta[j] = g.beta[j]! + go;
      gzhat[j] = go * w.gamma[j]!;
      m1 += gzhat[j]!;
      m2 += gzhat[j]! * c.zhat[row(j)]!;
    }
    for (let j = 0; j < d; j++) gz[row(j)] = (gzhat[j]! - m1 / d - c.zhat[row(j)]! * (m2 / d)) * c.invSigma[r]!;
  }
  g.W2.set(mm(c.a, gz, d, B, d, true));
  const ga = mm(gz, w.W2, B, d, d, false, true);
  const gp = new Float64Array(B * d);
  for (let i = 0; i < B * d; i++) {
    const p = c.p[i]!;
    const dgelu = 0.5 * (1 + erf64(p * Math.SQRT1_2)) + (p * Math.exp(-0.5 * p * p)) / Math.sqrt(2 * Math.PI);
    gp[i] = gz[i]! + ga[i]! * dgelu;
    g.b2[i % d] = g.b2[i % d]! + gz[i]!;
    g.b1[i % d] = g.b1[i % d]! + gp[i]!;
  }
  g.W1.set(mm(c.x, gp, dIn, B, d, true));
  return { grad, gx: mm(gp, w.W1, B, d, dIn, false, true) };
}

/** Rows `idx` of a row-major matrix with `cols` columns. */
const rows = (m: Float64Array, cols: number, idx: Int32Array) => {
  const out = new Float64Array(idx.length * cols);
  idx.forEach((r, i) => out.set(m.subarray(r * cols, (r + 1) * cols), i * cols));
  return out;
};

/** One student step on batch `b`: InfoNCE loss, parameter gradients per tower, and the batch's data gradients. */
export function step64(P: Problem64, theta: Readonly<Record<Tower, Float64Array>>, b: Int32Array) {
  const B = b.length;
  const d = P.shape.img.dOut;
  const xb = rows(P.x, P.shape.img.dIn, b);
  const yb = rows(P.y, P.shape.txt.dIn, b);
  const S = new Float64Array(B * B);
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) S[i * B + j] = P.s[b[i]! * P.n + b[j]!]!;
  const ci = headForward(theta.img, P.shape.img, xb, B);
  const ct = headForward(theta.txt, P.shape.txt, yb, B);
  const L = mm(ci.u, ct.u, B, d, B, false, true).map((v) => v / P.temperature);
  // log-softmax over rows (lr) and over columns (lc)
  const lr = new Float64Array(B * B);
  const lc = new Float64Array(B * B);
  for (let i = 0; i < B; i++) {
    let mr = -Infinity;
    let mc = -Infinity;
    for (let j = 0; j < B; j++) (mr = Math.max(mr, L[i * B + j]!)), (mc = Math.max(mc, L[j * B + i]!));
    let sr = 0;
    let sc = 0;
    for (let j = 0; j < B; j++) (sr += Math.exp(L[i * B + j]! - mr)), (sc += Math.exp(L[j * B + i]! - mc));
    for (let j = 0; j < B; j++) (lr[i * B + j] = L[i * B + j]! - mr - Math.log(sr)), (lc[j * B + i] = L[j * B + i]! - mc - Math.log(sc));
  }
  const rowS = new Float64Array(B);
  const colS = new Float64Array(B);
  for (let i = 0; i < B; i++) for (let j = 0; j < B; j++) (rowS[i] += S[i * B + j]!), (colS[j] += S[i * B + j]!);
  let loss = 0;
  const gL = new Float64Array(B * B);
  const gS = new Float64Array(B * B);
  for (let i = 0; i < B; i++) {
    for (let j = 0; j < B; j++) {
      const k = i * B + j;
      loss -= (S[k]! * (lr[k]! + lc[k]!)) / (2 * B);
      gL[k] = (Math.exp(lr[k]!) * rowS[i]! - S[k]! + Math.exp(lc[k]!) * colS[j]! - S[k]!) / (2 * B);
      gS[k] = -(lr[k]! + lc[k]!) / (2 * B);
    }
  }
  const gU = mm(gL, ct.u, B, B, d).map((v) => v / P.temperature);
  const gV = mm(gL, ci.u, B, B, d, true).map((v) => v / P.temperature);
  const bi = headBackward(theta.img, P.shape.img, ci, gU);
  const bt = headBackward(theta.txt, P.shape.txt, ct, gV);
  return { loss, grads: { img: bi.grad, txt: bt.grad }, gx: bi.gx, gy: bt.gx, gS };
}

type Theta64 = Record<Tower, Float64Array>;

/** The unrolled student θ_0 … θ_steps and G = Σ g_i per tower. */
export function unroll64(P: Problem64): { thetas: Theta64[]; G: Theta64 } {
  const thetas: Theta64[] = [{ img: P.start.img.slice(), txt: P.start.txt.slice() }];
  const G: Theta64 = { img: new Float64Array(P.start.img.length), txt: new Float64Array(P.start.txt.length) };
  for (const b of P.batches) {
    const th = thetas[thetas.length - 1]!;
    const { grads } = step64(P, th, b);
    const next = { img: new Float64Array(th.img.length), txt: new Float64Array(th.txt.length) };
    for (const t of TOWERS) {
      const [from, to, g, acc, lr] = [th[t], next[t], grads[t], G[t], P.lr[t]];
      for (let i = 0; i < g.length; i++) {
        to[i] = from[i]! - lr * g[i]!;
        acc[i] = acc[i]! + g[i]!;
      }
    }
    thetas.push(next);
  }
  return { thetas, G };
}

const dot = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** ℓ = ‖θ − θ*‖² / ‖θ_0 − θ*‖² per tower, summed (the full-unroll loss at its endpoint θ). */
export function endpointLoss64(P: Problem64, theta: Readonly<Record<Tower, Float64Array>>): number {
  let l = 0;
  for (const t of TOWERS) {
    // one loop, no temporaries (the same sums in the same order as dot() of the two residuals; 14.7M
    // parameters at the CC3M sizes, where typed-array maps cost seconds)
    const [th, target, start] = [theta[t], P.target[t], P.start[t]];
    let num = 0;
    let den = 0;
    for (let i = 0; i < th.length; i++) {
      const r = th[i]! - target[i]!;
      const d0 = start[i]! - target[i]!;
      num += r * r;
      den += d0 * d0;
    }
    l += num / den;
  }
  return l;
}

/** Central difference with one Richardson step. */
export function richardson64<T extends Float64Array | number>(at: (e: number) => T, h: number): T {
  const diff = (e: number) => {
    const a = at(e);
    const b = at(-e);
    return typeof a === 'number' ? ((a - (b as number)) / (2 * e)) : (a as Float64Array).map((v, i) => (v - (b as Float64Array)[i]!) / (2 * e));
  };
  const d1 = diff(h);
  const d2 = diff(h / 2);
  return (typeof d1 === 'number' ? (4 * (d2 as number) - d1) / 3 : (d1 as Float64Array).map((v, i) => (4 * (d2 as Float64Array)[i]! - v) / 3)) as T;
}

/**
 * TESLA mode's losses and gradients (iteration.ts): per tower ℓ and ∂ℓ/∂α with G fixed, and the data
 * gradients of Σ_i ⟨c, g_i(θ_i; data)⟩ for x, y and S (N × dImg, N × dTxt, N × N).
 */
export function tesla64(P: Problem64, relStep = 1e-4) {
  const { thetas, G } = unroll64(P);
  const loss = {} as Record<Tower, number>;
  const gLr = {} as Record<Tower, number>;
  const cot = {} as Theta64;
  for (const t of TOWERS) {
    const resid = P.start[t].map((v, i) => v - P.lr[t] * G[t][i]! - P.target[t][i]!);
    const d0 = P.start[t].map((v, i) => v - P.target[t][i]!);
    const denom = dot(d0, d0);
    loss[t] = dot(resid, resid) / denom;
    gLr[t] = (-2 * dot(resid, G[t])) / denom;
    cot[t] = resid.map((v) => (-2 * P.lr[t] * v) / denom);
  }
  const [dImg, dTxt] = [P.shape.img.dIn, P.shape.txt.dIn];
  const gx = new Float64Array(P.n * dImg);
  const gy = new Float64Array(P.n * dTxt);
  const gs = new Float64Array(P.n * P.n);
  // a step of `relStep` times the parameters' norm along the cotangent
  const norm = (v: Float64Array) => Math.sqrt(dot(v, v));
  const h = (relStep * Math.hypot(norm(P.start.img), norm(P.start.txt))) / Math.hypot(norm(cot.img), norm(cot.txt));
  P.batches.forEach((b, i) => {
    const B = b.length;
    const at = (e: number) => {
      const th = { img: thetas[i]!.img.map((v, k) => v + e * cot.img[k]!), txt: thetas[i]!.txt.map((v, k) => v + e * cot.txt[k]!) };
      const r = step64(P, th, b);
      const out = new Float64Array(r.gx.length + r.gy.length + r.gS.length);
      out.set(r.gx);
      out.set(r.gy, r.gx.length);
      out.set(r.gS, r.gx.length + r.gy.length);
      return out;
    };
    const g = richardson64(at, h);
    for (let j = 0; j < B; j++) {
      for (let k = 0; k < dImg; k++) gx[b[j]! * dImg + k] += g[j * dImg + k]!;
      for (let k = 0; k < dTxt; k++) gy[b[j]! * dTxt + k] += g[B * dImg + j * dTxt + k]!;
      for (let k = 0; k < B; k++) gs[b[j]! * P.n + b[k]!] += g[B * (dImg + dTxt) + j * B + k]!;
    }
  });
  return { loss, grads: { x: gx, y: gy, sFull: gs, lrImg: gLr.img, lrTxt: gLr.txt } };
}

/** The full-unroll (MTT) loss: unroll on the problem's data, score the endpoint. */
export const fullLoss64 = (P: Problem64): number => endpointLoss64(P, unroll64(P).thetas[P.batches.length]!);

export interface ParitySizes {
  readonly dImg: number;
  readonly dTxt: number;
  readonly dOut: number;
  /** synthetic pairs, pairs per unrolled step, unrolled steps */
  readonly n: number;
  readonly batch: number;
  readonly steps: number;
}

/** One iteration's inputs for `distillIteration` (caller disposes `tensors`) and the same values in float64. */
export interface ParityCase {
  readonly state: SyntheticState;
  readonly teacher: Teacher;
  readonly steps: UnrollStep[];
  readonly problem: Problem64;
  readonly tensors: tf.Tensor[];
}

/**
 * A random problem of the given sizes: PyTorch-initialised heads as θ_0, θ* = θ_0 + N(0, 0.01²) noise,
 * X uniform [0, 1) (non-negative like pooled CNN features), Y uniform [−½, ½), S = I + U[0, 0.1), α = 0.1,
 * InfoNCE at T = 0.07, dropout off.
 */
export function parityCase(z: ParitySizes, seed: number): ParityCase {
  const r = rng(seed);
  const u = () => r.next();
  const theta0 = initDual(dualShape(z.dImg, z.dTxt, z.dOut), u);
  const start = { img: flattenTower(theta0.img), txt: flattenTower(theta0.txt) };
  const startValues = { img: start.img.dataSync() as Float32Array, txt: start.txt.dataSync() as Float32Array };
  const targetValues = { img: startValues.img.map((v) => v + 0.01 * normal(r)), txt: startValues.txt.map((v) => v + 0.01 * normal(r)) };
  const target = { img: tf.tensor1d(targetValues.img), txt: tf.tensor1d(targetValues.txt) };
  const x = Float32Array.from({ length: z.n * z.dImg }, u);
  const y = Float32Array.from({ length: z.n * z.dTxt }, () => u() - 0.5);
  const s = Float32Array.from({ length: z.n * z.n }, (_, k) => (k % (z.n + 1) === 0 ? 1 : 0) + 0.1 * u());
  const batches = Array.from({ length: z.steps }, () => sampleWithoutReplacement(r, z.n, z.batch));
  const state: SyntheticState = {
    x: tf.tensor2d(x, [z.n, z.dImg]),
    y: tf.tensor2d(y, [z.n, z.dTxt]),
    sFull: tf.tensor2d(s, [z.n, z.n]),
    lrImg: tf.scalar(0.1),
    lrTxt: tf.scalar(0.1),
  };
  const wide = (v: Float32Array) => Float64Array.from(v);
  const lr = Math.fround(0.1);
  return {
    state,
    teacher: { theta0, start, target },
    steps: batches.map((batch) => ({ batch, maskImg: null, maskTxt: null })),
    problem: {
      shape: { img: { dIn: z.dImg, dOut: z.dOut }, txt: { dIn: z.dTxt, dOut: z.dOut } },
      start: { img: wide(startValues.img), txt: wide(startValues.txt) },
      target: { img: wide(targetValues.img), txt: wide(targetValues.txt) },
      n: z.n,
      x: wide(x),
      y: wide(y),
      s: wide(s),
      lr: { img: lr, txt: lr },
      batches,
      temperature: Math.fround(0.07),
    },
    tensors: [...Object.values(state), ...TOWERS.flatMap((t) => [...Object.values(theta0[t]), start[t], target[t]])],
  };
}
