/*
 * The projection head's element-wise work (src/model/head.ts) in WebAssembly SIMD: GELU forward and backward, and the
 * LayerNorm and L2 normalisation forward and backward, one pass per row. tfjs runs these as ~45 kernels per tower and
 * step, each a dispatch and a pass over the batch; these functions do the same arithmetic, in the same float32
 * operations, on the tensors where they lie in tfjs-wasm's heap (this module imports its memory). Three things differ
 * from the ops: row sums are taken over four lanes, erf is a rational fit instead of tfjs's scalar erf, and e^(−p²/2)
 * in GELU's derivative comes from Cephes' expf polynomial instead of XNNPACK's sigmoid (each within a few ulp of the
 * exact value). The dropout masks' draws are computed here too, bit for bit those of the seeded stream.
 *
 * The module has no data and no stack: every pointer is a tensor's byte offset handed over by head-kernels.ts, so it
 * can write nowhere else in the heap (scripts/build-wasm.sh checks the compiled module for both).
 *
 * Build: scripts/build-wasm.sh (clang, wasm32, -msimd128) writes head-kernels.wasm.ts from this file.
 */
#include <wasm_simd128.h>

typedef float f32;

static inline f32 lanes_sum(v128_t v) {
  return (wasm_f32x4_extract_lane(v, 0) + wasm_f32x4_extract_lane(v, 1)) +
         (wasm_f32x4_extract_lane(v, 2) + wasm_f32x4_extract_lane(v, 3));
}

static inline v128_t splat(f32 x) { return wasm_f32x4_splat(x); }

/* the first m (1 to 4) entries at x, the other lanes 0 */
static inline v128_t load(const f32 *x, int m) {
  if (m == 4) return wasm_v128_load(x);
  v128_t v = wasm_f32x4_replace_lane(splat(0.0f), 0, x[0]);
  if (m > 1) v = wasm_f32x4_replace_lane(v, 1, x[1]);
  if (m > 2) v = wasm_f32x4_replace_lane(v, 2, x[2]);
  return v;
}

/* all ones in the first m (1 to 4) lanes, 0 in the others */
static inline v128_t first_lanes(int m) { return wasm_i32x4_lt(wasm_i32x4_make(0, 1, 2, 3), wasm_i32x4_splat(m)); }

/* the first m (1 to 4) lanes of v to x */
static inline void store(f32 *x, v128_t v, int m) {
  if (m == 4) {
    wasm_v128_store(x, v);
    return;
  }
  x[0] = wasm_f32x4_extract_lane(v, 0);
  if (m > 1) x[1] = wasm_f32x4_extract_lane(v, 1);
  if (m > 2) x[2] = wasm_f32x4_extract_lane(v, 2);
}

/*
 * e^x for x ≤ 0 (Cephes' expf): x = n ln 2 + r with |r| ≤ ln 2 / 2, e^r by its polynomial, 2^n from the exponent
 * bits; 0 below −87.33, where e^x leaves float32's normal range.
 */
static inline v128_t exp_nonpositive(v128_t x) {
  const v128_t n = wasm_f32x4_nearest(wasm_f32x4_mul(x, splat(1.44269504088896341f)));
  v128_t r = wasm_f32x4_sub(x, wasm_f32x4_mul(n, splat(0.693359375f)));
  r = wasm_f32x4_sub(r, wasm_f32x4_mul(n, splat(-2.12194440e-4f)));
  v128_t y = splat(1.9875691500e-4f);
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), splat(1.3981999507e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), splat(8.3334519073e-3f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), splat(4.1665795894e-2f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), splat(1.6666665459e-1f));
  y = wasm_f32x4_add(wasm_f32x4_mul(y, r), splat(5.0000001201e-1f));
  y = wasm_f32x4_add(wasm_f32x4_add(wasm_f32x4_mul(y, wasm_f32x4_mul(r, r)), r), splat(1.0f));
  const v128_t two_n = wasm_i32x4_shl(wasm_i32x4_add(wasm_i32x4_trunc_sat_f32x4(n), wasm_i32x4_splat(127)), 23);
  return wasm_v128_and(wasm_f32x4_mul(y, two_n), wasm_f32x4_ge(x, splat(-87.33654f)));
}

