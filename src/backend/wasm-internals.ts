/**
 * The parts of tfjs-wasm 4.22's backend object (`BackendWasm`) and Emscripten module that this project's own wasm
 * kernels use (./blas, ./wasm-binary, ./wasm-copy, ./host-tensor, ./head-kernels). They are not tfjs's public API:
 * one place lists them, so that a tfjs upgrade is checked against one list (the kernels' tests compare with tfjs's
 * own kernels).
 */
import type * as tf from '@tensorflow/tfjs';

export interface WasmBackendInternals {
  readonly wasm: Record<string, unknown> & {
    HEAPU8: Uint8Array;
    /** the module's exports; the single-threaded builds' include their memory (./head-kernels imports it) */
    asm?: { memory?: unknown };
    /** the threaded build's (shared) memory, which its glue keeps here instead */
    wasmMemory?: unknown;
    HEAP32: Int32Array;
    _malloc(bytes: number): number;
  };
  /** per tensor: its id in the C++ registry and its byte offset in the heap */
  readonly dataIdMap: { get(dataId: object): { id: number; memoryOffset: number } };
  /** a new tensor allocated in the heap (which may grow it: take heap views afterwards) */
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  /** a float32 view of a tensor's bytes in the heap */
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
  /** one more reference to a tensor's buffer (freed when the last is disposed) */
  incRef(dataId: object): void;
}

/** What tfjs hands a kernel function: inputs, attributes, backend. */
export type KernelArgs = Parameters<tf.KernelFunc>[0];

/** A kernel's backend argument as tfjs-wasm's backend object. */
export const wasmBackendOf = (args: KernelArgs): WasmBackendInternals => args.backend as unknown as WasmBackendInternals;
