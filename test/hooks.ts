/** Mocha root hooks (loaded by .mocharc.json): the test run removes everything it wrote. */
import { mkdirSync, rmSync } from 'node:fs';
import { TEST_ROOT } from './helpers';

// the system temp folder of everything the run starts (worker threads, child processes, the threaded wasm
// backend's glue files) is the run's own folder, so it goes with the run
mkdirSync(TEST_ROOT, { recursive: true });
process.env.TMPDIR = TEST_ROOT;

export const mochaHooks = {
  afterAll(): void {
    if (!process.env.PTMST_KEEP_TEST_FILES) rmSync(TEST_ROOT, { recursive: true, force: true });
  },
};
