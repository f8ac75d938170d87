/**
 * The one place that imports tfjs and chooses its backend.
 *
 * Order of preference: native TensorFlow (`@tensorflow/tfjs-node-gpu`, then `@tensorflow/tfjs-node`,
 * both optional dependencies that need a libtensorflow download at install time), WebAssembly
 * (`@tensorflow/tfjs-backend-wasm`, always installed), plain JavaScript (`cpu`).
 * `PTMST_BACKEND=tensorflow|wasm|cpu` forces one; the choice is logged once to stderr.
 */
import * as tf from '@tensorflow/tfjs';
import { ConfigError } from '../errors';

export { tf };

export const BACKENDS = ['tensorflow', 'wasm', 'cpu'] as const;
export type BackendName = (typeof BACKENDS)[number];

export interface BackendInfo {
  readonly name: BackendName;
  /** npm package that provided it */
  readonly provider: string;
  /** why this one: forced by the environment, or the fastest present */
  readonly reason: string;
}

let chosen: Promise<BackendInfo> | undefined;

function tryRequire(name: string): boolean {
  try {
    require(name);
    return true;
  } catch {
    return false;
  }
}

async function activate(name: BackendName): Promise<string | undefined> {
  if (name === 'tensorflow') {
    for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
      if (tryRequire(pkg) && (await tf.setBackend('tensorflow').catch(() => false))) return pkg;
    }
    return undefined;
  }
  if (name === 'wasm') {
    if (!tryRequire('@tensorflow/tfjs-backend-wasm')) return undefined;
    return (await tf.setBackend('wasm').catch(() => false)) ? '@tensorflow/tfjs-backend-wasm' : undefined;
  }
  return (await tf.setBackend('cpu')) ? '@tensorflow/tfjs-backend-cpu' : undefined;
}

function parseForced(value: string | undefined): BackendName | undefined {
  if (value === undefined || value === '') return undefined;
  if ((BACKENDS as readonly string[]).includes(value)) return value as BackendName;
  throw new ConfigError(`PTMST_BACKEND=${value} is not a backend; valid values: ${BACKENDS.join(', ')}`);
}

async function choose(log: (line: string) => void): Promise<BackendInfo> {
  const forced = parseForced(process.env.PTMST_BACKEND);
  const order: readonly BackendName[] = forced ? [forced] : BACKENDS;
  for (const name of order) {
    const provider = await activate(name);
    if (provider !== undefined) {
      await tf.ready();
      const info: BackendInfo = {
        name,
        provider,
        reason: forced ? 'forced by PTMST_BACKEND' : 'fastest backend present',
      };
      log(`[ptmst] tfjs backend: ${name} (${provider}; ${info.reason})`);
      return info;
    }
  }
  throw new Error(
    forced
      ? `PTMST_BACKEND=${forced} was requested but its package is not installed or failed to load`
      : 'no tfjs backend could be initialised',
  );
}

/**
 * Initialise tfjs once per process and return which backend runs. Every entry point that
 * computes (library verbs, CLI, tests) awaits this first; later calls return the same answer.
 */
export function ready(log: (line: string) => void = (l) => process.stderr.write(l + '\n')): Promise<BackendInfo> {
  chosen ??= choose(log);
  return chosen;
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
