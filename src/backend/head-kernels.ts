/**
 * The projection head's LayerNorm and L2 normalisation as two fused WebAssembly SIMD kernels (./head-kernels.c),
 * for the wasm backend outside tapes: expert training and evaluation students, which take the head's gradients from
 * its hand-written backward pass (model/head.ts). tfjs runs the same arithmetic as ~33 kernels per tower and step,
 * each a dispatch and a pass over the batch; these run it in two passes of one call each.
 *
 * The module imports tfjs-wasm's own memory and reads and writes the tensors where they lie (byte offsets of
 * tensors allocated by tfjs); it has no data or stack of its own (scripts/build-wasm.sh checks). It is compiled
 * once per backend instance. Where it does not apply (another backend, the threaded build's shared memory, a dtype
 * other than float32, a tape recording, which needs the ops' gradients) the callers run tfjs's ops, and do so under
 * every tape: the distiller differentiates through the head's backward pass.
 *
 * Numbers: the same float32 operations as the ops in model/head.ts, except that row sums are taken over four lanes
 * and means as a sum times 1/d; they agree with the ops to float32 rounding (test/backend/head-kernels.test.ts),
 * not bitwise.
 */
import * as tf from '@tensorflow/tfjs';
import { WASM_BASE64 } from './head-kernels.wasm';
import { type KernelArgs, type WasmBackendInternals, wasmBackendOf } from './wasm-internals';

const FORWARD = 'PtmstHeadNormForward';
const BACKWARD = 'PtmstHeadNormBackward';

interface HeadKernelExports {
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
    const memory = (backend.wasm.asm as { memory?: unknown } | undefined)?.memory;
    // the threaded build's memory is shared, which this module does not declare
    const usable = memory instanceof WebAssemblyJs.Memory && !(memory.buffer instanceof SharedArrayBuffer);
    k = usable ? (new WebAssemblyJs.Instance(compiled(), { env: { memory } }).exports as unknown as HeadKernelExports) : null;
    instances.set(backend.wasm, k);
  }
  return k;
}

let compiledModule: object | undefined;
const compiled = () => (compiledModule ??= new WebAssemblyJs.Module(Buffer.from(WASM_BASE64, 'base64')));

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

/** Register the two kernels on the wasm backend and use them (call once tfjs-backend-wasm is the backend). */
export function installHeadKernels(): void {
  if (!tf.getKernel(FORWARD, 'wasm')) {
    tf.registerKernel({ kernelName: FORWARD, backendName: 'wasm', kernelFunc: forwardKernel as unknown as tf.KernelFunc });
    tf.registerKernel({ kernelName: BACKWARD, backendName: 'wasm', kernelFunc: backwardKernel as unknown as tf.KernelFunc });
  }
  active = true;
}

/** Use the fused kernels (true) or tfjs's ops (false) where both apply: for comparisons (tests, the bench). */
export function useHeadKernels(on: boolean): void {
  active = on && tf.getKernel(FORWARD, 'wasm') !== undefined;
}

const applies = (tensors: readonly (tf.Tensor | null)[]): boolean =>
  active &&
  tf.getBackend() === 'wasm' &&
  !tf.engine().isTapeOn() &&
  tensors.every((t) => t === null || t.dtype === 'float32') &&
  instanceOf(tf.backend() as unknown as WasmBackendInternals) !== null;

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
