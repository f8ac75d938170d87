import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../helpers';

/**
 * The backend's banner in a notebook: `notebookContext()` (every notebook's first call) sends it to stdout, since
 * a notebook shows stderr as a red box; elsewhere (CLI, scripts) it stays on stderr, where it keeps a JSON stdout clean.
 */
describe('notebook: the backend banner', function () {
  this.timeout(60_000);
  const run = (code: string) => {
    const lib = JSON.stringify(join(REPO, 'dist', 'src'));
    const r = spawnSync(process.execPath, ['-e', `const ptmst = require(${lib}); ${code}`], { cwd: REPO, encoding: 'utf8', timeout: 60_000, env: { ...process.env, PTMST_NOTEBOOK_MODE: 'quick' } });
    assert.equal(r.status, 0, r.stderr);
    return r;
  };
  const banner = /^\[ptmst\] tfjs backend: \w+ \(/m;

  it('goes to stdout after notebookContext()', () => {
    const r = run('ptmst.notebookContext(); ptmst.ready().then(() => undefined);');
    assert.match(r.stdout, banner);
    assert.doesNotMatch(r.stderr, banner);
  });

  it('stays on stderr without it, and a caller can still pass its own log', () => {
    const plain = run('ptmst.ready().then(() => undefined);');
    assert.match(plain.stderr, banner);
    assert.doesNotMatch(plain.stdout, banner);
    const own = run("ptmst.ready((line) => process.stdout.write('mine ' + line + '\\n')).then(() => undefined);");
    assert.match(own.stdout, /^mine \[ptmst\] tfjs backend: /m);
    assert.doesNotMatch(own.stderr, banner);
  });
});
