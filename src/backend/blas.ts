/**
 * Matrix products on OpenBLAS for the WebAssembly backend.
 *
 * tfjs-wasm multiplies matrices with XNNPACK at 16–19 GFLOP/s on one core of this machine, and packs the right
 * operand again whenever it is a new tensor (an unrolled student's weights are new at every step). OpenBLAS, the
 * library the PyTorch peer runs on (Debian's `libopenblas0-pthread`), reaches 58–76 GFLOP/s on one core for the
 * same shapes (a 32 × 1280 by 1280 × 256 product: 0.32 ms against 1.0 ms packed, 3–5 ms unpacked).
 *
 * When koffi (an FFI whose npm package carries its prebuilt binaries; an optional dependency) and an OpenBLAS
 * library load, `installBlasKernels` replaces the wasm backend's `BatchMatMul` kernel by one that calls
 * `cblas_sgemm` on the tensors' bytes where they lie in the WebAssembly heap: no copies, and transposes are
 * flags of the call rather than extra ops. Every product of the library (forward, tfjs's own gradients,
 * evaluation, retrieval) goes through it. So do the image encoders' pointwise (1 × 1) convolutions, `FusedConv2D`,
 * and SGD steps with a number step size outside a tape (`sgdStepKernel`: saxpy calls instead of two to six ops).
 * Anything these kernels do not cover (another dtype, batch shapes that broadcast other than one against many,
 * larger filters, strides, padding) falls back to XNNPACK's kernel.
 *
 * `PTMST_BLAS=off` keeps XNNPACK; `PTMST_BLAS=<library>` loads that file (it must export `cblas_sgemm`);
 * unset or `auto`, Debian's OpenBLAS is tried and its absence is not an error.
 *
 * With BLAS, every op runs on one thread and the cores go to a stage's pool workers instead. Measured on
 * two cores: OpenBLAS on two threads gained nothing on an expert epoch (3.57 → 3.61 s) and slowed a TESLA
 * iteration (283 → 344 ms; its threads spin between calls), and tfjs-wasm's threaded build beside it doubled the
 * epoch (3.6 → 7.2 s). OpenBLAS's thread count is one setting per process, shared by every worker thread.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { kernelSwitch } from './kernel-switch';
import { type KernelArgs, wasmBackendOf } from './wasm-internals';

type Sgemm = (
  order: number, transA: number, transB: number, m: number, n: number, k: number, alpha: number,
  a: Float32Array, lda: number, b: Float32Array, ldb: number, beta: number, c: Float32Array, ldc: number,
) => void;

type Saxpy = (n: number, alpha: number, x: Float32Array, incx: number, y: Float32Array, incy: number) => void;

interface Blas {
  readonly sgemm: Sgemm;
  /** y ← αx + y; every CBLAS has it, but the step kernel that needs it is skipped where it is missing */
  readonly saxpy?: Saxpy;
  /** what loaded, e.g. "OpenBLAS 0.3.21 … (libopenblas.so.0)" */
  readonly description: string;
  readonly setThreads?: (n: number) => void;
}

const ROW_MAJOR = 101;
const NO_TRANS = 111;
const TRANS = 112;

/** Libraries tried when `PTMST_BLAS` is unset: Debian's OpenBLAS (the pthread variant is what `libopenblas0` installs by default). */
const DEFAULT_LIBRARIES = ['libopenblas.so.0', 'libopenblas.so', 'libopenblas.dylib'];

let loaded: { blas: Blas | undefined } | undefined;

/** The BLAS library (loaded on first call), or undefined when koffi or the library is absent and none was named. */
export function blasLibrary(): Blas | undefined {
  loaded ??= { blas: loadBlas() };
  return loaded.blas;
}

