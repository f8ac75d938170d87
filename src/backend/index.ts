/**
 * The one place that imports tfjs and chooses its backend.
 *
 * Order of preference: native TensorFlow (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`,
 * both optional dependencies that need a libtensorflow download at install time), WebAssembly
 * (`@tensorflow/tfjs-backend-wasm`, always installed), plain JavaScript (`cpu`).
 * `PTMST_BACKEND=tensorflow|wasm|cpu` forces one; the choice is logged once, to stderr unless a caller chooses
 * another log (`ready(log)`, `setBackendLog`: the notebook helpers log it to stdout).
 *
 * WebAssembly: a pool worker (util/pool) runs the multi-threaded build (./wasm-threads) on its share of the cores
 * (cores / workers); the main thread runs the single-threaded build, because the stage it runs itself, a
 * one-phase distillation, is made of small products that two threads do not speed up (bench: 0.66 s per TESLA
 * iteration on one thread, 0.66–0.84 s on two) and it gets a helper thread instead (distill/repass-helper).
 * `PTMST_WASM_THREADS=<n>` sets the threads of every instance; 1 is the single-threaded build.
 * Matrix products run on OpenBLAS instead of XNNPACK where it is installed (./blas; `PTMST_BLAS=off` keeps XNNPACK);
 * every op then runs on one thread, and `PTMST_WASM_THREADS` applies only to XNNPACK. The binary element-wise
 * kernels get a lighter call (./wasm-binary), which also fixes their results above rank 6, the copying kernels
 * (Identity, Cast, Slice, SplitV, GatherV2) copy inside the heap or share the buffer (./wasm-copy), and the
 * projection head's element-wise work and dropout masks run as fused WebAssembly SIMD kernels outside tapes
 * (./head-kernels; `PTMST_HEAD_KERNELS=off` keeps tfjs's ops, `on` or unset uses the kernels, any other value is a
 * ConfigError).
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';
import { blasLibrary, installBlasKernels } from './blas';
import { useLightBinaryKernels } from './wasm-binary';
import { useLightCopyKernels } from './wasm-copy';
import { headKernelsWanted, installHeadKernels } from './head-kernels';
import { setBackendOrReason } from './set-backend';
import { activateThreadedWasm } from './wasm-threads';

export { tf };

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  readonly name: BackendName;
  /** npm package that provided it */
  readonly provider: string;
  /** why this one: forced by the environment, or the fastest present */
  readonly reason: string;
  /** threads each op may use (WebAssembly's pool; 1 for the other backends, which manage their own) */
  readonly threads: number;
  /** the BLAS library that runs WebAssembly's matrix products (./blas), or null where XNNPACK runs them */
  readonly blas: string | null;
  /**
   * why WebAssembly runs on fewer threads than were asked for (the threaded build did not come up, with its error,
   * or came up with fewer), or null; beside BLAS one thread is the design, not a shortfall
   */
  readonly threadsShortfall: string | null;
  /**
   * the faster backends that are installed but did not initialise, each with its error (a pool worker or helper
   * thread on plain JS while the main thread runs WebAssembly says why here); empty when none failed
   */
  readonly failures: readonly string[];
}

export interface ReadyOptions {
  /** threads for the WebAssembly backend when `PTMST_WASM_THREADS` is unset; default 1 */
  readonly wasmThreads?: number;
}

let chosen: Promise<BackendInfo> | undefined;
let chosenInfo: BackendInfo | undefined;

function tryRequire(name: string): boolean {
  try {
    require(name);
    return true;
  } catch {
    return false;
  }
}

/** Most threads the threaded build starts (its Emscripten glue pre-creates eight workers). */
const MAX_WASM_THREADS = 8;

/** Threads for the WebAssembly backend: `PTMST_WASM_THREADS`, else the caller's share of the cores, else 1. */
export function wasmThreadCount(fallback = 1): number {
  const env = process.env.PTMST_WASM_THREADS;
  if (env !== undefined && env !== '') {
    const n = Number(env);
    if (!Number.isInteger(n) || n < 1 || n > MAX_WASM_THREADS) {
      throw new ConfigError(`PTMST_WASM_THREADS=${env} is not a thread count; valid values: integers 1 to ${MAX_WASM_THREADS}`);
    }
    return n;
  }
  return Math.max(1, Math.min(MAX_WASM_THREADS, Math.floor(fallback)));
}

/** whether the wasm backend's build was chosen yet, and its threads per op */
let wasmTried = false;
let wasmThreads = 1;
let wasmShortfall: string | null = null;

/**
 * Make `name` the current backend: the npm package that provides it, or undefined. A backend whose package is
 * installed but does not come up adds its reason to `failures` (a missing optional package is not a failure).
 */
