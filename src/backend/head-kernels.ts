/**
 * The projection head's element-wise work as fused WebAssembly SIMD kernels (./head-kernels.c), for the wasm backend
 * outside tapes: expert training and evaluation students, which take the head's gradients from its hand-written
 * backward pass (model/head.ts). GELU (its bias, erf, Φ and GELU(p) forward, its derivative in the backward pass),
 * and the LayerNorm and L2 normalisation, forward and backward: tfjs runs them as ~45 kernels per tower and step,
 * each a dispatch and a pass over the batch; here they are four calls. The dropout masks are drawn here too:
 * the seeded stream's integer arithmetic in four lanes, written straight into the tensor (a step's two 128 × 256
 * masks: 0.04 against 0.56 ms in JavaScript, in-process alternation).
 *
 * The module imports tfjs-wasm's own memory and reads and writes the tensors where they lie (byte offsets of
 * tensors allocated by tfjs); it has no data or stack of its own (scripts/build-wasm.sh checks). It is built twice,
 * for plain memory and for the threaded build's shared memory, so the same kernels run in every instance (the main
 * thread's and the pool workers') and a job's numbers do not depend on where it runs; it is instantiated once per
 * backend instance. Where it does not apply (another backend, a dtype other than float32, a tape recording, which
 * needs the ops' gradients) the callers run tfjs's ops, and do so under every tape: the distiller differentiates
 * through the head's backward pass.
 *
 * Numbers: the same float32 operations as the ops in model/head.ts, except that row sums are taken over four lanes,
 * means as a sum times 1/d, erf by a rational fit (the ops: tfjs-wasm's scalar erf) and e^(−p²/2) by Cephes' expf
 * polynomial (the ops: XNNPACK's sigmoid, see expHalfSquare); they agree with the ops to float32 rounding
 * (test/backend/head-kernels.test.ts), not bitwise. Masks are bitwise the JavaScript ones.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { WASM_BASE64, WASM_SHARED_BASE64 } from './head-kernels.wasm';
import { type KernelArgs, type WasmBackendInternals, wasmBackendOf } from './wasm-internals';
import type { Rng } from '../util/random';

const FORWARD = 'PtmstHeadNormForward';
const BACKWARD = 'PtmstHeadNormBackward';
const GELU_FORWARD = 'PtmstGeluForward';
const ERF = 'PtmstErf';
const GELU_BACKWARD = 'PtmstGeluBackward';
const DROPOUT_MASK = 'PtmstDropoutMask';

interface HeadKernelExports {
  gelu_forward(rows: number, d: number, xW1: number, b1: number, p: number, cdf: number, a: number): void;
  erf_at(n: number, x: number, out: number): void;
  gelu_backward(n: number, gz: number, ga: number, cdf: number, p: number, gp: number): void;
  dropout_mask(n: number, state: number, threshold: number, keep: number, out: number): void;
  head_norm_forward(
    rows: number, d: number, q: number, b2: number, mask: number, p: number, gamma: number, beta: number, eps: number,
    zhat: number, invSigma: number, u: number, norm: number,
  ): void;
  head_norm_backward(
    rows: number, d: number, gu: number, u: number, norm: number, zhat: number, invSigma: number, gamma: number,
    mask: number, gGamma: number, gBeta: number, gz: number, gq: number,
  ): void;
}

/** The parts of the WebAssembly JavaScript API used here: Node has them; lib ES2022 does not declare them. */
interface WebAssemblyApi {
  Memory: abstract new (...args: never[]) => { readonly buffer: ArrayBuffer | SharedArrayBuffer };
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object, imports: object) => { readonly exports: object };
}
const WebAssemblyJs = (globalThis as unknown as { WebAssembly: WebAssemblyApi }).WebAssembly;

/** per backend instance (keyed by its Emscripten module): our instance on its memory, or null where it cannot run */
const instances = new WeakMap<object, HeadKernelExports | null>();

function instanceOf(backend: WasmBackendInternals): HeadKernelExports | null {
  let k = instances.get(backend.wasm);
  if (k === undefined) {
    // the single-threaded builds export their memory; the threaded build's glue keeps it as wasmMemory
    const memory = backend.wasm.asm?.memory ?? backend.wasm.wasmMemory;
    k = memory instanceof WebAssemblyJs.Memory ? (new WebAssemblyJs.Instance(compiled(memory.buffer instanceof SharedArrayBuffer), { env: { memory } }).exports as unknown as HeadKernelExports) : null;
    instances.set(backend.wasm, k);
  }
  return k;
}

const compiledModules: { plain?: object; shared?: object } = {};
const compiled = (shared: boolean) =>
  shared
    ? (compiledModules.shared ??= new WebAssemblyJs.Module(Buffer.from(WASM_SHARED_BASE64, 'base64')))
    : (compiledModules.plain ??= new WebAssemblyJs.Module(Buffer.from(WASM_BASE64, 'base64')));

