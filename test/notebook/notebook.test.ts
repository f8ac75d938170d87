import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { type Display, notebookContext, notebookProgress, projectRoot, show } from '../../src/notebook';
import { REPO } from '../helpers';

function fakeDisplay() {
  const shown: { kind: keyof Display; value: string }[] = [];
  const d: Display = {
    html: (value) => shown.push({ kind: 'html', value }),
    markdown: (value) => shown.push({ kind: 'markdown', value }),
    svg: (value) => shown.push({ kind: 'svg', value }),
    text: (value) => shown.push({ kind: 'text', value }),
  };
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
    assert.ok(shown.every((s) => s.kind === 'text'));
  });

  it('show: the SVG inline, then the caption and where the files are', () => {
    const { d, shown } = fakeDisplay();
    show({ name: 'f', caption: 'what and how', spec: {}, svg: '<svg/>', png: new Uint8Array(), width: 1, height: 1, files: { png: 'x' } }, d);
    assert.deepEqual(shown.map((s) => s.kind), ['svg', 'markdown']);
    assert.match(shown[1]!.value, /\*\*Figure f\.\*\* what and how \(saved: `figures\/f\.svg`/);
  });
});
