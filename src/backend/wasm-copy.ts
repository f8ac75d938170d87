/**
 * tfjs-wasm's copying kernels (Identity, Cast, Slice, SplitV, GatherV2) as copies inside the wasm heap, or no copy at all.
 *
 * Measured per call in tfjs-wasm 4.22 on this project's machine (`.scratch/split.js`):
 *   - Slice first copies its whole input out of the heap (`readSync`) and then the part it wants back in: splitting
 *     a d = 256 image tower's flat 394,240 parameters into its six tensors took 4.7–5.9 ms, twice per iteration.
 *   - GatherV2 runs a per-element index loop: 32 rows of a 500 × 500 similarity matrix took 0.54 ms.
 *   - Identity and Cast to the same dtype copy the tensor. tfjs-core runs an Identity for every tensor a gradient
 *     saves while a tape records (1,968 per TESLA iteration), and its gradient is a Cast (648 more).
 * Here Identity and a same-dtype Cast share the input's buffer (reference counted, what tfjs's CPU backend does:
 * tensors are immutable), and Slice and GatherV2 move rows with `copyWithin` on the heap. All of them give the same
 * bytes as tfjs's kernels (test/backend/wasm-copy.test.ts); what they do not cover (strings, bool, a strided slice
 * of rank > 2) goes to tfjs's kernel.
 *
 * tfjs-wasm 4.22's GatherV2 is wrong with batchDims > 0, without an error: gathering [[0,2],[1,1],[3,0]] along axis
 * 1 of a [3, 4, 5] range with batchDims 1 returns the first three runs right and then leftover heap (zeros or
 * 1e-44). Here batchDims is honoured, and the test checks it against a hand-computed case.
 */
import * as tf from '@tensorflow/tfjs';
import { kernelSwitch } from './kernel-switch';
import { type KernelArgs, type WasmBackendInternals, wasmBackendOf } from './wasm-internals';

const KERNELS = ['Identity', 'Cast', 'Slice', 'SplitV', 'GatherV2'] as const;

/** dtypes stored as 4-byte words in tfjs-wasm's heap */
const WORD = new Set<tf.DataType>(['float32', 'int32']);

/** the output: the input's buffer with one more reference */
function share(backend: WasmBackendInternals, x: tf.TensorInfo): tf.TensorInfo {
  backend.incRef(x.dataId);
  return { dataId: x.dataId, shape: x.shape, dtype: x.dtype };
}

function identity(tfjsKernel: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    return x.dtype === 'string' ? tfjsKernel(args) : share(wasmBackendOf(args), x);
  };
}

function cast(tfjsKernel: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { dtype } = args.attrs as unknown as { dtype: tf.DataType };
    return dtype === x.dtype && x.dtype !== 'string' ? share(wasmBackendOf(args), x) : tfjsKernel(args);
  };
}

/**
 * Copy `count` runs of `run` words: run k from word `at(k)` of x to word `k·run` of out. Long runs
 * are heap-to-heap `copyWithin`; short ones (a gathered column, a narrow slice) a word loop, which costs less than
 * a `copyWithin` call per word.
 */
function copyRuns(backend: WasmBackendInternals, x: tf.TensorInfo, out: tf.TensorInfo, count: number, run: number, at: (k: number) => number): void {
  // heap views taken after the output's allocation, which may have grown (and replaced) them
  const src = backend.dataIdMap.get(x.dataId).memoryOffset;
  const dst = backend.dataIdMap.get(out.dataId).memoryOffset;
  if (run >= 16) {
    const heap = backend.wasm.HEAPU8;
    for (let k = 0; k < count; k++) {
      const from = src + 4 * at(k);
      heap.copyWithin(dst + 4 * k * run, from, from + 4 * run);
    }
    return;
  }
  const heap = backend.wasm.HEAP32; // any 4-byte view copies float32 bits unchanged
  const s = src >> 2;
  let d = dst >> 2;
  for (let k = 0; k < count; k++) {
    const from = s + at(k);
    for (let j = 0; j < run; j++) heap[d++] = heap[from + j]!;
  }
}

