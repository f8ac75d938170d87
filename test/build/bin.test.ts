import { strict as assert } from 'node:assert';
import { accessSync, constants, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { REPO } from '../helpers';

// `npm run build` recreates dist/; the CLI that package.json's `bin` names must come out executable, or a `ptmst`
// linked by `npm link` fails with "Permission denied" after the next build (the tests run on a fresh build)
describe('build', () => {
  it('the CLI named by package.json "bin" is executable and starts with a shebang', () => {
    const pkg = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const file = join(REPO, pkg.bin.ptmst!);
    assert.equal(file, join(REPO, 'dist', 'src', 'cli', 'main.js'));
    assert.equal(readFileSync(file, 'utf8').split('\n')[0], '#!/usr/bin/env node');
    const mode = statSync(file).mode;
    assert.equal(mode & 0o111, 0o111, `mode ${(mode & 0o777).toString(8)}: not executable by user, group and others`);
    accessSync(file, constants.X_OK);
  });
});