/* P(t) / Q(t) of the erf fit below, in float64 (the coefficients are the fit's float32 values) */
static inline v128_t erf_ratio64(v128_t t) {
  v128_t p = wasm_f64x2_splat((double)-1.29184879e-08f);
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)4.63091181e-06f));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)3.77686767e-04f));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)3.84564338e-03f));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)5.42773408e-02f));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)1.85243359e-01f));
  p = wasm_f64x2_add(wasm_f64x2_mul(p, t), wasm_f64x2_splat((double)1.12837917e+00f));
  v128_t q = wasm_f64x2_splat((double)6.26072034e-05f);
  q = wasm_f64x2_add(wasm_f64x2_mul(q, t), wasm_f64x2_splat((double)1.30422412e-03f));
  q = wasm_f64x2_add(wasm_f64x2_mul(q, t), wasm_f64x2_splat((double)1.54471294e-02f));
  q = wasm_f64x2_add(wasm_f64x2_mul(q, t), wasm_f64x2_splat((double)1.13935296e-01f));
  q = wasm_f64x2_add(wasm_f64x2_mul(q, t), wasm_f64x2_splat((double)4.97501043e-01f));
  q = wasm_f64x2_add(wasm_f64x2_mul(q, t), wasm_f64x2_splat(1.0));
  return wasm_f64x2_div(p, q);
}

/*
 * erf(x) to float32 rounding: x · P(x²) / Q(x²), a rational fit of degrees 6 and 5 (relative error 2e-9 on [0, 3.92]),
 * with x clamped to ±3.92, beyond which erf rounds to ±1. The fit is evaluated in float64, two lanes at a time, and
 * rounded once to float32: evaluated in float32 its rounding errors overshot 1 (1.0000002 for 3.69 ≤ |x| ≤ 3.92) and
 * made it non-monotone (tens of thousands of drops over a million inputs), so Φ(p) went below 0 and GELU(p) above 0
 * for p in [−5.54, −5.25]. In float64 the fit is monotone on every float32 in [0, 4] (checked exhaustively, 1.08e9
 * inputs; rounding to float32 keeps the order) and at most 0.99999994; the clamp to [−1, 1] only guards the bound.
 */
static inline v128_t erf_rational(v128_t x) {
  x = wasm_f32x4_min(wasm_f32x4_max(x, splat(-3.92f)), splat(3.92f));
  const v128_t lo = wasm_f64x2_promote_low_f32x4(x);
  const v128_t hi = wasm_f64x2_promote_low_f32x4(wasm_i32x4_shuffle(x, x, 2, 3, 0, 1));
  const v128_t ylo = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_mul(lo, erf_ratio64(wasm_f64x2_mul(lo, lo))));
  const v128_t yhi = wasm_f32x4_demote_f64x2_zero(wasm_f64x2_mul(hi, erf_ratio64(wasm_f64x2_mul(hi, hi))));
  const v128_t y = wasm_i32x4_shuffle(ylo, yhi, 0, 1, 4, 5);
  return wasm_f32x4_min(wasm_f32x4_max(y, splat(-1.0f)), splat(1.0f));
}

/* erf at n points (the kernels' test compares it with float64) */
__attribute__((export_name("erf_at"))) void erf_at(int n, const f32 *x, f32 *out) {
  for (int i = 0; i < n; i += 4) {
    const int m = n - i < 4 ? n - i : 4;
    store(out + i, erf_rational(load(x + i, m)), m);
  }
}

/* p = xW1 + b1, Φ(p) = (erf(p / √2) + 1) / 2 and GELU(p) = p Φ(p), per row of d entries */
__attribute__((export_name("gelu_forward"))) void gelu_forward(int rows, int d, const f32 *xw1, const f32 *b1, f32 *p, f32 *cdf, f32 *a) {
  const v128_t k = splat(0.70710678118654752f), one = splat(1.0f), half = splat(0.5f);
  for (int r = 0; r < rows; r++) {
    const int o = r * d;
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      const v128_t v = wasm_f32x4_add(load(xw1 + o + j, m), load(b1 + j, m));
      const v128_t c = wasm_f32x4_mul(wasm_f32x4_add(erf_rational(wasm_f32x4_mul(v, k)), one), half);
      store(p + o + j, v, m);
      store(cdf + o + j, c, m);
      store(a + o + j, wasm_f32x4_mul(v, c), m);
    }
  }
}

