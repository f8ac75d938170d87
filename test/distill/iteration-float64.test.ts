/**
 * One distillation iteration at the project's real tower sizes (NSFWJS image features 1280-d, wink text
 * vectors 100-d; d = 256: 394,240 + 92,160 parameters, d = 512: 919,552 + 315,392) against the float64
 * reference of test/distill/float64.ts. The long reductions are what float32 gets wrong here: with one
 * tf.sum per norm and dot product, wasm's gradients were off by up to 1.6e-4 (d = 256) and 4.9e-4 (d = 512);
 * with blockedSum and scaleByScalar (model/reduce.ts), by at most 4e-6 (seeds 7–9).
 */
import { strict as assert } from 'node:assert';
import { tf } from '../../src/backend';
import { type GradientMode, type IterationResult, distillIteration } from '../../src/distill/iteration';
import { type ParityCase, type ParitySizes, type Problem64, fullLoss64, parityCase, richardson64, tesla64 } from './float64';
import { onSuiteAndWasm, relErr } from '../helpers';

const TOLERANCE = 1e-5;

/** ‖a − b‖∞ / ‖b‖∞: the largest entry's error, relative to the largest entry. */
function relMax(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num = Math.max(num, Math.abs(a[i]! - b[i]!));
    den = Math.max(den, Math.abs(b[i]!));
  }
  return num / Math.max(den, 1e-30);
}

async function iterate(c: ParityCase, mode: GradientMode): Promise<IterationResult> {
  return distillIteration(c.state, c.teacher, c.steps, {
    loss: 'infonce',
    temperature: 0.07,
    similarity: { kind: 'full', rank: 0, alpha: 1 },
    mode,
  });
}

const norm = (v: Float64Array) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

describe('distill: one iteration at real tower sizes vs float64', function () {
  this.timeout(600000);

  for (const dOut of [256, 512]) {
    const sizes: ParitySizes = { dImg: 1280, dTxt: 100, dOut, n: 16, batch: 8, steps: 3 };

    it(`tesla, d = ${dOut}: both losses and the gradients of x, y, S and both α within ${TOLERANCE} (L2 and max entry)`, async () => {
      let ref: ReturnType<typeof tesla64> | undefined;
      await onSuiteAndWasm(async (backend) => {
        const c = parityCase(sizes, 7);
        const res = await iterate(c, 'tesla');
        try {
          ref ??= tesla64(c.problem);
          for (const [name, got, want] of [['lossImg', res.lossImg, ref.loss.img], ['lossTxt', res.lossTxt, ref.loss.txt]] as const) {
            assert.ok(Math.abs(got - want) <= TOLERANCE * Math.abs(want), `${backend}: ${name} ${got} vs float64 ${want}`);
          }
          for (const [key, want] of Object.entries(ref.grads)) {
            const got = await res.grads[key]!.data();
            const exact = typeof want === 'number' ? [want] : want;
            const l2 = relErr(got, exact);
            const max = relMax(got, exact);
            assert.ok(l2 < TOLERANCE && max < TOLERANCE, `${backend}: gradient of ${key}: relative error ${l2} (L2), ${max} (max entry)`);
          }
        } finally {
          tf.dispose([...c.tensors, ...Object.values(res.grads)]);
        }
      });
    });

    it(`full unroll, d = ${dOut}: α gradients, and x, y, S gradients along themselves, within ${TOLERANCE}`, async () => {
      await onSuiteAndWasm(async (backend) => {
        const c = parityCase(sizes, 8);
        const res = await iterate(c, 'full');
        try {
          const P = c.problem;
          assert.ok(Math.abs(res.lossImg + res.lossTxt - fullLoss64(P)) <= TOLERANCE * fullLoss64(P), `${backend}: loss`);
          // the learning rates: the whole derivative
          for (const [key, t] of [['lrImg', 'img'], ['lrTxt', 'txt']] as const) {
            const want = richardson64((e) => fullLoss64({ ...P, lr: { ...P.lr, [t]: P.lr[t] + e } }), 1e-4 * P.lr[t]);
            const got = (await res.grads[key]!.data())[0]!;
            assert.ok(Math.abs(got - want) < TOLERANCE * Math.abs(want), `${backend}: gradient of ${key} ${got} vs float64 ${want}`);
          }
          // the data: the derivative along the computed gradient g is ‖g‖ exactly when g is right; this sees
          // every error that scales or tilts g (a wrong ‖θ_0 − θ*‖² scales it), not one orthogonal to g
          for (const key of ['x', 'y', 'sFull'] as const) {
            const g = Float64Array.from(await res.grads[key]!.data());
            const gNorm = norm(g);
            const dir = g.map((v) => v / gNorm);
            const field = key === 'sFull' ? 's' : key;
            const base = P[field];
            const at = (e: number): number => fullLoss64({ ...P, [field]: base.map((v, i) => v + e * dir[i]!) } as Problem64);
            const want = richardson64(at, 1e-5 * norm(base));
            assert.ok(Math.abs(gNorm - want) < TOLERANCE * Math.abs(want), `${backend}: gradient of ${key} along itself ${gNorm} vs float64 ${want}`);
          }
        } finally {
          tf.dispose([...c.tensors, ...Object.values(res.grads)]);
        }
      });
    });
  }
});