function loadBlas(): Blas | undefined {
  const env = process.env.PTMST_BLAS;
  if (env === 'off') return undefined;
  const named = env !== undefined && env !== '' && env !== 'auto' ? env : undefined;
  let koffi: typeof import('koffi');
  try {
    koffi = require('koffi') as typeof import('koffi');
  } catch (err) {
    if (named) throw new ConfigError(`PTMST_BLAS=${named}: the optional dependency koffi, which loads it, failed to load (${(err as Error).message})`);
    return undefined;
  }
  for (const file of named ? [named] : DEFAULT_LIBRARIES) {
    let lib: ReturnType<typeof koffi.load>;
    try {
      lib = koffi.load(file);
    } catch (err) {
      if (named) throw new ConfigError(`PTMST_BLAS=${named} could not be loaded: ${(err as Error).message}`);
      continue;
    }
    let sgemm: Sgemm;
    try {
      sgemm = lib.func(
        'void cblas_sgemm(int, int, int, int, int, int, float, const float *, int, const float *, int, float, float *, int)',
      ) as unknown as Sgemm;
    } catch {
      if (named) throw new ConfigError(`PTMST_BLAS=${named} does not export cblas_sgemm`);
      continue;
    }
    const optional = <T>(definition: string): T | undefined => {
      try {
        return lib.func(definition) as unknown as T;
      } catch {
        return undefined;
      }
    };
    const config = optional<() => string>('const char *openblas_get_config()');
    const setThreads = optional<(n: number) => void>('void openblas_set_num_threads(int)');
    const saxpy = optional<Saxpy>('void cblas_saxpy(int, float, const float *, int, float *, int)');
    const description = `${config ? config().split(' ').slice(0, 2).join(' ') : 'cblas'} (${file})`;
    return { sgemm, description, ...(saxpy ? { saxpy } : {}), ...(setThreads ? { setThreads } : {}) };
  }
  return undefined;
}

/** BatchMatMul on sgemm: rank ≥ 2, float32, batch dims equal or one side of size 1. */
function sgemmBatchMatMul(sgemm: Sgemm, fallback: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const { transposeA, transposeB } = args.attrs as unknown as { transposeA: boolean; transposeB: boolean };
    const ra = a.shape.length;
    const rb = b.shape.length;
    const outerA = a.shape.slice(0, -2);
    const outerB = b.shape.slice(0, -2);
    const batchA = tf.util.sizeFromShape(outerA);
    const batchB = tf.util.sizeFromShape(outerB);
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || (batchA !== batchB && batchA !== 1 && batchB !== 1)) {
      return fallback(args);
    }
    const m = a.shape[transposeA ? ra - 1 : ra - 2]!;
    const k = a.shape[transposeA ? ra - 2 : ra - 1]!;
    const kb = b.shape[transposeB ? rb - 1 : rb - 2]!;
    const n = b.shape[transposeB ? rb - 2 : rb - 1]!;
    if (k !== kb) {
      throw new Error(
        `Error in matMul: inner shapes (${k}) and (${kb}) of Tensors with shapes ${a.shape} and ${b.shape} and ` +
          `transposeA=${transposeA} and transposeB=${transposeB} must match.`,
      );
    }
    const outShape = [...tf.broadcast_util.assertAndGetBroadcastShape(outerA, outerB), m, n];
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(outShape, 'float32');
    const batch = Math.max(batchA, batchB);
    if (m * n * batch === 0) return out;
    // views after the output's allocation, which may grow (and move) the heap
    const C = backend.typedArrayFromHeap(out);
    if (k === 0) {
      C.fill(0);
      return out;
    }
    const A = backend.typedArrayFromHeap(a);
    const B = backend.typedArrayFromHeap(b);
    const ta = transposeA ? TRANS : NO_TRANS;
    const tb = transposeB ? TRANS : NO_TRANS;
    const lda = transposeA ? m : k;
    const ldb = transposeB ? k : n;
    if (batch === 1 || (batchB === 1 && !transposeA)) {
      // one call: a stack of untransposed left matrices against one right matrix is one tall product
      sgemm(ROW_MAJOR, ta, tb, m * batch, n, k, 1, A, lda, B, ldb, 0, C, n);
      return out;
    }
    for (let i = 0; i < batch; i++) {
      const Ai = batchA === 1 ? A : A.subarray(i * m * k, (i + 1) * m * k);
      const Bi = batchB === 1 ? B : B.subarray(i * k * n, (i + 1) * k * n);
      sgemm(ROW_MAJOR, ta, tb, m, n, k, 1, Ai, lda, Bi, ldb, 0, C.subarray(i * m * n, (i + 1) * m * n), n);
    }
    return out;
  };
}

/** Activations of FusedConv2D the 1 × 1 path covers, as the wasm kernel that applies each afterwards. */
const ACTIVATION_KERNELS: Readonly<Record<string, string | null>> = { linear: null, relu: 'Relu', relu6: 'Relu6' };

/** A host vector of at least `n` ones, for the rank-one product that broadcasts a bias over rows. */
let ones = new Float32Array(0);
function onesOf(n: number): Float32Array {
  if (ones.length < n) ones = new Float32Array(n).fill(1);
  return ones.subarray(0, n);
}