/*
 * dLoss/dp = g_z + g_a · GELU'(p), GELU'(p) = Φ(p) + p φ(p) with φ(p) = e^(−p²/2) / √(2π): the residual path's
 * gradient g_z plus the activation's
 */
__attribute__((export_name("gelu_backward"))) void gelu_backward(int n, const f32 *gz, const f32 *ga, const f32 *cdf, const f32 *p, f32 *gp) {
  const v128_t half = splat(0.5f), zero = splat(0.0f), inv_sqrt_2pi = splat(0.398942280401432678f);
  for (int i = 0; i < n; i += 4) {
    const int m = n - i < 4 ? n - i : 4; /* entries in this vector: 4, or the last one to three */
    const v128_t pv = load(p + i, m), cv = load(cdf + i, m), gav = load(ga + i, m), gzv = load(gz + i, m);
    const v128_t e = exp_nonpositive(wasm_f32x4_sub(zero, wasm_f32x4_mul(wasm_f32x4_mul(pv, pv), half)));
    const v128_t dgelu = wasm_f32x4_add(cv, wasm_f32x4_mul(pv, wasm_f32x4_mul(e, inv_sqrt_2pi)));
    store(gp + i, wasm_f32x4_add(gzv, wasm_f32x4_mul(gav, dgelu)), m);
  }
}

/*
 * An inverted-dropout mask of n entries from the seeded stream (src/util/random.ts): draw k is mulberry32's hash of
 * the counter state + (k + 1)·0x6D2B79F5, the same integer arithmetic as `Rng.nextUint32`; entry k is `keep` where the
 * draw is ≥ threshold, else 0 (model/head.ts dropoutMask has the rule).
 */
__attribute__((export_name("dropout_mask"))) void dropout_mask(int n, unsigned state, unsigned threshold, f32 keep, f32 *out) {
  const unsigned step = 0x6D2B79F5u;
  v128_t a = wasm_i32x4_make(state + step, state + 2 * step, state + 3 * step, state + 4 * step);
  const v128_t step4 = wasm_i32x4_splat(4 * step), one = wasm_i32x4_splat(1), k61 = wasm_i32x4_splat(61);
  const v128_t thr = wasm_i32x4_splat(threshold), kv = splat(keep);
  for (int i = 0; i < n; i += 4) {
    v128_t t = wasm_i32x4_mul(wasm_v128_xor(a, wasm_u32x4_shr(a, 15)), wasm_v128_or(a, one));
    t = wasm_v128_xor(t, wasm_i32x4_add(t, wasm_i32x4_mul(wasm_v128_xor(t, wasm_u32x4_shr(t, 7)), wasm_v128_or(t, k61))));
    const v128_t draw = wasm_v128_xor(t, wasm_u32x4_shr(t, 14));
    store(out + i, wasm_v128_and(wasm_u32x4_ge(draw, thr), kv), n - i < 4 ? n - i : 4);
    a = wasm_i32x4_add(a, step4);
  }
}

/*
 * Per row r of the batch (d entries each):
 *   z = (q + b2) · mask + p           (mask null: no dropout)
 *   ẑ = (z − mean z) / √(var z + eps), stored with 1/√(var z + eps)
 *   o = ẑ · γ + β;  u = o / ‖o‖, stored with ‖o‖
 */
