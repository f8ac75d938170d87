/**
 * Independent jobs on a pool of worker threads (piscina). tfjs-wasm is single-threaded in Node, so this is
 * how a stage uses every core. Each idle thread takes the next job from one queue, so uneven jobs (phases
 * of 200 and 299 pairs, experts of different lengths) keep every thread busy. `shared` is cloned into each
 * thread once (workerData: configs, verified feature sets); a job's progress messages come back through its
 * own MessagePort, its result as the task's return value. Messages and results are handled one at a time,
 * in arrival order, even when the handlers are async.
 */
import { availableParallelism } from 'node:os';
import { MessageChannel, type MessagePort } from 'node:worker_threads';
import Piscina from 'piscina';

/** Threads for a stage: the config's, else the cores (at most 2, this project's machine), never more than jobs. */
export function threadCount(configured: number | undefined, jobs: number): number {
  return Math.max(1, Math.min(configured ?? Math.min(2, availableParallelism()), jobs));
}

/** What a job sends back: its value, or its error by class name and message. */
type Outcome<R> = { value: R } | { error: { name: string; message: string; stack: string } };

export async function runPool<J, R, M>(
  script: string,
  jobs: readonly J[],
  threads: number,
  handlers: { onMessage?: (message: M) => void | Promise<void>; onResult?: (result: R, job: J) => void | Promise<void> },
  shared: unknown,
): Promise<void> {
  if (jobs.length === 0) return;
  const pool = new Piscina({ filename: script, minThreads: threads, maxThreads: threads, workerData: shared, atomics: 'disabled', idleTimeout: 60_000 });
  let chain = Promise.resolve();
  const serial = (f: () => void | Promise<void>) => (chain = chain.then(f));
  try {
    await Promise.all(
      jobs.map(async (job) => {
        const { port1, port2 } = new MessageChannel();
        port1.on('message', (m: M) => void serial(() => handlers.onMessage?.(m)));
        const closed = new Promise<void>((resolve) => port1.once('close', () => resolve()));
        try {
          const outcome = (await pool.run({ job, port: port2 }, { transferList: [port2] })) as Outcome<R>;
          await closed; // every progress message of the job has arrived
          if ('error' in outcome) throw Object.assign(new Error(outcome.error.message), { name: outcome.error.name, stack: outcome.error.stack });
          const result = outcome.value;
          await serial(() => handlers.onResult?.(result, job));
        } finally {
          port1.close();
        }
      }),
    );
    await chain;
  } finally {
    await pool.destroy();
  }
}

/**
 * The body of a pool worker script: `export default poolWorker(main)`. The thread initialises tfjs once
 * (quietly), then runs `main(shared, job, post)` for each job it takes; `post` sends a progress message.
 */
export function poolWorker<D, J, R>(
  main: (shared: D, job: J, post: (message: unknown) => void) => Promise<R>,
): (task: { job: J; port: MessagePort }) => Promise<Outcome<R>> {
  let init: Promise<unknown> | undefined;
  return async ({ job, port }) => {
    // required lazily: this module is also loaded by the main thread
    const { workerData } = require('piscina') as { workerData: D };
    init ??= (require('../backend') as typeof import('../backend')).ready(() => undefined);
    await init;
    try {
      return { value: await main(workerData, job, (m) => port.postMessage(m)) };
    } catch (e) {
      // the error's class travels by name (the exit code depends on it; a thread boundary drops the class)
      const err = e instanceof Error ? e : new Error(String(e));
      return { error: { name: err.name, message: err.message, stack: err.stack ?? '' } };
    } finally {
      port.close();
    }
  };
}