function checkShapes(kernel: string, rowsOf: Record<string, tf.TensorInfo | undefined>, vectors: Record<string, tf.TensorInfo>): [number, number] {
  const first = Object.values(rowsOf).find((t) => t !== undefined)!;
  const [rows, d] = first.shape as [number, number];
  for (const [name, t] of Object.entries(rowsOf)) {
    if (t !== undefined && (t.shape.length !== 2 || t.shape[0] !== rows || t.shape[1] !== d)) {
      throw new Error(`${kernel}: ${name} has shape [${t.shape}], expected [${rows},${d}]`);
    }
  }
  for (const [name, t] of Object.entries(vectors)) {
    if (tf.util.sizeFromShape(t.shape) !== d) throw new Error(`${kernel}: ${name} has shape [${t.shape}], expected [${d}]`);
  }
  return [rows, d];
}

const offsetOf = (backend: WasmBackendInternals, t: tf.TensorInfo | undefined): number =>
  t === undefined ? 0 : backend.dataIdMap.get(t.dataId).memoryOffset;

/** every input of a kernel has this shape, else an error naming the input */
function sameShapes(kernel: string, inputs: Record<string, tf.TensorInfo | undefined>): number[] {
  const entries = Object.entries(inputs);
  const shape = entries[0]![1]!.shape;
  for (const [name, t] of entries) {
    if (!tf.util.arraysEqual(t!.shape, shape)) throw new Error(`${kernel}: ${name} has shape [${t!.shape}], expected [${shape}]`);
  }
  return shape;
}

function geluForwardKernel(args: KernelArgs): tf.TensorInfo[] {
  const { xW1, b1 } = args.inputs as Record<string, tf.TensorInfo>;
  const [rows, d] = checkShapes(GELU_FORWARD, { xW1 }, { b1: b1! });
  const backend = wasmBackendOf(args);
  const p = backend.makeOutput([rows, d], 'float32');
  const cdf = backend.makeOutput([rows, d], 'float32');
  const a = backend.makeOutput([rows, d], 'float32');
  const at = (t: tf.TensorInfo) => offsetOf(backend, t);
  instanceOf(backend)!.gelu_forward(rows, d, at(xW1!), at(b1!), at(p), at(cdf), at(a));
  return [p, cdf, a];
}

function erfKernel(args: KernelArgs): tf.TensorInfo {
  const { x } = args.inputs as Record<string, tf.TensorInfo>;
  const backend = wasmBackendOf(args);
  const out = backend.makeOutput(x!.shape, 'float32');
  instanceOf(backend)!.erf_at(tf.util.sizeFromShape(x!.shape), offsetOf(backend, x!), offsetOf(backend, out));
  return out;
}

function geluBackwardKernel(args: KernelArgs): tf.TensorInfo {
  const { gz, ga, cdf, p } = args.inputs as Record<string, tf.TensorInfo>;
  const shape = sameShapes(GELU_BACKWARD, { gz, ga, cdf, p });
  const backend = wasmBackendOf(args);
  const gp = backend.makeOutput(shape, 'float32');
  const at = (t: tf.TensorInfo) => offsetOf(backend, t);
  instanceOf(backend)!.gelu_backward(tf.util.sizeFromShape(shape), at(gz!), at(ga!), at(cdf!), at(p!), at(gp));
  return gp;
}

interface DropoutMaskAttrs {
  readonly rows: number;
  readonly cols: number;
  /** the stream's state before the first draw */
  readonly state: number;
  /** the least draw (an integer below 2^32) whose entry is kept */
  readonly threshold: number;
  readonly keep: number;
}

function dropoutMaskKernel(args: KernelArgs): tf.TensorInfo {
  const { rows, cols, state, threshold, keep } = args.attrs as unknown as DropoutMaskAttrs;
  const backend = wasmBackendOf(args);
  const out = backend.makeOutput([rows, cols], 'float32');
  instanceOf(backend)!.dropout_mask(rows * cols, state, threshold, keep, offsetOf(backend, out));
  return out;
}

function forwardKernel(args: KernelArgs): tf.TensorInfo[] {
  const { q, b2, mask, p, gamma, beta } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const { eps } = args.attrs as unknown as { eps: number };
  const [rows, d] = checkShapes(FORWARD, { q, mask, p }, { b2: b2!, gamma: gamma!, beta: beta! });
  const backend = wasmBackendOf(args);
  const zhat = backend.makeOutput([rows, d], 'float32');
  const invSigma = backend.makeOutput([rows, 1], 'float32');
  const u = backend.makeOutput([rows, d], 'float32');
  const norm = backend.makeOutput([rows, 1], 'float32');
  const at = (t: tf.TensorInfo | undefined) => offsetOf(backend, t);
  instanceOf(backend)!.head_norm_forward(rows, d, at(q), at(b2), at(mask), at(p), at(gamma), at(beta), eps, at(zhat), at(invSigma), at(u), at(norm));
  return [zhat, invSigma, u, norm];
}