function slice(tfjsKernel: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { begin, size } = args.attrs as unknown as { begin: number | number[]; size: number | number[] };
    const [b, s] = tf.slice_util.parseSliceParams(x as tf.Tensor, begin, size);
    const continuous = tf.slice_util.isSliceContinous(x.shape, b, s);
    if (!WORD.has(x.dtype) || !(continuous || x.shape.length === 2)) return tfjsKernel(args);
    const backend = wasmBackendOf(args);
    const out = backend.makeOutput(s, x.dtype);
    const n = tf.util.sizeFromShape(s);
    if (n === 0) return out;
    if (continuous) {
      const offset = tf.slice_util.computeFlatOffset(b, tf.util.computeStrides(x.shape));
      copyRuns(backend, x, out, 1, n, () => offset);
    } else {
      const cols = x.shape[1]!;
      copyRuns(backend, x, out, s[0]!, s[1]!, (k) => (b[0]! + k) * cols + b[1]!);
    }
    return out;
  };
}

/** the slices of tfjs-wasm's SplitV (which calls its Slice function directly, not the registered kernel) */
function splitV(): tf.KernelFunc {
  // kernelSwitch makes every kernel before registering any, so this is still tfjs's Slice: the fallback
  const sliceOf = slice(tf.getKernel('Slice', 'wasm')!.kernelFunc);
  return (args: KernelArgs) => {
    const { x } = args.inputs as { x: tf.TensorInfo };
    const { numOrSizeSplits, axis } = args.attrs as unknown as { numOrSizeSplits: number | number[]; axis: number };
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
    const sizes = tf.backend_util.prepareSplitSize(x as tf.Tensor, numOrSizeSplits, a);
    let at = 0;
    return sizes.map((n) => {
      const begin = x.shape.map((_, i) => (i === a ? at : 0));
      const size = x.shape.map((d, i) => (i === a ? n : d));
      at += n;
      return sliceOf({ inputs: { x }, attrs: { begin, size }, backend: args.backend }) as tf.TensorInfo;
    });
  };
}

function gather(tfjsKernel: tf.KernelFunc): tf.KernelFunc {
  return (args: KernelArgs) => {
    const { x, indices } = args.inputs as { x: tf.TensorInfo; indices: tf.TensorInfo };
    const { axis, batchDims } = args.attrs as unknown as { axis: number; batchDims: number };
    if (!WORD.has(x.dtype) || indices.dtype !== 'int32') return tfjsKernel(args);
    const backend = wasmBackendOf(args);
    const a = tf.util.parseAxisParam(axis, x.shape)[0]!;
    // x is [batch…, outer…, dim, slice…] and the indices [batch…, m…]: batchSize · outerSize · m runs of sliceSize
    const { batchSize, outerSize, dimSize, sliceSize, outputShape } = tf.backend_util.segment_util.collectGatherOpShapeInfo(
      x as tf.Tensor, indices as tf.Tensor, a, batchDims,
    );
    const first = backend.dataIdMap.get(indices.dataId).memoryOffset >> 2;
    const idx = Int32Array.from(backend.wasm.HEAP32.subarray(first, first + tf.util.sizeFromShape(indices.shape))); // the output's allocation may move the heap
    for (const v of idx) {
      // tfjs-wasm's own message for an index out of range
      if (!(v >= 0 && v <= dimSize - 1)) throw new Error(`GatherV2: the index value ${v} is not in [0, ${dimSize - 1}]`);
    }
    const out = backend.makeOutput(outputShape, x.dtype);
    const m = idx.length / batchSize;
    const runs = batchSize * outerSize * m;
    if (runs * sliceSize === 0) return out;
    copyRuns(backend, x, out, runs, sliceSize, (k) => {
      const j = k % m;
      const bo = (k - j) / m; // batch · outerSize + outer
      return (bo * dimSize + idx[Math.floor(bo / outerSize) * m + j]!) * sliceSize;
    });
    return out;
  };
}

const MAKERS: Record<(typeof KERNELS)[number], (tfjsKernel: tf.KernelFunc) => tf.KernelFunc> = {
  Identity: identity,
  Cast: cast,
  Slice: slice,
  SplitV: splitV,
  GatherV2: gather,
};

let switchKernels: ((ours: boolean) => void) | undefined;

/** Route the wasm backend's Identity, Cast, Slice, SplitV and GatherV2 through the heap copies above (on), or tfjs's kernels. */
export function useLightCopyKernels(on: boolean): void {
  switchKernels ??= kernelSwitch(KERNELS, (name, tfjsKernel) => MAKERS[name as (typeof KERNELS)[number]](tfjsKernel));
  switchKernels?.(on);
}
