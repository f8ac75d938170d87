import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import jpeg from 'jpeg-js';
import { loadSplit, resolveDataRoot } from '../../src/data/registry';
import { sharedCache } from '../helpers';

const treeDigest = (dir: string): string => {
  const files = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(join(d, e.name)) : [join(d, e.name)]));
  const lines = files(dir).map((f) => `${createHash('sha256').update(readFileSync(f)).digest('hex')}  ./${relative(dir, f)}`).sort((a, b) => (a.slice(66) < b.slice(66) ? -1 : 1));
  return createHash('sha256').update(lines.map((l) => `${l}\n`).join('')).digest('hex');
};
const meanBrightness = (file: string) => {
  const { data } = jpeg.decode(readFileSync(file));
  let s = 0;
  for (let i = 0; i < data.length; i += 4) s += data[i]! + data[i + 1]! + data[i + 2]!;
  return s / ((data.length / 4) * 3);
};

describe('generated datasets: shapes and shapes-shifted need no data root', function () {
  this.timeout(120000);

  it('shapes-shifted: 100 test photos on a dark background, five captions each, no other split; shapes unchanged', async () => {
    const cache = sharedCache(); // shared with the other tests of the run: the shapes set is generated once
    const saved = process.env.PTMST_DATA_ROOT;
    delete process.env.PTMST_DATA_ROOT;
    try {
      const root = await resolveDataRoot('shapes-shifted', undefined, cache);
      assert.equal(root, join(cache, 'generated'));
      const test = await loadSplit(root, 'shapes-shifted', 'test');
      assert.equal(test.images.length, 100);
      assert.equal(test.captions.length, 500);
      assert.ok(test.rawCaptions.some((c) => / on a dark background\.$/.test(c)));
      assert.ok(!test.rawCaptions.some((c) => /grey/.test(c)));
      await assert.rejects(loadSplit(root, 'shapes-shifted', 'train'), /dataset shapes-shifted has no split "train"; valid: test/);
      const shapes = await resolveDataRoot('shapes', undefined, cache);
      // the shapes set is byte for byte what it was before shapes-shifted existed (cached features stay valid)
      assert.equal(treeDigest(join(shapes, 'shapes')), 'bc7919df103e7565da2d4220d4d49991daad6e6fa68c805ef86955ba2fd11e8e');
      const dark = meanBrightness(join(root, 'shapes-shifted', 'images', 'test-0000.jpg'));
      const light = meanBrightness(join(shapes, 'shapes', 'images', 'test-0000.jpg'));
      assert.ok(dark < 100 && light > 150, `mean brightness ${dark.toFixed(0)} (shifted) against ${light.toFixed(0)} (shapes)`);
    } finally {
      if (saved !== undefined) process.env.PTMST_DATA_ROOT = saved;
    }
  });
});
