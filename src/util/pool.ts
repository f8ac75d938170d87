/**
 * Independent jobs on a pool of worker threads (piscina), each with its own tfjs instance: the cores are divided
 * between the workers (each worker's WebAssembly backend gets cores / workers threads per op). Each idle thread
 * takes the next job from one queue, so uneven jobs (phases of 200 and 299 pairs, experts of different lengths)
 * keep every thread busy. `shared` is cloned into each thread once (workerData: configs, verified feature sets); a
 * job's messages (progress, results) come back through its own MessagePort and are handled one at a time, in
 * arrival order, even when the handler is async.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import Piscina from 'piscina';

/** Threads for a stage: the config's, else the cores (at most 2, this project's machine), never more than jobs. */
export function threadCount(configured: number | undefined, jobs: number): number {
  return Math.max(1, Math.min(configured ?? Math.min(2, availableParallelism()), jobs));
}

/** What each worker thread receives once: the stage's shared inputs and its share of the cores. */
interface PoolData<D> {
  readonly shared: D;
  readonly wasmThreads: number;
}

/** How a job ended: fine, or with an error sent by class name and message. */
type Outcome = { ok: true } | { error: { name: string; message: string; stack: string } };

export async function runPool<J, M>(
  script: string,
  jobs: readonly J[],
  threads: number,
  onMessage: (message: M) => void | Promise<void>,
  shared: unknown,
): Promise<void> {
  if (jobs.length === 0) return;
  const workerData: PoolData<unknown> = { shared, wasmThreads: Math.max(1, Math.floor(availableParallelism() / threads)) };
  const pool = new Piscina({ filename: script, minThreads: threads, maxThreads: threads, workerData, atomics: 'disabled', idleTimeout: 60_000 });
  // messages are handled one after another; the first handler error fails the job that is waiting on it
  let chain = Promise.resolve();
  let failure: unknown;
  const serial = (f: () => void | Promise<void>) => {
    chain = chain.then(() => (failure === undefined ? f() : undefined)).catch((e: unknown) => void (failure ??= e));
    return chain;
  };
  const settled = async () => {
    await chain;
    if (failure !== undefined) throw failure;
  };
  const runJob = async (job: J) => {
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (m: M) => void serial(() => onMessage(m)));
    const closed = new Promise<void>((resolve) => port1.once('close', () => resolve()));
    try {
      const outcome = (await pool.run({ job, port: port2 }, { transferList: [port2] })) as Outcome;
      await closed; // every message of the job has arrived
      await settled(); // … and has been handled
      if ('error' in outcome) throw Object.assign(new Error(outcome.error.message), { name: outcome.error.name, stack: outcome.error.stack });
    } finally {
      port1.close();
    }
  };
  // one runner per thread takes the next job from the shared queue. After a failure no new job starts, and the jobs
  // already running finish before the pool is destroyed: terminating a worker that is still starting (loading koffi,
  // a native addon) aborted the whole process (FATAL ERROR napi_throw) in the fault suite's NaN test
  let next = 0;
  let firstError: { error: unknown } | undefined;
  const runner = async () => {
    while (firstError === undefined && next < jobs.length) {
      try {
        await runJob(jobs[next++]!);
      } catch (e) {
        firstError ??= { error: e };
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(threads, jobs.length) }, runner));
    if (firstError !== undefined) throw firstError.error;
    await settled();
  } finally {
    await pool.destroy();
  }
}

/**
 * The body of a pool worker script: `export default poolWorker(main)`. The thread initialises tfjs once
 * (quietly), then runs `main(shared, job, post)` for each job it takes; `post` sends a progress message.
 */
export function poolWorker<D, J>(
  main: (shared: D, job: J, post: (message: unknown) => void) => Promise<void>,
): (task: { job: J; port: MessagePort }) => Promise<Outcome> {
  let init: Promise<unknown> | undefined;
  return async ({ job, port }) => {
    // required lazily: this module is also loaded by the main thread
    const { workerData } = require('piscina') as { workerData: PoolData<D> };
    // quietly, but a backend that did not come up (the worker then runs a slower one) or a shortfall of threads is
    // reported, with its reason
    init ??= (require('../backend') as typeof import('../backend')).ready(() => undefined, { wasmThreads: workerData.wasmThreads }).then((info) => {
      for (const why of [...info.failures, ...(info.threadsShortfall ? [info.threadsShortfall] : [])]) {
        process.stderr.write(`[ptmst] pool worker on ${info.name}, ${info.threads} thread(s) per op: ${why}\n`);
      }
    });
    await init;
    try {
      await main(workerData.shared, job, (m) => port.postMessage(m));
      return { ok: true };
    } catch (e) {
      // the error's class travels by name (the exit code depends on it; a thread boundary drops the class)
      const err = e instanceof Error ? e : new Error(String(e));
      return { error: { name: err.name, message: err.message, stack: err.stack ?? '' } };
    } finally {
      port.close();
    }
  };
}