/**
 * FusedConv2D for 1 × 1 filters at stride 1 without padding, NHWC (MobileNetV2's pointwise convolutions, most of
 * its FLOPs): one product of the [pixels × in] input with the [in × out] filter, added to the bias (itself a
 * rank-one product, ones · biasᵀ, so that no JavaScript loop touches each element: those cost 4–6 ns per element
 * here against ~1 for a wasm kernel), then the activation by tfjs-wasm's own Relu / Relu6 kernel.
 */
function sgemmPointwiseConv(sgemm: Sgemm, fallback: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x, filter, bias, preluActivationWeights } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const attrs = args.attrs as unknown as {
      strides: [number, number] | number; pad: 'valid' | 'same' | number; dilations: [number, number] | number;
      dataFormat: string; dimRoundingMode?: 'floor' | 'round' | 'ceil'; activation: string;
    };
    const act = ACTIVATION_KERNELS[attrs.activation];
    const actKernel = act ? tf.getKernel(act, 'wasm') : undefined;
    if (x === undefined || filter === undefined || preluActivationWeights != null || act === undefined || (act !== null && actKernel === undefined) || attrs.dataFormat !== 'NHWC') {
      return fallback(args);
    }
    const info = tf.backend_util.computeConv2DInfo(
      x.shape as [number, number, number, number], filter.shape as [number, number, number, number],
      attrs.strides, attrs.dilations, attrs.pad, attrs.dimRoundingMode,
    );
    const p = info.padInfo;
    const pointwise = info.filterHeight === 1 && info.filterWidth === 1 && info.strideHeight === 1 && info.strideWidth === 1 &&
      info.dilationHeight === 1 && info.dilationWidth === 1 && p.top + p.bottom + p.left + p.right === 0;
    if (!pointwise || x.dtype !== 'float32' || (bias != null && bias.shape.length !== 1)) return fallback(args);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(info.outShape, 'float32');
    const rows = info.batchSize * info.outHeight * info.outWidth;
    const cin = info.inChannels;
    const cout = info.outChannels;
    if (rows * cout === 0) return out;
    const C = backend.typedArrayFromHeap(out);
    if (bias != null) sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, rows, cout, 1, 1, onesOf(rows), 1, backend.typedArrayFromHeap(bias), cout, 0, C, cout);
    // one product per image: OpenBLAS's result for a row depends on where it falls in the product's blocking, and
    // an image's features must not depend on its place in the batch
    const X = backend.typedArrayFromHeap(x);
    const F = backend.typedArrayFromHeap(filter);
    const pixels = info.outHeight * info.outWidth;
    for (let i = 0; i < info.batchSize; i++) {
      const Xi = X.subarray(i * pixels * cin, (i + 1) * pixels * cin);
      sgemm(ROW_MAJOR, NO_TRANS, NO_TRANS, pixels, cout, cin, 1, Xi, cin, F, cout, bias != null ? 1 : 0, C.subarray(i * pixels * cout, (i + 1) * pixels * cout), cout);
    }
    if (actKernel === undefined) return out;
    const activated = actKernel.kernelFunc({ inputs: { x: out }, backend: args.backend, attrs: {} }) as tf.TensorInfo;
    (args.backend as unknown as { disposeData(id: object): void }).disposeData(out.dataId);
    return activated;
  };
}

/** The kernel of `sgdStepKernel`: one tensor's SGD step; it has no gradient, so it never runs under a tape. */
const SGD_STEP = 'PtmstSgdStep';

interface SgdStepAttrs {
  readonly lr: number;
  readonly momentum: number;
  readonly weightDecay: number;
}

/**
 * PyTorch's SGD step on one tensor (model/sgd.ts has the formula) as copies and saxpy calls on the heap:
 *   with a velocity: v' = (g + λθ) + μv, θ' = θ − η v';   without: θ' = θ − η g − ηλ θ.
 * tfjs ops take two to six kernels, each a pass over the weights and a dispatch (a 1280 × 256 weight: mul and sub
 * 0.28 ms); here one kernel makes one to four saxpy passes at memory speed (0.08 ms). The sums differ from the ops'
 * by float32 rounding (saxpy may fuse its multiply-add).
 */
