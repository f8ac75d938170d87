/** Mocha root hooks (loaded by .mocharc.json): the test run removes everything it wrote. */
import { mkdirSync, rmSync } from 'node:fs';
import { TEST_ROOT } from './helpers';

// the system temp folder of everything the run starts (worker threads, child processes, the threaded wasm
// backend's glue files) is the run's own folder, so it goes with the run
mkdirSync(TEST_ROOT, { recursive: true });
process.env.TMPDIR = TEST_ROOT;

const removeRoot = () => {
  if (!process.env.PTMST_KEEP_TEST_FILES) rmSync(TEST_ROOT, { recursive: true, force: true });
};
// a run stopped by Ctrl-C or a timeout's SIGTERM removes its folder too, then ends as the signal would
process.on('exit', removeRoot);
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    removeRoot();
    process.kill(process.pid, signal);
  });
}

export const mochaHooks = {
  afterAll: removeRoot,
};
