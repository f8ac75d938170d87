import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { onlyWhere, tempDir } from '../helpers';

/**
 * The threaded WebAssembly build (src/backend/wasm-threads.ts) in fresh processes: it comes up with the threads asked
 * for, the process exits by itself afterwards (the pthread workers are unreferenced), and products, a head's
 * forward and hand-written backward, and their autodiff give the same bits as the single-threaded build.
 */
describe('backend: threaded WebAssembly', function () {
  this.timeout(120_000);
  const child = `
    const { createHash } = require('node:crypto');
    const { ready, tf } = require(${JSON.stringify(join(__dirname, '../../src/backend'))});
    const { initDual, dualShape, dualGrads, flattenTower } = require(${JSON.stringify(join(__dirname, '../../src/model/dual'))});
    ready(() => undefined).then((info) => {
      let s = 7;
      const rand = () => ((s = (s * 16807) % 2147483647) / 2147483647);
      const h = createHash('sha256');
      const add = (t) => h.update(Buffer.from(t.dataSync().buffer));
      add(tf.matMul(tf.randomNormal([300, 256], 0, 1, 'float32', 1), tf.randomNormal([256, 700], 0, 1, 'float32', 2)));
      const theta = initDual(dualShape(1280, 100, 64), rand);
      const batch = { x: tf.randomNormal([32, 1280], 0, 1, 'float32', 3), y: tf.randomNormal([32, 100], 0, 1, 'float32', 4), s: tf.eye(32), maskImg: null, maskTxt: null };
      const g = dualGrads(theta, batch, 'infonce', 0.07).grads;
      add(flattenTower(g.img)); add(flattenTower(g.txt));
      const dx = tf.grad((x) => tf.sum(flattenTower(dualGrads(theta, { ...batch, x }, 'infonce', 0.07).grads.img)))(batch.x);
      add(dx);
      process.stdout.write(JSON.stringify({ threads: info.threads, blas: info.blas, hash: h.digest('hex') }));
    });`;
  // the threaded build runs XNNPACK's products, so BLAS is off unless a test says otherwise
  const run = (threads: number, blas = 'off') => {
    const env = { ...process.env, PTMST_WASM_THREADS: String(threads), PTMST_BACKEND: 'wasm', PTMST_BLAS: blas };
    const r = spawnSync(process.execPath, ['-e', child], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, `the child with ${threads} thread(s) exits by itself, with 0 (signal ${r.signal}): ${r.stderr}`);
    return JSON.parse(r.stdout) as { threads: number; blas: string | null; hash: string };
  };

  it('two threads come up, exit cleanly and give the single-threaded bits', () => {
    const one = run(1);
    const two = run(2);
    assert.equal(one.threads, 1);
    assert.equal(two.threads, 2, 'the threaded build came up with two threads (its shims still fit this tfjs version)');
    assert.equal(two.hash, one.hash, 'products, the head backward and its gradient are bitwise the same on two threads');
  });

  it('leaves nothing in the temp folder, neither once it is up nor after exit; a pool worker neither', () => {
    const tmp = tempDir();
    const probe = `
      const { readdirSync } = require('node:fs');
      const { ready } = require(${JSON.stringify(join(__dirname, '../../src/backend'))});
      const { runPool } = require(${JSON.stringify(join(__dirname, '../../src/util/pool'))});
      ready(() => undefined).then(async (info) => {
        const seen = [];
        // one pool worker on two threads: its own threaded build, initialised while this one's runs
        await runPool(${JSON.stringify(join(__dirname, '../util/pool-probe-worker.js'))}, [0], 1, (m) => seen.push(m), 'x');
        process.stdout.write(JSON.stringify({ threads: info.threads, shortfall: info.threadsShortfall, worker: seen[0].threads, left: readdirSync(process.env.TMPDIR) }));
      });`;
    const env = { ...process.env, TMPDIR: tmp, PTMST_WASM_THREADS: '2', PTMST_BACKEND: 'wasm', PTMST_BLAS: 'off' };
    const r = spawnSync(process.execPath, ['-e', probe], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { threads: 2, shortfall: null, worker: 2, left: [] });
    assert.deepEqual(readdirSync(tmp), []);
  });

  // the threaded build used to fall back to one thread, and a worker whose WebAssembly did not come up to plain JS,
  // without a word (tf.setBackend(...).catch(() => false)); the reason is now in BackendInfo and the banner
  it('a threaded build that does not come up is reported with its reason: one thread, threadsShortfall and the banner say why', () => {
    const probe = `require(${JSON.stringify(join(__dirname, '../../src/backend'))}).ready().then((i) => process.stdout.write(JSON.stringify(i)));`;
    // a temp "folder" that is a file: the glue's scripts cannot be written
    const notAFolder = join(tempDir(), 'a-file');
    writeFileSync(notAFolder, '');
    const env = { ...process.env, TMPDIR: notAFolder, PTMST_WASM_THREADS: '2', PTMST_BACKEND: 'wasm', PTMST_BLAS: 'off' };
    const r = spawnSync(process.execPath, ['-e', probe], { env, encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    const info = JSON.parse(r.stdout) as { name: string; threads: number; threadsShortfall: string | null; failures: string[] };
    const why = /^the threaded build did not come up: ENOTDIR: not a directory, mkdtemp '.*\/a-file\/ptmst-tfjs-wasm-threads-/;
    assert.deepEqual([info.name, info.threads, info.failures], ['wasm', 1, []]);
    assert.match(info.threadsShortfall ?? 'null', why);
    assert.match(r.stderr, /^\[ptmst\] tfjs backend: wasm \(.*1 thread per op \(the threaded build did not come up: ENOTDIR/m);
  });

  it('a backend that does not initialise is named with its reason, where a slower one runs instead; the threaded build\'s files go too', () => {
    const probe = `require('@tensorflow/tfjs-backend-wasm').setWasmPaths('/nonexistent-ptmst-wasm/');
      require(${JSON.stringify(join(__dirname, '../../src/backend'))}).ready().then((i) => process.stdout.write(JSON.stringify(i)));`;
    // on two threads the glue's pthread workers are already starting when the binary is found missing: they are
    // stopped before their script files are removed (else one throws, uncaught, on its missing file)
    for (const threads of ['1', '2']) {
      const tmp = tempDir();
      const env: NodeJS.ProcessEnv = { ...process.env, PTMST_WASM_THREADS: threads, PTMST_BLAS: 'off', TMPDIR: tmp };
      delete env.PTMST_BACKEND;
      const r = spawnSync(process.execPath, ['-e', probe], { env, encoding: 'utf8', timeout: 60_000 });
      assert.equal(r.status, 0, `${threads} thread(s): ${r.stderr}`);
      const info = JSON.parse(r.stdout) as { name: string; failures: string[] };
      assert.equal(info.name, 'cpu');
      assert.equal(info.failures.length, 1, info.failures.join('; '));
      assert.match(info.failures[0]!, /^wasm \(@tensorflow\/tfjs-backend-wasm\) did not initialise: \S/);
      assert.match(r.stderr, /^\[ptmst\] tfjs backend: cpu \(.*; wasm \(@tensorflow\/tfjs-backend-wasm\) did not initialise: /m);
      assert.deepEqual(readdirSync(tmp), [], `${threads} thread(s): nothing left in the temp folder`);
    }
  });

  it('beside BLAS every op runs on one thread, whatever PTMST_WASM_THREADS asks', function () {
    const withBlas = run(2, 'auto');
    onlyWhere(this, withBlas.blas !== null, 'where OpenBLAS loads (libopenblas0-pthread and koffi: CI)', 'PTMST_REQUIRE_BLAS');
    assert.equal(withBlas.threads, 1);
    assert.match(withBlas.blas!, /OpenBLAS|cblas/);
  });

  it('PTMST_WASM_THREADS outside 1…8 is one clear error', () => {
    const r = spawnSync(process.execPath, ['-e', child], { env: { ...process.env, PTMST_WASM_THREADS: 'lots', PTMST_BACKEND: 'wasm' }, encoding: 'utf8', timeout: 60_000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /PTMST_WASM_THREADS=lots is not a thread count; valid values: integers 1 to 8/);
  });
});
