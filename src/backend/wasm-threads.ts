/**
 * tfjs-backend-wasm's multi-threaded SIMD build, in Node.
 *
 * tfjs ships a threaded build (XNNPACK on a pthread pool of Web Workers) but switches it off in Node
 * (`WASM_HAS_MULTITHREAD_SUPPORT` is false there: tensorflow/tfjs#3830), so every op runs on one core. Three
 * browser assumptions of its Emscripten glue stop it in Node, and each has a small, scoped shim here:
 *
 * 1. The pthread worker script and the module's main script are handed over as `Blob`s / `blob:` URLs; Node's
 *    `worker_threads.Worker` and the worker's `importScripts` (a `readFileSync`) need file paths. While the
 *    backend initialises, `Blob` records its text, `URL.createObjectURL` writes that text to a file in a folder of
 *    this initialisation's own under the OS temp folder, and the `load` message a worker receives carries that path
 *    instead of the Blob. The module is ready only once every pthread worker has loaded both files (Emscripten's
 *    "wasm-instantiate" run dependency), and no worker is started later (the pool has its eight from the start), so
 *    the folder is removed as soon as initialisation ends, whether it succeeded or not (and at exit, should the
 *    process end first): processes and pool workers each have their own, and none is left behind.
 *    The main script was bundled by rollup, so the file starts by binding the bundle's names for `fs`, `path`,
 *    `perf_hooks`, `os` and the global object.
 * 2. The C++ side caps the pool at `emscripten_num_logical_cores() / 2` (it assumes two hyper-threads per core),
 *    which in Node is `os.cpus().length / 2`: one thread on a two-core machine. While the module instantiates,
 *    `os.cpus()` reports `2 × threads` entries.
 * 3. The glue starts eight pthread workers, keeps them referenced (the process would never exit) and never uses
 *    the spares; after initialisation the spares are terminated and the pool's workers unreferenced.
 *
 * The shims fit the glue of the tfjs-backend-wasm version package.json pins (4.22.0); test/backend/threads.test.ts
 * fails if another version's glue no longer fits them. Every shim is undone before `activateThreadedWasm` returns,
 * whether the backend came up or not; when it does not come up, or with fewer threads than asked, the reason is
 * returned (and shown in the backend's banner), not swallowed. Matrix products
 * split the output between threads and keep each element's summation order, so results are bitwise those of the
 * single-threaded build (test/backend/threads.test.ts checks it).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import * as tf from '@tensorflow/tfjs';
import { setBackendOrReason } from './set-backend';

// the module object itself (tfjs's glue calls `require('os').cpus()`), not an import wrapper around it
const os = require('node:os') as typeof import('node:os');

/** The names rollup gave Node's modules inside tfjs-backend-wasm's bundle, which its factory's source refers to. */
const BUNDLE_PRELUDE =
  "var require$$0 = require('fs'), require$$1 = require('path'), require$$3 = require('perf_hooks'), " +
  "require$$4 = require('os'), commonjsGlobal = globalThis;\n";
const MAIN_SCRIPT_START = 'var WasmBackendModuleThreadedSimd';
/** the prefix of the folders the scripts are written to (one per initialisation, removed when it ends) */
export const SCRIPT_FOLDER_PREFIX = 'ptmst-tfjs-wasm-threads-';

interface EmscriptenPThread {
  unusedWorkers: Worker[];
  runningWorkers: Worker[];
}

/** Files for the scripts the glue hands over as Blobs, in a folder of their own; `remove` deletes the folder. */
function scriptFolder(): { write(text: string): string; remove(): void } {
  let dir: string | undefined;
  let count = 0;
  // a removal that fails (EMFILE in a process short of descriptors) is tried again at exit, and never throws
  const remove = () => {
    try {
      if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
      dir = undefined;
      process.off('exit', remove);
    } catch {
      // the exit handler stays registered
    }
  };
  return {
    write(text) {
      if (dir === undefined) {
        dir = mkdtempSync(join(os.tmpdir(), SCRIPT_FOLDER_PREFIX));
        process.on('exit', remove);
      }
      const file = join(dir, `${count++}.js`);
      writeFileSync(file, text);
      return file;
    },
    remove,
  };
}

