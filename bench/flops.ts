/**
 * Matrix-product FLOPs of one distillation iteration (SPEC §5.2–5.4), counted analytically: the work the
 * algorithm needs, the same for every implementation, so that FLOPs / median time is an achieved rate that
 * can be set beside the machine's own SGEMM rate and compared between implementations.
 *
 * Counted: every product of two matrices (2·m·k·n FLOPs for an m×k by k×n product). Not counted: element-wise
 * work (GELU, LayerNorm, softmax, the SGD step, the contraction ⟨∂ℓ/∂g_i, g_i⟩), and row selection by index
 * (X[b], S[b, b]): an index op in PyTorch, a one-hot product in this project on tfjs-wasm (src/model/linalg.ts
 * `gatherRows`), i.e. implementation overhead that shows up as a lower achieved rate, not as work.
 *
 * One step gradient g = ∇θ loss(θ; X_b, Y_b, S_bb) on a batch of B pairs, heads of width d (src/model/head.ts,
 * src/model/dual.ts), per tower with input width D:
 *   forward   P = X W1 (2BDd), Q = A W2 (2Bd²)
 *   backward  ∂W2 = Aᵀ ∂Q (2Bd²), ∂A = ∂Q W2ᵀ (2Bd²), ∂W1 = Xᵀ ∂P (2BDd)   (no ∂X: θ is what a step updates)
 * and once for both towers: L = U Vᵀ (2B²d), ∂U = ∂L V and ∂V = ∂Lᵀ U (2B²d each); a low-rank S adds
 * S_bb ⊃ L_b R_bᵀ (2B²r). In total
 *   F = 4B(D_img + D_txt)d + 12Bd² + 6B²d [+ 2B²r].
 *
 * Reverse mode through a product C = A·B costs ∂A = ∂C·Bᵀ when A needs a gradient and ∂B = Aᵀ·∂C when B does,
 * each as much as the product itself. Differentiating g with respect to the data (X, Y, S) with θ held
 * constant (TESLA's re-pass, and the first step of a full unroll, whose θ_0 is a constant):
 *   per tower  P: ∂X only (2BDd); Q: ∂A only (2Bd²); ∂W2 = Aᵀ∂Q: both (4Bd²); ∂A = ∂Q W2ᵀ: ∂(∂Q) only (2Bd²);
 *              ∂W1 = Xᵀ∂P: both (4BDd)
 *   shared     L, ∂U, ∂V: both operands each (4B²d each); low rank: both (4B²r)
 *   R = 6B(D_img + D_txt)d + 16Bd² + 12B²d [+ 4B²r].
 * Once θ_i depends on the data (steps i ≥ 1 of a full unroll) both operands of every product need gradients:
 * 2F for the step.
 *
 *   TESLA (constant memory): T·F (unroll) + T·(F + R) (re-pass: recompute g_i, then its data gradient)
 *   full unroll (MTT-VL):    T·F (unroll, graph kept) + R + (T − 1)·2F (reverse through every step)
 */
import type { GradientMode } from '../src/distill/iteration';

export interface IterationShape {
  /** input widths of the image and text heads */
  readonly dImg: number;
  readonly dTxt: number;
  /** head width d */
  readonly width: number;
  /** synthetic pairs per unrolled step */
  readonly batch: number;
  /** unrolled steps T */
  readonly synSteps: number;
  /** rank r of a low-rank S; 0 for a full S (or none) */
  readonly rank: number;
}

/** F: one step gradient (forward and parameter backward). */
export function stepFlops(s: IterationShape): number {
  const { dImg, dTxt, width: d, batch: B, rank: r } = s;
  return 4 * B * (dImg + dTxt) * d + 12 * B * d * d + 6 * B * B * d + 2 * B * B * r;
}

/** R: the data gradient of one step gradient, θ held constant. */
export function dataGradientFlops(s: IterationShape): number {
  const { dImg, dTxt, width: d, batch: B, rank: r } = s;
  return 6 * B * (dImg + dTxt) * d + 16 * B * d * d + 12 * B * B * d + 4 * B * B * r;
}

/** Matrix-product FLOPs of one iteration in the given gradient mode (see the module comment). */
export function iterationFlops(s: IterationShape, mode: GradientMode): number {
  const F = stepFlops(s);
  const R = dataGradientFlops(s);
  const T = s.synSteps;
  return mode === 'tesla' ? T * F + T * (F + R) : T * F + R + (T - 1) * 2 * F;
}

/** FLOPs of one n×n by n×n single-precision product (SGEMM). */
export const sgemmFlops = (n: number): number => 2 * n * n * n;
