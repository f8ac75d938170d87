import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf, useBackend } from '../../src/backend';
import { erfFused, geluBackward, geluForward, headKernelsOn, headNormBackward, headNormForward, useHeadKernels } from '../../src/backend/head-kernels';
import { SOURCE_SHA256 } from '../../src/backend/head-kernels.wasm';
import { type HeadParams, LAYER_NORM_EPS, dropoutMask, headBackward, headForward, initHead } from '../../src/model/head';
import { rng } from '../../src/util/random';
import { maxAbs } from '../helpers';
import { erf64 } from '../distill/float64';

const uniform = (r: ReturnType<typeof rng>, shape: number[], scale = 1) =>
  tf.tensor(Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => (2 * r.next() - 1) * scale), shape);

/** every float32 from `from` to `to` (both positive), ascending */
function everyFloat32(from: number, to: number): Float32Array {
  const ends = new Uint32Array(new Float32Array([from, to]).buffer);
  const bits = Uint32Array.from({ length: ends[1]! - ends[0]! + 1 }, (_, i) => ends[0]! + i);
  return new Float32Array(bits.buffer);
}

/** max |a − b| over max |b| (or max |a − b| where b is all zeros): a bound on every entry, after reading both back */
function relErr(a: tf.Tensor, b: tf.Tensor): number {
  assert.deepEqual(a.shape, b.shape);
  const [x, y] = [a.dataSync(), b.dataSync()];
  const diff = maxAbs(x.map((v, i) => v - y[i]!));
  const scale = maxAbs(y);
  return scale === 0 ? diff : diff / scale;
}

/** the head's forward and backward passes, by the fused kernels (on) or tfjs's ops (off) */
function passes(params: HeadParams, x: tf.Tensor2D, mask: tf.Tensor2D | null, gu: tf.Tensor2D, fused: boolean) {
  useHeadKernels(fused);
  try {
    return tf.tidy(() => {
      const c = headForward(params, x, mask);
      const g = headBackward(params, c, gu);
      return { u: c.u, zhat: c.zhat, invSigma: c.invSigma, norm: c.norm, ...g };
    });
  } finally {
    useHeadKernels(true);
  }
}

