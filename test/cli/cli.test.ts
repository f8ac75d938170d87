import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO, realData, sharedCache, tempDir } from '../helpers';
import { readSafetensors } from '../../src/store/safetensors';

function ptmst(...args: string[]) {
  const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, PTMST_DATA_ROOT: '' },
  });
  return { code: r.status, err: r.stderr };
}

describe('cli', function () {
  this.timeout(120000);

  it('rejects an unknown option with exit code 2, naming it', () => {
    const r = ptmst('features', '--bogus');
    assert.equal(r.code, 2);
    assert.match(r.err, /unknown option '--bogus'/);
  });

  it('rejects an ill-typed option, naming the field', () => {
    const r = ptmst('features', '--data-root', tempDir(), '--workers', 'two');
    assert.equal(r.code, 2);
    assert.match(r.err, /field workers: .*expected number/);
  });

  it('says how to give a data root when there is none, and names a missing dataset folder', () => {
    assert.match(ptmst('features').err, /no data root: pass --data-root DIR or set PTMST_DATA_ROOT/);
    const r = ptmst('features', '--data-root', '/nonexistent');
    assert.equal(r.code, 3);
    assert.match(r.err, /\/nonexistent\/flickr8k: dataset folder not found/);
  });

  it('extracts caption features and writes the --json summary', function () {
    const root = realData(this);
    const dir = tempDir();
    const json = join(dir, 'summary.json');
    const r = ptmst('features', '--data-root', root, '--cache-dir', dir, '--splits', 'rest', '--text-encoder', 'wink-sg-100d', '--image-encoder', 'mobilenet_v2', '--json', json, '--workers', '1');
    assert.equal(r.code, 0, r.err);
    const summary = JSON.parse(readFileSync(json, 'utf8'));
    assert.equal(summary.command, 'features');
    const text = summary.outputs.find((o: { modality: string }) => o.modality === 'text');
    assert.deepEqual([text.count, text.dim], [455, 100]);
    const image = summary.outputs.find((o: { modality: string }) => o.modality === 'image');
    assert.deepEqual([image.count, image.dim], [91, 1280]);
  });

  it('progress goes to stderr as plain lines when stderr is not a terminal', () => {
    // a fresh feature cache; the generated photos are copied when an earlier test made them (~20 s saved)
    const cache = tempDir();
    if (existsSync(join(sharedCache(), 'generated'))) cpSync(join(sharedCache(), 'generated'), join(cache, 'generated'), { recursive: true });
    const r = ptmst('features', '--dataset', 'shapes', '--cache-dir', cache, '--splits', 'test', '--workers', '1', '--chunk-size', '25');
    assert.equal(r.code, 0, r.err);
    assert.match(r.err, /^▶ shapes\/test images 0\/100$/m);
    assert.match(r.err, /^✓ shapes\/test images 100\/100 in \d+ s$/m);
    assert.match(r.err, /^✓ shapes\/test captions 500\/500$/m);
    assert.doesNotMatch(r.err, /\u001b\[|░/, 'no bars or terminal escapes in a log');
  });

  it('step: one iteration from a state file, loss and every gradient to safetensors', async () => {
    const dir = tempDir();
    const state = join(dir, 'state.safetensors');
    const out = join(dir, 'grads.safetensors');
    assert.equal(ptmst('step', '--example', state).code, 0);
    const r = ptmst('step', '--state', state, '--out', out, '--loss', 'infonce');
    assert.equal(r.code, 0, r.err);
    const g = await readSafetensors(out);
    for (const k of ['loss', 'grad.x', 'grad.y', 'grad.s', 'grad.lrImg', 'grad.lrTxt']) assert.ok(g.tensors.has(k), k);
    assert.deepEqual(g.tensors.get('grad.x')!.shape, [10, 12]);
    assert.ok(Number.isFinite(g.tensors.get('loss')!.data[0]!));
    assert.match(ptmst('step', '--state', state, '--out', out, '--mode', 'sideways').err, /option --mode: "sideways" is not tesla or full/);
  });
});
