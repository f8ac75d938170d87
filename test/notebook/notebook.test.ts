import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { type Display, notebookContext, notebookProgress, projectRoot, show } from '../../src/notebook';
import { REPO } from '../helpers';

/** What a display was given: per output, its MIME types (joined) and its plain text. */
function fakeDisplay() {
  const shown: { kind: string; value: string }[] = [];
  const d: Display = { output: (b) => shown.push({ kind: Object.keys(b.data).sort().join(' '), value: b.data['text/plain'] ?? '' }) };
  return { d, shown };
}

describe('notebook helpers', () => {
  it('context: full mode works in the project, quick mode in a scratch folder; a bad mode is an error', () => {
    const full = notebookContext({ PTMST_WORKSPACE: REPO });
    assert.deepEqual([full.mode, full.workspace, full.figures], ['full', REPO, join(REPO, 'figures')]);
    const quick = notebookContext({ PTMST_WORKSPACE: REPO, PTMST_NOTEBOOK_MODE: 'quick' });
    assert.equal(quick.workspace, join(REPO, '.ptmst-cache', 'notebooks-quick'));
    assert.ok(quick.quick);
    assert.throws(() => notebookContext({ PTMST_NOTEBOOK_MODE: 'fast' }), /PTMST_NOTEBOOK_MODE: "fast"/);
    assert.equal(projectRoot(join(REPO, 'notebooks')), REPO);
  });

  it('progress: one block, one line per stage, counts and ETA while running, duration when done, at most once a second', () => {
    const { d, shown } = fakeDisplay();
    let t = 0;
    const sink = notebookProgress({ display: d, now: () => t });
    sink({ label: 'features', done: 0, total: 10 });
    t = 500;
    sink({ label: 'features', done: 5, total: 10 }); // within a second of the last update: not shown
    assert.equal(shown.length, 1);
    t = 2000;
    sink({ label: 'features', done: 5, total: 10, info: { loss: 0.123456 } });
    assert.equal(shown.at(-1)!.value, '… features 5/10, eta 2 s loss 0.1235');
    t = 4000;
    sink({ label: 'features', done: 10, total: 10 });
    sink({ label: 'experts', done: 1, total: 4 });
    t = 5200;
    sink({ label: 'experts', done: 2, total: 4 });
    assert.deepEqual(shown.at(-1)!.value.split('\n'), ['✓ features 10/10 in 4 s', '… experts 2/4, eta 2 s']); // rate 1 per 1.2 s, 2 left: 2.4 s
    assert.ok(shown.every((s) => s.kind === 'text/plain'));
  });

  it('show: the SVG with its PNG inline, then the caption and where the files are', () => {
    const { d, shown } = fakeDisplay();
    show({ name: 'f', caption: 'what and how', spec: {}, svg: '<svg/>', png: new Uint8Array([1]), width: 2, height: 2, files: { png: 'x' } }, d);
    assert.deepEqual(shown.map((s) => s.kind), ['image/png image/svg+xml text/plain', 'text/html text/markdown text/plain']);
    assert.match(shown[1]!.value, /^Figure f\. what and how \(saved: figures\/f\.svg/);
  });

  it('context: the backend banner goes to stdout, so a notebook\'s first output is no stderr box', () => {
    // a fresh process: the first ready() call decides where the banner goes; the notebook's own `await ready()` follows
    const script = `const nb = require(${JSON.stringify(join(REPO, 'dist', 'src', 'notebook', 'index.js'))});
      const { ready } = require(${JSON.stringify(join(REPO, 'dist', 'src', 'backend', 'index.js'))});
      nb.notebookContext({ PTMST_WORKSPACE: ${JSON.stringify(REPO)} });
      ready().then((b) => console.log('backend ' + b.name));`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, PTMST_BACKEND: 'cpu' } });
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(r.stdout.trim().split('\n'), ['[ptmst] tfjs backend: cpu (@tensorflow/tfjs-backend-cpu; forced by PTMST_BACKEND)', 'backend cpu']);
  });
});