describe('backend/head-kernels: the head\'s LayerNorm and L2 normalisation fused in WebAssembly', () => {
  // the kernels are what this suite tests, so it switches them on whatever PTMST_HEAD_KERNELS says, and leaves them
  // as the run's configuration has them (a run with PTMST_HEAD_KERNELS=off must stay on tfjs's ops afterwards)
  let was = true;
  before(async () => {
    await ready(() => undefined);
    was = headKernelsOn();
    useHeadKernels(true);
  });
  after(() => useHeadKernels(was));

  it('was compiled from the head-kernels.c in the tree (run scripts/build-wasm.sh after editing it)', () => {
    const source = readFileSync(join(__dirname, '..', '..', '..', 'src', 'backend', 'head-kernels.c'));
    assert.equal(createHash('sha256').update(source).digest('hex'), SOURCE_SHA256);
  });

  for (const [rows, d, dropout] of [[32, 256, 0.1], [5, 7, 0.5], [3, 4, 0], [1, 1, 0], [9, 13, 0]] as const) {
    it(`forward and backward equal tfjs's ops to float32 rounding: ${rows} × ${d}, dropout ${dropout}`, function () {
      if (tf.getBackend() !== 'wasm') this.skip();
      const r = rng(rows * 100 + d);
      const params = initHead({ dIn: 11, dOut: d }, () => r.next());
      // γ and β away from their initial 1 and 0, so that both take part
      const trained: HeadParams = { ...params, gamma: uniform(r, [d], 2), beta: uniform(r, [d]) };
      const x = uniform(r, [rows, 11], 3) as tf.Tensor2D;
      const gu = uniform(r, [rows, d]) as tf.Tensor2D;
      const mask = dropoutMask(rows, d, dropout, r);
      const before = tf.memory().numTensors;
      const ops = passes(trained, x, mask, gu, false);
      const fused = passes(trained, x, mask, gu, true);
      assert.equal(tf.memory().numTensors, before + 2 * Object.keys(ops).length, 'only the returned tensors remain');
      for (const k of Object.keys(ops) as (keyof typeof ops)[]) {
        // a row of one entry has variance 0: ẑ = 0, and u = β/|β|; every value is still defined
        const e = relErr(fused[k], ops[k]);
        assert.ok(e <= 2e-6, `${k}: relative error ${e}`);
        assert.notEqual(fused[k].dataId, ops[k].dataId);
      }
      tf.dispose([...Object.values(ops), ...Object.values(fused), x, gu, trained.gamma, trained.beta, ...Object.values(params)]);
      mask?.dispose();
    });
  }

  it("GELU's derivative p φ(p) (Cephes' e^x) within float32 rounding of float64 for |p| ≤ 13, and 0 where φ underflows", function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const ps = [...Array.from({ length: 2601 }, (_, i) => -13 + i / 100), 13.5, -14, 20, 1e3];
    const n = ps.length; // 2,605: not a multiple of four, so the last vector is partial
    const p = tf.tensor2d(ps, [1, n]);
    const [zeros, ones] = [tf.zeros([1, n]) as tf.Tensor2D, tf.ones([1, n]) as tf.Tensor2D];
    // g_z = 0, g_a = 1, Φ = 0: g_p = p · e^(−p²/2) / √(2π)
    const gp = geluBackward(zeros, ones, zeros, p)!;
    const got = gp.dataSync();
    ps.forEach((x, i) => {
      const pf = Math.fround(x);
      const t = Math.fround(Math.fround(pf * pf) * 0.5); // the float32 exponent the kernel sees
      const want = (pf * Math.exp(-t)) / Math.sqrt(2 * Math.PI);
      if (t > 87.33) return assert.equal(got[i], 0, `p = ${pf}`);
      assert.ok(Math.abs(got[i]! - want) <= 8 * 2 ** -23 * Math.abs(want), `p = ${pf}: ${got[i]} vs float64 ${want}`);
    });
    tf.dispose([p, zeros, ones, gp]);
  });

  it('erf (a rational fit) within 6 float32 ulp of float64 on [−6, 6], ±1 beyond, NaN kept', function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const xs = [...Array.from({ length: 12001 }, (_, i) => -6 + i / 1000), 1e-30, -1e-20, 20, -1e30, Infinity, -Infinity, NaN];
    const x = tf.tensor1d(xs);
    const y = erfFused(x)!;
    const got = y.dataSync();
    xs.forEach((v, i) => {
      if (Number.isNaN(v)) return assert.ok(Number.isNaN(got[i]!));
      const want = erf64(Math.fround(v));
      const ulp = want === 0 ? 2 ** -149 : 2 ** (Math.floor(Math.log2(Math.abs(want))) - 23);
      assert.ok(Math.abs(got[i]! - want) <= 6 * ulp, `erf(${Math.fround(v)}) = ${got[i]}, float64 ${want}`);
    });
    tf.dispose([x, y]);
  });

  // erf(x) rounds to 1 in float32 from x ≈ 3.85 on; a float32 evaluation of the fit overshot there (1.0000002) and
  // was not monotone, so Φ(p) < 0 and GELU(p) > 0 for p in [−5.54, −5.25]
  it('erf is bounded by 1 and monotone: 1.1M points on [−8, 8] and every float32 in ±[3.6, 4]', function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const grid = Float32Array.from({ length: 1_100_001 }, (_, i) => -8 + (16 * i) / 1_100_000);
    const near = everyFloat32(3.6, 4);
    for (const xs of [grid, near, Float32Array.from(near, (v) => -v).reverse()]) {
      const x = tf.tensor1d(xs);
      const y = erfFused(x)!;
      const got = y.dataSync() as Float32Array;
      tf.dispose([x, y]);
      const over = got.findIndex((v) => Math.abs(v) > 1);
      assert.equal(over, -1, `|erf(${xs[over]})| = ${Math.abs(got[over]!)} > 1`);
      const drops = got.reduce((n, v, i) => n + (i > 0 && v < got[i - 1]! ? 1 : 0), 0);
      const first = got.findIndex((v, i) => i > 0 && v < got[i - 1]!);
      assert.equal(drops, 0, `${drops} drops over ${xs.length} inputs in [${xs[0]}, ${xs[xs.length - 1]}], the first erf(${xs[first]}) = ${got[first]} < erf(${xs[first - 1]}) = ${got[first - 1]}`);
    }
  });

  it("GELU's sign is p's and Φ stays in [0, 1], monotone: 1.1M points on [−8, 8] and every float32 in [−5.54, −5.25]", function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const grid = Float32Array.from({ length: 1_100_001 }, (_, i) => -8 + (16 * i) / 1_100_000);
    const band = Float32Array.from(everyFloat32(5.25, 5.54), (v) => -v).reverse();
    for (const ps of [grid, band]) {
      const d = 1000;
      const rows = Math.ceil(ps.length / d);
      const padded = new Float32Array(rows * d).fill(ps[ps.length - 1]!);
      padded.set(ps);
      const xW1 = tf.tensor2d(padded, [rows, d]);
      const b1 = tf.zeros([d]);
      const out = geluForward(xW1, b1)!;
      const [p, cdf, a] = [out.p.dataSync(), out.cdf.dataSync(), out.a.dataSync()];
      tf.dispose([xW1, b1, out.p, out.cdf, out.a]);
      for (let i = 0; i < ps.length; i++) {
        assert.equal(p[i], ps[i]);
        if (!(cdf[i]! >= 0 && cdf[i]! <= 1)) assert.fail(`Φ(${ps[i]}) = ${cdf[i]}`);
        if (ps[i]! < 0 ? a[i]! > 0 : a[i]! < 0) assert.fail(`GELU(${ps[i]}) = ${a[i]} has the wrong sign`);
        if (i > 0 && cdf[i]! < cdf[i - 1]!) assert.fail(`Φ(${ps[i]}) = ${cdf[i]} < Φ(${ps[i - 1]}) = ${cdf[i - 1]}`);
      }
    }
  });

  it('dropout masks: bitwise the JavaScript draws, the stream left in the same place, for any size and seed', function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    for (const [rows, cols, rate, seed] of [[1, 1, 0.1, 0], [3, 5, 0.5, -7], [128, 256, 0.1, 2 ** 32 - 3], [7, 13, 0.2, 2 ** 31], [2, 2, 1 - 2 ** -30, 5]] as const) {
      const [a, b] = [rng(seed), rng(seed)];
      const fused = dropoutMask(rows, cols, rate, a)!;
      useHeadKernels(false);
      const js = dropoutMask(rows, cols, rate, b)!;
      useHeadKernels(true);
      const bytes = (t: tf.Tensor) => { const v = t.dataSync(); return Buffer.from(v.buffer, v.byteOffset, v.byteLength); };
      assert.ok(bytes(fused).equals(bytes(js)), `${rows} × ${cols}, rate ${rate}, seed ${seed}`);
      assert.equal(a.state(), b.state());
      assert.equal(a.next(), b.next());
      tf.dispose([fused, js]);
    }
  });

  it('writes its outputs only: inputs and the tensors around them keep their values', function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const r = rng(3);
    const d = 6;
    const t = (shape: number[]) => uniform(r, shape);
    const inputs = { q: t([4, d]) as tf.Tensor2D, b2: t([d]), mask: dropoutMask(4, d, 0.3, r)!, p: t([4, d]) as tf.Tensor2D, gamma: t([d]), beta: t([d]) };
    const canary = t([64]);
    const snapshot = (ts: tf.Tensor[]) => ts.map((x) => Array.from(x.dataSync()));
    const seen = snapshot([...Object.values(inputs), canary]);
    const out = headNormForward(inputs, LAYER_NORM_EPS)!;
    const gu = t([4, d]) as tf.Tensor2D;
    const canary2 = t([64]);
    const seen2 = snapshot([gu, canary2, ...Object.values(out)]);
    const grads = headNormBackward(gu, { ...out, mask: inputs.mask }, inputs.gamma)!;
    assert.deepEqual(snapshot([...Object.values(inputs), canary]), seen);
    assert.deepEqual(snapshot([gu, canary2, ...Object.values(out)]), seen2);
    tf.dispose([...Object.values(inputs), canary, canary2, gu, ...Object.values(out), ...Object.values(grads)]);
  });

  it('stays out of tapes (the distiller differentiates through the head) and off other backends', async () => {
    const suite = (await ready(() => undefined)).name;
    const r = rng(8);
    const d = 4;
    const args = () => ({ q: uniform(r, [2, d]) as tf.Tensor2D, b2: uniform(r, [d]), mask: null, p: uniform(r, [2, d]) as tf.Tensor2D, gamma: uniform(r, [d]), beta: uniform(r, [d]) });
    const a = args();
    let insideTape: unknown = 'not run';
    const g = tf.grad((q: tf.Tensor) => {
      insideTape = headNormForward({ ...a, q: q as tf.Tensor2D }, LAYER_NORM_EPS);
      return tf.sum(q);
    })(a.q);
    assert.equal(insideTape, undefined);
    tf.dispose([g, ...Object.values(a).filter((x): x is tf.Tensor => x !== null)]);
    try {
      if (await useBackend('cpu')) {
        const b = args();
        assert.equal(headNormForward(b, LAYER_NORM_EPS), undefined);
        tf.dispose(Object.values(b).filter((x): x is tf.Tensor => x !== null));
      }
    } finally {
      await useBackend(suite);
    }
  });

  it('names the input whose shape does not fit', function () {
    if (tf.getBackend() !== 'wasm') this.skip();
    const r = rng(9);
    const q = uniform(r, [3, 5]) as tf.Tensor2D;
    const p = uniform(r, [3, 4]) as tf.Tensor2D;
    const v = uniform(r, [5]);
    assert.throws(() => headNormForward({ q, b2: v, mask: null, p, gamma: v, beta: v }, LAYER_NORM_EPS), /PtmstHeadNormForward: p has shape \[3,4\], expected \[3,5\]/);
    tf.dispose([q, p, v]);
  });
});
