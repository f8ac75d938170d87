/**
 * Run independent jobs on worker threads (one tfjs-wasm instance per thread: the wasm backend is
 * single-threaded in Node, so this is how a job uses both cores). Job k goes to worker k mod W.
 * A worker script receives `{ jobs }` as workerData and posts messages back; it exits 0 when done.
 */
import { Worker } from 'node:worker_threads';

export function runInWorkers<J, M>(
  script: string,
  jobs: readonly J[],
  workers: number,
  onMessage: (message: M) => void | Promise<void>,
  shared: Record<string, unknown> = {},
): Promise<void> {
  const groups = Array.from({ length: workers }, (_, w) => jobs.filter((_, k) => k % workers === w));
  let chain = Promise.resolve();
  return Promise.all(
    groups
      .filter((g) => g.length > 0)
      .map(
        (group) =>
          new Promise<void>((resolve, reject) => {
            const worker = new Worker(script, { workerData: { ...shared, jobs: group } });
            // messages are handled one at a time, in arrival order, even when a handler is async
            worker.on('message', (m: M) => {
              chain = chain.then(() => onMessage(m)).catch(reject);
            });
            worker.on('error', reject);
            worker.on('exit', (code) => {
              if (code !== 0) reject(new Error(`worker ${script} exited with code ${code}`));
              else chain.then(() => resolve(), reject);
            });
          }),
      ),
  ).then(() => undefined);
}

/**
 * The body of a worker script: initialise tfjs quietly, run `main` on the workerData with a `post` to the
 * parent, and report a failure to the parent's 'error' handler (rethrown outside the promise chain).
 */
export function workerMain<D>(main: (data: D, post: (message: unknown) => void) => Promise<void>): void {
  // required lazily: this module is also loaded by the main thread
  const { parentPort, workerData } = require('node:worker_threads') as typeof import('node:worker_threads');
  const { ready } = require('../backend') as typeof import('../backend');
  ready(() => undefined)
    .then(() => main(workerData as D, (m) => parentPort?.postMessage(m)))
    .catch((e: unknown) =>
      setImmediate(() => {
        throw e;
      }),
    );
}
