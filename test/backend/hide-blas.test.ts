import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { ready } from '../../src/backend';
import { REPO, onlyWhere } from '../helpers';

/**
 * scripts/test-without-blas.sh, which .ci/run uses to run the backend's tests without OpenBLAS, really hides it: where
 * this process loads OpenBLAS, a process inside the script's namespace cannot (koffi's dlopen fails there, it is
 * not PTMST_BLAS=off), and its backend reports blas null.
 */
describe('backend: OpenBLAS hidden from the loader (scripts/test-without-blas.sh)', function () {
  this.timeout(120_000);

  it('the child reports blas null while this process loads OpenBLAS', async function () {
    const here = await ready(() => undefined);
    onlyWhere(this, here.blas !== null, 'where OpenBLAS loads (libopenblas0-pthread and koffi: CI)', 'PTMST_REQUIRE_BLAS');
    const env: NodeJS.ProcessEnv = { ...process.env, PTMST_BACKEND: here.name };
    delete env.PTMST_BLAS_HIDDEN;
    const r = spawnSync('bash', ['scripts/test-without-blas.sh', '--probe'], { cwd: REPO, env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const child = JSON.parse(r.stdout.trim().split('\n').pop()!) as { name: string; blas: string | null };
    assert.equal(child.name, here.name);
    assert.equal(child.blas, null, 'inside the namespace no BLAS loads');
    assert.match(r.stderr, /test-without-blas: [1-9]\d* OpenBLAS file\(s\) hidden from the loader/);
    assert.match(here.blas!, /OpenBLAS/);
  });
});