function backwardKernel(args: KernelArgs): tf.TensorInfo[] {
  const { gu, u, norm, zhat, invSigma, gamma, mask } = args.inputs as Record<string, tf.TensorInfo | undefined>;
  const [rows, d] = checkShapes(BACKWARD, { gu, u, zhat, mask }, { gamma: gamma! });
  for (const [name, t] of [['norm', norm!], ['invSigma', invSigma!]] as const) {
    if (tf.util.sizeFromShape(t.shape) !== rows) throw new Error(`${BACKWARD}: ${name} has shape [${t.shape}], expected [${rows},1]`);
  }
  const backend = wasmBackendOf(args);
  const gGamma = backend.makeOutput([d], 'float32');
  const gBeta = backend.makeOutput([d], 'float32');
  const gz = backend.makeOutput([rows, d], 'float32');
  const gq = mask ? backend.makeOutput([rows, d], 'float32') : undefined;
  const at = (t: tf.TensorInfo | undefined) => offsetOf(backend, t);
  instanceOf(backend)!.head_norm_backward(rows, d, at(gu), at(u), at(norm), at(zhat), at(invSigma), at(gamma), at(mask), at(gGamma), at(gBeta), at(gz), at(gq));
  return gq ? [gGamma, gBeta, gz, gq] : [gGamma, gBeta, gz];
}

let active = false;

export const HEAD_KERNEL_SETTINGS = ['on', 'off'] as const;

/** `PTMST_HEAD_KERNELS`: on (also unset or empty) or off; anything else is a ConfigError naming the valid values. */
export function headKernelsWanted(env: string | undefined = process.env.PTMST_HEAD_KERNELS): boolean {
  if (env === undefined || env === '' || env === 'on') return true;
  if (env === 'off') return false;
  throw new ConfigError(`PTMST_HEAD_KERNELS=${env} is not a setting; valid values: ${HEAD_KERNEL_SETTINGS.join(', ')}`);
}

/**
 * Register the kernels on the wasm backend and use them unless `PTMST_HEAD_KERNELS=off` (tfjs's ops then run
 * everywhere, as under tapes). Call once tfjs-backend-wasm is the backend.
 */
export function installHeadKernels(): void {
  const kernels = {
    [FORWARD]: forwardKernel,
    [BACKWARD]: backwardKernel,
    [GELU_FORWARD]: geluForwardKernel,
    [ERF]: erfKernel,
    [GELU_BACKWARD]: geluBackwardKernel,
    [DROPOUT_MASK]: dropoutMaskKernel,
  };
  for (const [kernelName, kernelFunc] of Object.entries(kernels)) {
    if (!tf.getKernel(kernelName, 'wasm')) tf.registerKernel({ kernelName, backendName: 'wasm', kernelFunc: kernelFunc as unknown as tf.KernelFunc });
  }
  active = headKernelsWanted();
}

/** Use the fused kernels (true) or tfjs's ops (false) where both apply: for comparisons (tests, the bench). */
export function useHeadKernels(on: boolean): void {
  active = on && tf.getKernel(FORWARD, 'wasm') !== undefined;
}

/** whether the kernels can run now: switched on, on the wasm backend, with an instance on its memory */
const available = (): boolean => active && tf.getBackend() === 'wasm' && instanceOf(tf.backend() as unknown as WasmBackendInternals) !== null;

/** whether a kernel applies to these inputs: available, float32 inputs, and no tape recording (it has no gradient) */
const applies = (tensors: readonly (tf.Tensor | null)[]): boolean =>
  available() && !tf.engine().isTapeOn() && tensors.every((t) => t === null || t.dtype === 'float32');

/**
 * An inverted-dropout mask: entry k is `keep` where the stream's draw k, as a 32-bit integer, is ≥ `threshold`, else 0,
 * drawn by the kernel from `rand`'s state, which then skips the rows × cols draws; bitwise the mask the JavaScript
 * draws give. Undefined where the kernel does not apply (not available, or a stream that cannot skip).
 */
export function dropoutMaskFused(rows: number, cols: number, threshold: number, keep: number, rand: Rng): tf.Tensor2D | undefined {
  if (!available() || rand.skip === undefined || !(threshold >= 0 && threshold < 2 ** 32)) return undefined;
  const attrs: DropoutMaskAttrs = { rows, cols, state: rand.state(), threshold, keep };
  const mask = tf.engine().runKernel(DROPOUT_MASK, {}, attrs as unknown as tf.NamedAttrMap) as tf.Tensor2D;
  rand.skip(rows * cols);
  return mask;
}

