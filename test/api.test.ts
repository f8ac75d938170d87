import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, tempDir } from './helpers';

const node = (cwd: string, code: string, env: NodeJS.ProcessEnv = process.env) =>
  spawnSync(process.execPath, ['-e', code], { cwd, encoding: 'utf8', env });

describe('the public API (what a notebook imports)', function () {
  this.timeout(120000);

  it("require('ptmst') and import from 'ptmst' work in a folder that installed the package by path", () => {
    const dir = tempDir('ptmst-api-');
    writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'scratch', version: '1.0.0', private: true }));
    const npm = spawnSync('npm', ['install', REPO, '--offline', '--no-audit', '--no-fund'], { cwd: dir, encoding: 'utf8' });
    assert.equal(npm.status, 0, npm.stderr);
    const cjs = node(dir, "const p = require('ptmst'); console.log(['distill', 'evaluateMethod', 'trainExpert', 'convexifyFlat', 'repro'].map((k) => typeof p[k]).join())");
    assert.equal(cjs.stdout.trim(), 'function,function,function,function,function', cjs.stderr);
    const esm = spawnSync(process.execPath, ['--input-type=module', '-e', "import { distillPhase } from 'ptmst'; console.log(typeof distillPhase)"], { cwd: dir, encoding: 'utf8' });
    assert.equal(esm.stdout.trim(), 'function', esm.stderr);
  });

  it('an in-process verb picks the fastest backend itself (wasm here, never plain JS when wasm is present)', () => {
    const expected = node(REPO, "try { require('@tensorflow/tfjs-node'); console.log('tensorflow') } catch { console.log('wasm') }").stdout.trim();
    const env = { ...process.env };
    delete env.PTMST_BACKEND;
    const r = node(
      REPO,
      `const p = require(${JSON.stringify(join(REPO, 'dist', 'src', 'index.js'))});
       const set = { numImages: 2, numCaptions: 2, dImg: 3, dTxt: 3, img: Float32Array.of(1, 0, 2, 0, 1, 3), txt: Float32Array.of(2, 1, 0, 1, 0, 1),
                     captionToImage: Int32Array.of(0, 1), imageToCaptions: [[0], [1]] };
       (async () => {
         const r = p.rng(1);
         const theta = p.tf.tidy(() => p.initDual(p.dualShape(3, 3, 4), () => r.next()));
         await p.evaluateRetrieval(theta, set);
         console.log(p.tf.getBackend());
       })();`,
      env,
    );
    assert.equal(r.stdout.trim(), expected, r.stderr);
  });
});
