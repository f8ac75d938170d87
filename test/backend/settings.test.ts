import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { REPO } from '../helpers';

/**
 * The backend's settings from the environment (src/backend/index.ts): a value outside the valid ones is one clear
 * error naming the variable and the valid values, exit 2 from the CLI, on whichever backend runs.
 */
describe('backend: settings from the environment', function () {
  this.timeout(120_000);
  // whether the fused GELU kernel runs on a 1 × 4 input, in a fresh process
  const child = `
    const { ready, tf } = require(${JSON.stringify(join(__dirname, '../../src/backend'))});
    const { geluForward } = require(${JSON.stringify(join(__dirname, '../../src/backend/head-kernels'))});
    ready(() => undefined).then((info) => {
      process.stdout.write(JSON.stringify({ backend: info.name, fused: geluForward(tf.ones([1, 4]), tf.zeros([4])) !== undefined }));
    }, (e) => { process.stderr.write(e.name + ': ' + e.message); process.exit(2); });`;
  const run = (env: Record<string, string>) =>
    spawnSync(process.execPath, ['-e', child], { env: { ...process.env, PTMST_BACKEND: 'wasm', ...env }, encoding: 'utf8', timeout: 60_000 });

  it('PTMST_HEAD_KERNELS: on (or unset) runs the fused kernels, off keeps tfjs ops', () => {
    for (const [value, fused] of [['on', true], ['', true], ['off', false]] as const) {
      const r = run({ PTMST_HEAD_KERNELS: value });
      assert.equal(r.status, 0, r.stderr);
      assert.deepEqual(JSON.parse(r.stdout), { backend: 'wasm', fused }, `PTMST_HEAD_KERNELS=${value}`);
    }
  });

  it('PTMST_HEAD_KERNELS=garbage is one ConfigError naming the variable and its valid values, on any backend', () => {
    for (const backend of ['wasm', 'cpu']) {
      const r = run({ PTMST_HEAD_KERNELS: 'garbage', PTMST_BACKEND: backend });
      assert.equal(r.status, 2, `${backend}: ${r.stdout}`);
      assert.equal(r.stderr, 'ConfigError: PTMST_HEAD_KERNELS=garbage is not a setting; valid values: on, off');
    }
  });

  it('the CLI exits 2 with that one line', () => {
    const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), 'features', '--data-root', '/nonexistent'], {
      encoding: 'utf8',
      env: { ...process.env, PTMST_HEAD_KERNELS: 'garbage' },
      timeout: 60_000,
    });
    assert.equal(r.status, 2, r.stderr);
    assert.match(r.stderr, /^ptmst features: error: PTMST_HEAD_KERNELS=garbage is not a setting; valid values: on, off$/m);
  });
});