/**
 * GELU's pre-activation p = xW1 + b1, its standard normal CDF Φ(p) = (erf(p/√2) + 1)/2 and GELU(p) = p Φ(p), in one
 * pass; undefined where the kernels do not apply.
 */
export function geluForward(xW1: tf.Tensor2D, b1: tf.Tensor): { p: tf.Tensor2D; cdf: tf.Tensor2D; a: tf.Tensor2D } | undefined {
  if (!applies([xW1, b1])) return undefined;
  const [p, cdf, a] = tf.engine().runKernel(GELU_FORWARD, { xW1, b1 }, {}) as tf.Tensor2D[];
  return { p: p!, cdf: cdf!, a: a! };
}

/** The kernels' erf (a rational fit, within a few ulp of float32 rounding) at every entry of `x`; for its test. */
export function erfFused(x: tf.Tensor): tf.Tensor | undefined {
  if (!applies([x])) return undefined;
  return tf.engine().runKernel(ERF, { x }, {}) as tf.Tensor;
}

/** dLoss/dp = g_z + g_a · GELU'(p), given Φ(p) from the forward pass; undefined where the kernels do not apply. */
export function geluBackward(gz: tf.Tensor2D, ga: tf.Tensor2D, cdf: tf.Tensor2D, p: tf.Tensor2D): tf.Tensor2D | undefined {
  if (!applies([gz, ga, cdf, p])) return undefined;
  return tf.engine().runKernel(GELU_BACKWARD, { gz, ga, cdf, p }, {}) as tf.Tensor2D;
}

export interface HeadNormInputs {
  /** a · W2, before its bias */
  readonly q: tf.Tensor2D;
  readonly b2: tf.Tensor;
  readonly mask: tf.Tensor2D | null;
  /** the residual: x · W1 + b1 */
  readonly p: tf.Tensor2D;
  readonly gamma: tf.Tensor;
  readonly beta: tf.Tensor;
}

/** The head's forward pass from a · W2 to u by the fused kernel, or undefined where it does not apply (the caller runs the ops). */
export function headNormForward(
  i: HeadNormInputs,
  eps: number,
): { zhat: tf.Tensor2D; invSigma: tf.Tensor2D; u: tf.Tensor2D; norm: tf.Tensor2D } | undefined {
  if (!applies([i.q, i.b2, i.mask, i.p, i.gamma, i.beta])) return undefined;
  const inputs: tf.NamedTensorMap = { q: i.q, b2: i.b2, p: i.p, gamma: i.gamma, beta: i.beta, ...(i.mask ? { mask: i.mask } : {}) };
  const [zhat, invSigma, u, norm] = tf.engine().runKernel(FORWARD, inputs, { eps }) as tf.Tensor2D[];
  return { zhat: zhat!, invSigma: invSigma!, u: u!, norm: norm! };
}

export interface HeadNormCache {
  readonly u: tf.Tensor2D;
  readonly norm: tf.Tensor2D;
  readonly zhat: tf.Tensor2D;
  readonly invSigma: tf.Tensor2D;
  readonly mask: tf.Tensor2D | null;
}

/**
 * The head's backward pass from dLoss/du to dLoss/dz (the residual's share) and dLoss/dq (through dropout), with
 * γ's and β's gradients, by the fused kernel; undefined where it does not apply.
 */
export function headNormBackward(
  gu: tf.Tensor2D,
  c: HeadNormCache,
  gamma: tf.Tensor,
): { gGamma: tf.Tensor; gBeta: tf.Tensor; gz: tf.Tensor2D; gq: tf.Tensor2D } | undefined {
  if (!applies([gu, c.u, c.norm, c.zhat, c.invSigma, c.mask, gamma])) return undefined;
  const inputs: tf.NamedTensorMap = { gu, u: c.u, norm: c.norm, zhat: c.zhat, invSigma: c.invSigma, gamma, ...(c.mask ? { mask: c.mask } : {}) };
  const [gGamma, gBeta, gz, gq] = tf.engine().runKernel(BACKWARD, inputs, {}) as tf.Tensor[];
  return { gGamma: gGamma!, gBeta: gBeta!, gz: gz as tf.Tensor2D, gq: (gq ?? gz) as tf.Tensor2D };
}

/** Whether the fused kernels are switched on (`installHeadKernels` ran and neither `PTMST_HEAD_KERNELS=off` nor `useHeadKernels(false)` turned them off): for results files' provenance and for a caller to restore. */
export function headKernelsOn(): boolean {
  return active;
}