function saxpySgdStep(saxpy: Saxpy): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { param, grad, velocity } = args.inputs as Record<string, tf.TensorInfo | undefined>;
    const { lr, momentum, weightDecay } = args.attrs as unknown as SgdStepAttrs;
    for (const [name, t] of [['grad', grad], ['velocity', velocity]] as const) {
      if (t !== undefined && !tf.util.arraysEqual(t.shape, param!.shape)) {
        throw new Error(`sgd step: ${name} has shape [${t.shape}], the parameter [${param!.shape}]`);
      }
    }
    const backend = wasmBackendOf(args);
    const n = tf.util.sizeFromShape(param!.shape);
    const pOut = backend.makeOutput(param!.shape, 'float32');
    const vOut = velocity && backend.makeOutput(param!.shape, 'float32');
    // views after the outputs' allocations, which may grow (and move) the heap
    const P = backend.typedArrayFromHeap(param!);
    const G = backend.typedArrayFromHeap(grad!);
    const Pn = backend.typedArrayFromHeap(pOut);
    Pn.set(P);
    if (velocity && vOut) {
      const Vn = backend.typedArrayFromHeap(vOut);
      Vn.set(G);
      if (weightDecay > 0) saxpy(n, weightDecay, P, 1, Vn, 1);
      saxpy(n, momentum, backend.typedArrayFromHeap(velocity), 1, Vn, 1);
      saxpy(n, -lr, Vn, 1, Pn, 1);
      return [pOut, vOut];
    }
    saxpy(n, -lr, G, 1, Pn, 1);
    if (weightDecay > 0) saxpy(n, -lr * weightDecay, P, 1, Pn, 1);
    return [pOut];
  };
}

let sgdStepActive = false;

/**
 * One tensor's SGD step by the BLAS kernel above: the new parameter (and velocity, when one is given), or undefined
 * where the kernel does not apply (another backend, BLAS off or without saxpy, a non-float32 tensor, or a tape
 * recording, which needs the ops' gradients); the caller then runs the ops. Returns new tensors.
 */
export function sgdStepKernel(
  param: tf.Tensor,
  grad: tf.Tensor,
  velocity: tf.Tensor | undefined,
  attrs: SgdStepAttrs,
): { param: tf.Tensor; velocity?: tf.Tensor } | undefined {
  const tensors = velocity ? [param, grad, velocity] : [param, grad];
  if (!sgdStepActive || tf.getBackend() !== 'wasm' || tf.engine().isTapeOn() || tensors.some((t) => t.dtype !== 'float32')) return undefined;
  const inputs: tf.NamedTensorMap = velocity ? { param, grad, velocity } : { param, grad };
  const out = tf.engine().runKernel(SGD_STEP, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor | tf.Tensor[];
  const [p, v] = Array.isArray(out) ? out : [out];
  return v ? { param: p!, velocity: v } : { param: p! };
}

/** switches the replaced kernels between BLAS and XNNPACK, once installed */
let switchKernels: ((ours: boolean) => void) | undefined;
let active = false;

/**
 * Route the wasm backend's matrix products and pointwise convolutions to BLAS on one thread when a library loads (see the module comment);
 * its description, or undefined when products stay on XNNPACK. Call once tfjs-backend-wasm is loaded.
 */
export function installBlasKernels(): string | undefined {
  const blas = blasLibrary();
  if (blas === undefined) return undefined;
  const makers: Record<string, typeof sgemmBatchMatMul> = { BatchMatMul: sgemmBatchMatMul, FusedConv2D: sgemmPointwiseConv };
  switchKernels ??= kernelSwitch(Object.keys(makers), (name, xnnpack) => makers[name]!(blas.sgemm, xnnpack));
  if (switchKernels === undefined) return undefined;
  if (blas.saxpy && !tf.getKernel(SGD_STEP, 'wasm')) tf.registerKernel({ kernelName: SGD_STEP, backendName: 'wasm', kernelFunc: saxpySgdStep(blas.saxpy) });
  blas.setThreads?.(1);
  useBlasKernels(true);
  return blas.description;
}

/**
 * Switch the wasm backend's products and pointwise convolutions between BLAS (true) and XNNPACK (false), and SGD
 * steps between the BLAS kernel and tfjs ops; whether BLAS is in use afterwards.
 * For comparisons of the two kernels (tests, the bench); the library keeps what `installBlasKernels` chose.
 */
export function useBlasKernels(on: boolean): boolean {
  if (switchKernels === undefined) return false;
  switchKernels(on);
  active = on;
  sgdStepActive = on && tf.getKernel(SGD_STEP, 'wasm') !== undefined;
  return active;
}

/**
 * Whether the current backend's matrix products take their transposes as free flags of one BLAS call rather than
 * as separate, costly ops (XNNPACK, which also packs each new right operand); linalg.mm reads it.
 */
export function transposesAreFree(): boolean {
  return active && tf.getBackend() === 'wasm';
}
