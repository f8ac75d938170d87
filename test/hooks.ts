/** Mocha root hooks (loaded by .mocharc.json): the test run removes everything it wrote. */
import { rmSync } from 'node:fs';
import { TEST_ROOT } from './helpers';

export const mochaHooks = {
  afterAll(): void {
    if (!process.env.PTMST_KEEP_TEST_FILES) rmSync(TEST_ROOT, { recursive: true, force: true });
  },
};
