/**
 * A second thread for one distillation whose ops run single-threaded (backend/index.ts), and given the unrolled θ_i the
 * TESLA re-pass terms of the steps are independent of each other, so a helper thread computes the second half
 * of them (repass-worker.ts) while the distiller's own thread computes the first (iteration.ts). The helper
 * runs the distiller's tfjs backend, so the numbers are the same with or without it.
 */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { readyInfo, tf } from '../backend';
import type { RepassJob, RepassRunner } from './iteration';

type Reply = { id: number; sums: Float32Array[] } | { id: number; error: { name: string; message: string; stack: string } };

export class RepassHelper implements RepassRunner {
  private next = 0;
  private readonly waiting = new Map<number, { resolve: (v: Float32Array[]) => void; reject: (e: Error) => void }>();
  private failure: Error | undefined;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.id);
      this.waiting.delete(r.id);
      if ('error' in r) w?.reject(Object.assign(new Error(r.error.message), { name: r.error.name, stack: r.error.stack }));
      else w?.resolve(r.sums);
    });
    const fail = (e: Error) => {
      this.failure ??= e;
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('error', fail);
    worker.on('exit', (code) => fail(new Error(`the distiller's helper thread exited (code ${code})`)));
  }

  /**
   * Start a helper on this thread's tfjs backend. Its half of the re-pass is bit-identical only on the same backend
   * and products: the helper compares what its `ready` chose and its BLAS with this thread's, once ready, and fails
   * every job with both descriptions where they differ (a helper whose WebAssembly did not come up, say).
   */
  static start(): RepassHelper {
    const here = { name: tf.getBackend(), ...backendThreading() };
    return new RepassHelper(new Worker(join(__dirname, 'repass-worker.js'), { workerData: { backend: here.name, expect: here } }));
  }

  run(job: RepassJob): Promise<Float32Array[]> {
    if (this.failure) return Promise.reject(this.failure);
    const id = this.next++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      this.worker.postMessage({ id, job });
    });
  }

  async close(): Promise<void> {
    this.failure ??= new Error('the helper thread is closed');
    await this.worker.terminate();
  }
}

/** The backend `ready` chose on this thread, its threads per op and BLAS library (defaults before it has run). */
function backendThreading(): { threads: number; blas: string | null; chosen: string | null } {
  const info = readyInfo();
  return info ? { threads: info.threads, blas: info.blas, chosen: info.name } : { threads: 1, blas: null, chosen: null };
}

/**
 * Whether each of `jobs` distillations running at once on `threads` threads gets a helper: only when a core
 * would otherwise idle (one job on two cores), never by taking a core from another job. The job itself also
 * checks that its ops run on one thread (distill/index.ts).
 */
export function helperPerJob(jobs: number, threads: number, cores = availableParallelism()): boolean {
  return jobs > 0 && Math.min(jobs, threads) * 2 <= cores;
}

/** Run `f` with a helper when `wanted`, closing it however `f` ends. */
export async function withRepassHelper<T>(wanted: boolean, f: (helper: RepassHelper | undefined) => Promise<T>): Promise<T> {
  if (!wanted) return f(undefined);
  const helper = RepassHelper.start();
  try {
    return await f(helper);
  } finally {
    await helper.close();
  }
}
