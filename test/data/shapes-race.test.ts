import { strict as assert } from 'node:assert';
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { SHAPES_SIZES } from '../../src/data/shapes';
import { REPO, tempDir } from '../helpers';

describe('data/shapes under concurrent first runs', function () {
  this.timeout(120000);

  it('two processes generating the set at once all succeed and leave one complete set', async () => {
    const root = tempDir();
    const script = `require(${JSON.stringify(join(REPO, 'dist', 'src', 'data', 'shapes.js'))}).ensureShapes(${JSON.stringify(root)}).catch((e) => { console.error(e); process.exit(1); })`;
    const codes = await Promise.all(
      [0, 1].map(() => new Promise<number | null>((resolve) => spawn(process.execPath, ['-e', script], { stdio: 'inherit' }).on('exit', resolve))),
    );
    assert.deepEqual(codes, [0, 0]);
    const dir = join(root, 'shapes');
    const total = Object.values(SHAPES_SIZES).reduce((a, b) => a + b, 0);
    assert.equal(readdirSync(join(dir, 'images')).length, total);
    assert.equal(readFileSync(join(dir, 'captions.txt'), 'utf8').trim().split('\n').length, 1 + 5 * total);
    assert.deepEqual(readdirSync(root), ['shapes'], 'no temporary folder is left');
    rmSync(root, { recursive: true });
  });
});
