/**
 * tfjs-wasm's element-wise Add, Sub, Multiply, RealDiv and SquaredDifference with a lighter call into the same
 * WebAssembly functions.
 *
 * tfjs-wasm's binary kernels pass both shapes through Emscripten's `cwrap` with `array` arguments: two typed arrays
 * built per call, stack allocation and copies. That costs ~1.5–2 µs of a 4–5 µs kernel on this machine, and a TESLA
 * iteration runs ~4,000 binary kernels (Multiply alone 1,686), most of them on a few thousand entries. Here the
 * shapes are written into one buffer of the wasm heap allocated once per backend instance, and the module's export
 * (`_Add`, …) is called directly: the same C++ function on the same arguments, so results are bitwise those of
 * tfjs's kernel (test/backend/wasm-binary.test.ts). Other dtypes go to tfjs's kernel.
 *
 * tfjs-wasm 4.22's kernels for these five return garbage, without an error, for operands of rank 7 or more
 * (measured: [1,1,1,1,1,1,3] + [3] gives 3.6e-41, 0, 0; consistent with XNNPACK's limit of 6 dimensions, which
 * tfjs-wasm does not check; Maximum, Minimum, Pow and Greater are right there). Here the shapes are first collapsed
 * to the fewest dimensions that describe the same broadcast (adjacent dimensions merge when each operand either
 * spans both or repeats over both), so any rank whose broadcast pattern fits in 6 dimensions computes correctly,
 * and one that does not is an error.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelSwitch } from './kernel-switch';
import { type KernelArgs, type WasmBackendInternals, wasmBackendOf } from './wasm-internals';

const KERNELS = ['Add', 'Sub', 'Multiply', 'RealDiv', 'SquaredDifference'] as const;
/** the highest rank tfjs-wasm's binary kernels compute correctly */
const MAX_RANK = 6;
/** tfjs-wasm's CppDType enum (kernels/types.ts) */
const CPP_FLOAT32 = 0;

type BinaryExport = (aId: number, aShape: number, aRank: number, bId: number, bShape: number, bRank: number, dtype: number, outId: number) => void;

/**
 * Both operands' shapes, left-padded to the output's rank, with the output's size-1 dimensions dropped and adjacent
 * dimensions merged where neither operand changes between spanning and repeating: the same element-wise broadcast
 * in the fewest dimensions ([2, 3, 4] with [3, 1] → [2, 3, 4] with [1, 3, 1]; [5, 6, 7] with [5, 6, 7] → [210]).
 */
export function collapseBroadcast(a: readonly number[], b: readonly number[]): [number[], number[]] {
  const out = tf.backend_util.assertAndGetBroadcastShape(a as number[], b as number[]);
  const pad = (s: readonly number[]) => [...Array(out.length - s.length).fill(1), ...s] as number[];
  const [pa, pb] = [pad(a), pad(b)];
  const ra: number[] = [];
  const rb: number[] = [];
  let last = '';
  out.forEach((n, i) => {
    if (n === 1) return;
    const kind = `${pa[i] === 1 ? 'r' : 's'}${pb[i] === 1 ? 'r' : 's'}`; // repeats or spans, per operand
    if (kind === last) {
      ra[ra.length - 1] *= pa[i]!;
      rb[rb.length - 1] *= pb[i]!;
    } else {
      ra.push(pa[i]!);
      rb.push(pb[i]!);
      last = kind;
    }
  });
  return [ra, rb];
}

/** per backend instance (a re-initialised backend is a new module): its shape buffer and the kernels' exports */
const modules = new WeakMap<object, { buffer: number; exports: Partial<Record<string, BinaryExport>> }>();

function moduleOf(backend: WasmBackendInternals) {
  let m = modules.get(backend.wasm);
  if (m === undefined) {
    const exports = Object.fromEntries(KERNELS.map((k) => [k, backend.wasm[`_${k}`] as BinaryExport | undefined]));
    m = { buffer: backend.wasm._malloc(2 * MAX_RANK * 4), exports };
    modules.set(backend.wasm, m);
  }
  return m;
}

function lightBinary(name: string, tfjsKernel: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { a, b } = args.inputs as { a: tf.TensorInfo; b: tf.TensorInfo };
    const backend = wasmBackendOf(args);
    const { buffer, exports } = moduleOf(backend);
    const call = exports[name];
    if (a.dtype !== 'float32' || b.dtype !== 'float32' || call === undefined) return tfjsKernel(args);
    const shape = tf.backend_util.assertAndGetBroadcastShape(a.shape, b.shape);
    let [sa, sb] = [a.shape, b.shape];
    if (sa.length > MAX_RANK || sb.length > MAX_RANK) {
      [sa, sb] = collapseBroadcast(sa, sb);
      if (sa.length > MAX_RANK) {
        throw new Error(`${name} of shapes [${a.shape}] and [${b.shape}]: a broadcast over more than ${MAX_RANK} dimensions, which tfjs-wasm computes wrongly`);
      }
    }
    const out = backend.makeOutput(shape, 'float32');
    if (tf.util.sizeFromShape(shape) === 0) return out;
    // the heap view after the output's allocation, which may grow (and replace) it
    const heap = backend.wasm.HEAP32;
    const at = buffer >> 2;
    for (let i = 0; i < sa.length; i++) heap[at + i] = sa[i]!;
    for (let i = 0; i < sb.length; i++) heap[at + MAX_RANK + i] = sb[i]!;
    const id = (t: tf.TensorInfo) => backend.dataIdMap.get(t.dataId).id;
    call(id(a), buffer, sa.length, id(b), buffer + MAX_RANK * 4, sb.length, CPP_FLOAT32, id(out));
    return out;
  };
}

let switchKernels: ((ours: boolean) => void) | undefined;

/** Route the wasm backend's float32 Add, Sub, Multiply, RealDiv and SquaredDifference through the light call (on), or tfjs's kernels. */
export function useLightBinaryKernels(on: boolean): void {
  switchKernels ??= kernelSwitch(KERNELS, lightBinary);
  switchKernels?.(on);
}
