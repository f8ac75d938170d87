import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Repository root (tests run from dist/test/...). */
export const REPO = resolve(__dirname, '..', '..');

/** The real-data root: $PTMST_DATA_ROOT, else ../shared/data beside the repo. Missing data fails the test. */
export function dataRoot(): string {
  const root = process.env.PTMST_DATA_ROOT ?? resolve(REPO, '..', 'shared', 'data');
  if (!existsSync(join(root, 'flickr8k', 'captions.txt'))) {
    throw new Error(`real data not found at ${root} (set PTMST_DATA_ROOT)`);
  }
  return root;
}

export function tempDir(prefix = 'ptmst-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** One cache folder shared by the tests of a run (generated shapes and their features are made once). */
export function sharedCache(): string {
  const dir = join(tmpdir(), `ptmst-test-cache-${process.pid}`);
  return dir;
}