__attribute__((export_name("head_norm_forward"))) void head_norm_forward(
    int rows, int d, const f32 *q, const f32 *b2, const f32 *mask, const f32 *p, const f32 *gamma,
    const f32 *beta, f32 eps, f32 *zhat, f32 *inv_sigma, f32 *u, f32 *norm) {
  const f32 inv_d = 1.0f / (f32)d;
  for (int r = 0; r < rows; r++) {
    const int o = r * d;
    /* z, kept in zhat for the next passes (a partial vector's other lanes load as 0 and stay 0) */
    v128_t acc = splat(0.0f);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      v128_t z = wasm_f32x4_add(load(q + o + j, m), load(b2 + j, m));
      if (mask) z = wasm_f32x4_mul(z, load(mask + o + j, m));
      z = wasm_f32x4_add(z, load(p + o + j, m));
      store(zhat + o + j, z, m);
      acc = wasm_f32x4_add(acc, z);
    }
    const f32 mu = lanes_sum(acc) * inv_d;
    /* centred (the other lanes masked back to 0), and its variance */
    const v128_t vmu = splat(mu);
    acc = splat(0.0f);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      const v128_t c = wasm_v128_and(wasm_f32x4_sub(load(zhat + o + j, m), vmu), first_lanes(m));
      store(zhat + o + j, c, m);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(c, c));
    }
    const f32 inv = 1.0f / __builtin_sqrtf(lanes_sum(acc) * inv_d + eps);
    inv_sigma[r] = inv;
    /* ẑ and o (kept in u), and ‖o‖² */
    const v128_t vinv = splat(inv);
    acc = splat(0.0f);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      const v128_t zh = wasm_f32x4_mul(load(zhat + o + j, m), vinv);
      store(zhat + o + j, zh, m);
      const v128_t out = wasm_f32x4_add(wasm_f32x4_mul(zh, load(gamma + j, m)), load(beta + j, m));
      store(u + o + j, out, m);
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(out, out));
    }
    const f32 n = __builtin_sqrtf(lanes_sum(acc));
    norm[r] = n;
    const v128_t vn = splat(n);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      store(u + o + j, wasm_f32x4_div(load(u + o + j, m), vn), m);
    }
  }
}

/*
 * Given g_u = dLoss/du, per row:
 *   g_o = (g_u − u ⟨u, g_u⟩) / ‖o‖;  g_γ += g_o · ẑ;  g_β += g_o    (g_γ, g_β summed over the rows)
 *   g_ẑ = g_o · γ;  g_z = (g_ẑ − mean g_ẑ − ẑ · mean(g_ẑ · ẑ)) / √(var z + eps);  g_q = g_z · mask
 * g_z is what the residual path carries to p; g_q goes on to the second linear layer (mask null: g_q = g_z, not written).
 */
__attribute__((export_name("head_norm_backward"))) void head_norm_backward(
    int rows, int d, const f32 *gu, const f32 *u, const f32 *norm, const f32 *zhat, const f32 *inv_sigma,
    const f32 *gamma, const f32 *mask, f32 *g_gamma, f32 *g_beta, f32 *gz, f32 *gq) {
  const f32 inv_d = 1.0f / (f32)d;
  for (int j = 0; j < d; j++) {
    g_gamma[j] = 0.0f;
    g_beta[j] = 0.0f;
  }
  for (int r = 0; r < rows; r++) {
    const int o = r * d;
    /* a partial vector's other lanes load as 0 and stay 0 through every sum below */
    v128_t acc = splat(0.0f);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      acc = wasm_f32x4_add(acc, wasm_f32x4_mul(load(u + o + j, m), load(gu + o + j, m)));
    }
    const f32 s = lanes_sum(acc);
    /* g_o (the column sums take it now), g_ẑ kept in gz, and the row's two means */
    const v128_t vs = splat(s), vn = splat(norm[r]);
    v128_t acc1 = splat(0.0f), acc2 = splat(0.0f);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      const v128_t zh = load(zhat + o + j, m);
      const v128_t go = wasm_f32x4_div(wasm_f32x4_sub(load(gu + o + j, m), wasm_f32x4_mul(load(u + o + j, m), vs)), vn);
      store(g_gamma + j, wasm_f32x4_add(load(g_gamma + j, m), wasm_f32x4_mul(go, zh)), m);
      store(g_beta + j, wasm_f32x4_add(load(g_beta + j, m), go), m);
      const v128_t gzh = wasm_f32x4_mul(go, load(gamma + j, m));
      store(gz + o + j, gzh, m);
      acc1 = wasm_f32x4_add(acc1, gzh);
      acc2 = wasm_f32x4_add(acc2, wasm_f32x4_mul(gzh, zh));
    }
    const v128_t vm1 = splat(lanes_sum(acc1) * inv_d), vm2 = splat(lanes_sum(acc2) * inv_d), vinv = splat(inv_sigma[r]);
    for (int j = 0; j < d; j += 4) {
      const int m = d - j < 4 ? d - j : 4;
      const v128_t g = wasm_f32x4_mul(wasm_f32x4_sub(wasm_f32x4_sub(load(gz + o + j, m), vm1), wasm_f32x4_mul(load(zhat + o + j, m), vm2)), vinv);
      store(gz + o + j, g, m);
      if (mask) store(gq + o + j, wasm_f32x4_mul(g, load(mask + o + j, m)), m);
    }
  }
}