/** Run `init` (which answers why the backend did not come up, or undefined) with the three shims installed; all are undone afterwards. */
async function withNodeShims(threads: number, init: () => Promise<string | undefined>): Promise<string | undefined> {
  const texts = new WeakMap<Blob, string>();
  const NativeBlob = globalThis.Blob;
  class TextBlob extends NativeBlob {
    constructor(...args: ConstructorParameters<typeof Blob>) {
      super(...args);
      texts.set(this, (args[0] ?? []).map(String).join(''));
    }
  }
  // one file per Blob (the glue hands the same main-script Blob to each of its eight workers)
  const folder = scriptFolder();
  const files = new WeakMap<Blob, string>();
  const pathOf = (blob: Blob): string | undefined => {
    const text = texts.get(blob);
    if (text === undefined) return undefined;
    let file = files.get(blob);
    if (file === undefined) files.set(blob, (file = folder.write(text.startsWith(MAIN_SCRIPT_START) ? BUNDLE_PRELUDE + text : text)));
    return file;
  };
  const createObjectURL = URL.createObjectURL;
  const postMessage = Worker.prototype.postMessage;
  const cpus = os.cpus;
  globalThis.Blob = TextBlob;
  URL.createObjectURL = (obj: Blob) => pathOf(obj) ?? createObjectURL(obj);
  Worker.prototype.postMessage = function (this: Worker, message: unknown, transferList?: Parameters<typeof postMessage>[1]) {
    const m = message as { cmd?: unknown; urlOrBlob?: unknown } | null;
    if (m?.cmd === 'load' && m.urlOrBlob instanceof NativeBlob) {
      const path = pathOf(m.urlOrBlob);
      if (path !== undefined) message = { ...m, urlOrBlob: path };
    }
    return postMessage.call(this, message, transferList);
  } as typeof postMessage;
  os.cpus = () => Array.from({ length: 2 * threads }, (_, i) => cpus()[i % cpus().length]!);
  // the glue's pthread workers, seen as it subscribes to their events: where initialisation fails they may still be
  // starting, and are stopped before their script files go (a worker that finds its file gone throws, uncaught)
  const workers = new Set<Worker>();
  const on = Worker.prototype.on;
  Worker.prototype.on = function (this: Worker, ...args: Parameters<typeof on>) {
    workers.add(this);
    return on.apply(this, args);
  } as typeof on;
  let failure: string | undefined = 'initialisation threw';
  try {
    failure = await init();
    return failure;
  } finally {
    Worker.prototype.on = on;
    if (failure !== undefined) await Promise.all([...workers].map((w) => w.terminate().catch(() => undefined)));
    folder.remove();
    globalThis.Blob = NativeBlob;
    URL.createObjectURL = createObjectURL;
    Worker.prototype.postMessage = postMessage;
    os.cpus = cpus;
  }
}

/** How the threaded build came up: its threads per op (undefined where it did not come up), and any shortfall. */
export interface ThreadedWasm {
  readonly threads: number | undefined;
  /** why it did not come up, or came up with fewer threads than asked; undefined when it has them all */
  readonly shortfall?: string;
}

/**
 * Make tfjs-wasm's threaded build the `wasm` backend, with `threads` threads for each op. Call it before the wasm
 * backend is first initialised. Returns the number of threads the backend runs with, or `undefined` when the
 * threaded build did not come up (the caller then initialises the single-threaded one), and why it has fewer.
 */
export async function activateThreadedWasm(threads: number): Promise<ThreadedWasm> {
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', true);
  wasm.setThreadsCount(threads);
  const failure = await withNodeShims(threads, () => setBackendOrReason('wasm'));
  if (failure !== undefined) {
    tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
    wasm.setThreadsCount(1);
    return { threads: undefined, shortfall: `the threaded build did not come up: ${failure}` };
  }
  const pthread = (tf.backend() as unknown as { wasm: { PThread?: EmscriptenPThread } }).wasm.PThread;
  if (pthread !== undefined) {
    for (const w of pthread.unusedWorkers.splice(0)) void w.terminate();
    for (const w of pthread.runningWorkers) w.unref();
  }
  const got = wasm.getThreadsCount();
  return got < threads ? { threads: got, shortfall: `the threaded build came up with ${got} of the ${threads} threads asked for` } : { threads: got };
}