async function activate(name: BackendName, options: ReadyOptions = {}, failures: string[] = []): Promise<string | undefined> {
  const attempt = async (pkg: string): Promise<string | undefined> => {
    const why = await setBackendOrReason(name);
    if (why === undefined) return pkg;
    failures.push(`${name} (${pkg}) did not initialise: ${why}`);
    return undefined;
  };
  if (name === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      if (tryRequire(pkg) && (await attempt(pkg)) !== undefined) return pkg;
    }
    return undefined;
  }
  if (name === 'wasm') {
    const pkg = '@tensorflow/tfjs-backend-wasm';
    if (!tryRequire(pkg)) return undefined;
    if (!wasmTried) {
      // first initialisation: the threaded build if more than one thread is wanted, products stay on XNNPACK
      // (beside BLAS every op runs on one thread: ./blas) and the build comes up
      wasmTried = true;
      const want = wasmThreadCount(options.wasmThreads);
      if (want > 1 && blasLibrary() === undefined) {
        const threaded = await activateThreadedWasm(want);
        wasmThreads = threaded.threads ?? 1;
        wasmShortfall = threaded.shortfall ?? null;
        if (threaded.threads !== undefined) return pkg;
      }
    }
    return attempt(pkg);
  }
  return attempt('@tensorflow/tfjs-backend-cpu');
}

function parseForced(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '') return undefined;
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new ConfigError(`PTMST_BACKEND=${value} is not a backend; valid values: ${BACKENDS.join(', ')}`);
}

async function choose(log: (line: string) => void, options: ReadyOptions): Promise<BackendInfo> {
  const forced = parseForced(process.env.PTMST_BACKEND);
  headKernelsWanted(); // a bad value is an error on every backend, not only where the kernels would run
  const order: readonly BackendName[] = forced ? [forced] : BACKENDS;
  const failures: string[] = [];
  for (const name of order) {
    const provider = await activate(name, options, failures);
    if (provider !== undefined) {
      await tf.ready();
      if (name === 'wasm') {
        useLightBinaryKernels(true);
        useLightCopyKernels(true);
        installHeadKernels();
      }
      const info: BackendInfo = {
        name,
        provider,
        reason: forced ? 'forced by PTMST_BACKEND' : 'fastest backend present',
        threads: name === 'wasm' ? wasmThreads : 1,
        blas: (name === 'wasm' && installBlasKernels()) || null,
        threadsShortfall: name === 'wasm' ? wasmShortfall : null,
        failures,
      };
      const shortfall = info.threadsShortfall ? ` (${info.threadsShortfall})` : '';
      const threads = name === 'wasm' ? `, ${info.threads} thread${info.threads === 1 ? '' : 's'} per op${shortfall}` : '';
      const products = info.blas ? `; products on ${info.blas}` : '';
      const failed = failures.length > 0 ? `; ${failures.join('; ')}` : '';
      log(`[ptmst] tfjs backend: ${name} (${provider}; ${info.reason}${threads}${products}${failed})`);
      chosenInfo = info;
      return info;
    }
  }
  const failed = failures.length > 0 ? `: ${failures.join('; ')}` : '';
  throw new Error(
    forced
      ? `PTMST_BACKEND=${forced} was requested but its package is not installed or failed to load${failed}`
      : `no tfjs backend could be initialised${failed}`,
  );
}

let defaultLog: (line: string) => void = (l) => process.stderr.write(l + '\n');

/**
 * Where `ready` writes its one banner line when its caller passes no log: stderr by default (a CLI's stdout may be
 * JSON for a pipe); the notebook helpers choose stdout (a notebook shows stderr as a red box). Applies to the first
 * `ready` of the process, which is the one that logs.
 */
export function setBackendLog(log: (line: string) => void): void {
  defaultLog = log;
}

/**
 * Initialise tfjs once per process and return which backend runs. Every entry point that
 * computes (library verbs, CLI, tests) awaits this first; later calls return the same answer.
 * `log` receives the banner line (default: `setBackendLog`'s choice, else stderr).
 */
export function ready(log?: (line: string) => void, options: ReadyOptions = {}): Promise<BackendInfo> {
  chosen ??= choose(log ?? ((l) => defaultLog(l)), options);
  return chosen;
}

/** What `ready` chose, once it has: undefined before (for callers that must not start the initialisation). */
export function readyInfo(): BackendInfo | undefined {
  return chosenInfo;
}

/**
 * Make `name` the current backend (its package is loaded on first use); whether it is active now. The library
 * keeps what `ready` chose: this is for checks that must run on one backend explicitly (tests of wasm's
 * float32 arithmetic) and then switch back.
 */
export async function useBackend(name: BackendName): Promise<boolean> {
  await ready(() => undefined);
  if ((await activate(name)) === undefined) return false;
  await tf.ready();
  return true;
}
