/** The helper thread of repass-helper.ts: computes the re-pass terms of a range of steps, one job at a time. */
import { parentPort, workerData } from 'node:worker_threads';
import { type BackendName, ready, tf, useBackend } from '../backend';
import { type DualParams, unflattenTower } from '../model/dual';
import { type RepassJob, type UnrollStep, repassRange } from './iteration';

const started = (async () => {
  const info = await ready(() => undefined);
  type Setup = { name: string; threads: number; blas: string | null; chosen: string | null };
  const { backend, expect } = workerData as { backend: string; expect: Setup };
  if (tf.getBackend() !== backend && !(await useBackend(backend as BackendName))) throw new Error(`the helper thread cannot run the distiller's backend "${backend}"`);
  // the same choice and products as the distiller's (a helper whose WebAssembly did not come up chose plain JS, and
  // runs tfjs's kernels; OpenBLAS and XNNPACK sum in other orders), or its half of the re-pass would not be
  // bit-identical; the thread count may differ (the threaded build's products are bitwise the single-threaded ones)
  const here: Setup = { name: tf.getBackend(), threads: info.threads, blas: info.blas, chosen: info.name };
  const describe = (b: Setup) => `${b.name} (${b.chosen ?? 'not chosen'} chosen), ${b.threads} thread(s) per op, products on ${b.blas ?? 'XNNPACK'}`;
  if (here.blas !== expect.blas || (expect.chosen !== null && here.chosen !== expect.chosen)) {
    const why = [...info.failures, ...(info.threadsShortfall ? [info.threadsShortfall] : [])].join('; ');
    throw new Error(`the helper thread runs ${describe(here)}, the distiller ${describe(expect)}${why ? `: ${why}` : ''}`);
  }
})();

function compute(job: RepassJob): Float32Array[] {
  // the sums leave the tidy as tensors: a tidy that returns arrays walks them element by element
  const sums = tf.tidy(() => {
    const state = Object.fromEntries(job.keys.map((k, j) => [k, tf.tensor(job.data[j]!.values, job.data[j]!.shape)]));
    const thetas: DualParams[] = job.thetas.map((t) => ({ img: unflattenTower(tf.tensor1d(t.img), job.shape.img), txt: unflattenTower(tf.tensor1d(t.txt), job.shape.txt) }));
    const mask = (m: RepassJob['steps'][number]['maskImg']) => (m ? tf.tensor2d(m.values, m.shape as [number, number]) : null);
    const steps: UnrollStep[] = job.steps.map((s) => ({ batch: s.batch, maskImg: mask(s.maskImg), maskTxt: mask(s.maskTxt) }));
    const cot = { img: tf.tensor1d(job.cot.img), txt: tf.tensor1d(job.cot.txt) };
    return repassRange(state, job.keys, thetas, cot, steps, job.options);
  });
  // copies: a backend may hand out its own storage, and these buffers are transferred
  const arrays = sums.map((t) => (t.dataSync() as Float32Array).slice());
  for (const t of sums) t.dispose();
  return arrays;
}

parentPort!.on('message', ({ id, job }: { id: number; job: RepassJob }) => {
  void started
    .then(() => {
      const t0 = performance.now();
      const sums = compute(job);
      if (process.env.PTMST_DEBUG_REPASS) console.error(`[repass helper] ${tf.getBackend()} simd ${String(tf.env().getBool("WASM_HAS_SIMD_SUPPORT"))} ${(performance.now() - t0).toFixed(0)} ms`);
      parentPort!.postMessage({ id, sums }, sums.map((s) => s.buffer as ArrayBuffer));
    })
    .catch((e: unknown) => {
      const err = e instanceof Error ? e : new Error(String(e));
      parentPort!.postMessage({ id, error: { name: err.name, message: err.message, stack: err.stack ?? '' } });
    });
});
