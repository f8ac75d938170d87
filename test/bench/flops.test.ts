import { strict as assert } from 'node:assert';
import { type IterationShape, dataGradientFlops, iterationFlops, sgemmFlops, stepFlops } from '../../bench/flops';

/** 2·m·k·n for each listed product m×k · k×n. */
const products = (list: readonly (readonly [number, number, number])[]) => list.reduce((a, [m, k, n]) => a + 2 * m * k * n, 0);

/** The matrix products of one step gradient, listed one by one (the module comment's table). */
function stepProducts(s: IterationShape): [number, number, number][] {
  const { width: d, batch: B, rank: r } = s;
  const tower = (D: number): [number, number, number][] => [
    [B, D, d], // P = X W1
    [B, d, d], // Q = A W2
    [d, B, d], // ∂W2 = Aᵀ ∂Q
    [B, d, d], // ∂A = ∂Q W2ᵀ
    [D, B, d], // ∂W1 = Xᵀ ∂P
  ];
  const shared: [number, number, number][] = [
    [B, d, B], // L = U Vᵀ
    [B, B, d], // ∂U = ∂L V
    [B, B, d], // ∂V = ∂Lᵀ U
    ...(r > 0 ? [[B, r, B] as [number, number, number]] : []), // L_b R_bᵀ
  ];
  return [...tower(s.dImg), ...tower(s.dTxt), ...shared];
}

describe('bench/flops', () => {
  const brief: IterationShape = { dImg: 1280, dTxt: 100, width: 256, batch: 32, synSteps: 8, rank: 0 };

  it('counts one step gradient as the sum of its listed products', () => {
    for (const s of [brief, { ...brief, width: 512, rank: 10 }, { dImg: 3, dTxt: 2, width: 5, batch: 7, synSteps: 1, rank: 2 }]) {
      assert.equal(stepFlops(s), products(stepProducts(s)));
    }
  });

  it('counts the data gradient with θ fixed: one operand where θ is the other, both elsewhere', () => {
    const s = { dImg: 3, dTxt: 2, width: 5, batch: 7, synSteps: 1, rank: 2 };
    const { width: d, batch: B, rank: r } = s;
    const tower = (D: number) => products([[B, d, D]]) + products([[B, d, d]]) + 2 * products([[d, B, d]]) + products([[B, d, d]]) + 2 * products([[D, B, d]]);
    const shared = 2 * (products([[B, d, B]]) + 2 * products([[B, B, d]])) + 2 * products([[B, r, B]]);
    assert.equal(dataGradientFlops(s), tower(3) + tower(2) + shared);
  });

  it('adds up the iteration: TESLA unroll + re-pass, full unroll + reverse through every step', () => {
    const F = stepFlops(brief);
    const R = dataGradientFlops(brief);
    assert.equal(iterationFlops(brief, 'tesla'), 8 * F + 8 * (F + R));
    assert.equal(iterationFlops(brief, 'full'), 8 * F + R + 7 * 2 * F);
    // one step: the full unroll is TESLA without the first pass (step 0's θ is a constant in both)
    const one = { ...brief, synSteps: 1 };
    assert.equal(iterationFlops(one, 'tesla') - iterationFlops(one, 'full'), stepFlops(one));
    // the brief's d = 256 iteration by hand: F = 4·32·1380·256 + 12·32·256² + 6·32²·256, R = 6·32·1380·256 + 16·32·256² + 12·32²·256
    assert.equal(F, 45_219_840 + 25_165_824 + 1_572_864);
    assert.equal(R, 67_829_760 + 33_554_432 + 3_145_728);
    assert.equal(iterationFlops(brief, 'tesla'), 1_987_575_808); // about 2 GFLOP
    assert.equal(sgemmFlops(2048), 17_179_869_184);
  });
});
