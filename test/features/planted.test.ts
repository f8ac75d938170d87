import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSplit } from '../../src/data/registry';
import { featurePaths, loadFeatures } from '../../src/features/cache';
import { loadFeatureSet } from '../../src/features/feature-set';
import { PLANTED_DATASET, PLANTED_ENCODERS, writePlanted } from '../../src/features/planted';
import { CorruptFileError } from '../../src/store/safetensors';
import { runPool } from '../../src/util/pool';
import { tempDir } from '../helpers';

describe('features/planted: generated paired clusters in the cache format, shared with workers', function () {
  this.timeout(120_000);
  const dataRoot = tempDir();
  const cacheDir = tempDir();
  const opts = { dataRoot, cacheDir, pairs: 60, dImg: 12, dTxt: 5, clusters: 4, noise: 0.3, seed: 3, chunkBytes: 17 };
  const load = async (split: 'train' | 'val' | 'test') =>
    loadFeatureSet(cacheDir, await loadSplit(dataRoot, PLANTED_DATASET, split), PLANTED_ENCODERS.image, PLANTED_ENCODERS.text);

  before(async () => {
    const r = await writePlanted(opts);
    assert.deepEqual(r.splits, { train: 48, val: 6, test: 6 });
  });

  it('loads as CC3M splits in 17-byte chunks; each row is nearer its own cluster centre than any other', async () => {
    const set = await load('train');
    assert.equal(set.numImages, 48);
    assert.equal(set.numCaptions, 48);
    assert.ok(set.img.buffer instanceof SharedArrayBuffer && set.txt.buffer instanceof SharedArrayBuffer);
    for (const [data, dim] of [[set.img, 12], [set.txt, 5]] as const) {
      const centre = (c: number) =>
        Array.from({ length: dim }, (_, d) => [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11].filter((k) => k % 4 === c).reduce((s, k) => s + data[k * dim + d]!, 0) / 3);
      const centres = [0, 1, 2, 3].map(centre);
      let right = 0;
      for (let i = 12; i < 48; i++) {
        const dist = centres.map((m) => m.reduce((s, v, d) => s + (v - data[i * dim + d]!) ** 2, 0));
        if (dist.indexOf(Math.min(...dist)) === i % 4) right++;
      }
      assert.ok(right >= 34, `${right} of 36 rows nearest their own cluster (dim ${dim})`);
    }
    // the same seed gives the same bytes
    const again = tempDir();
    await writePlanted({ ...opts, dataRoot: tempDir(), cacheDir: again });
    const f = (dir: string) => readFileSync(featurePaths(dir, PLANTED_DATASET, 'val', 'text', PLANTED_ENCODERS.text).file);
    assert.ok(f(again).equals(f(cacheDir)));
  });

  it('worker threads share the loaded matrix: their writes are visible to the main thread (no copy)', async () => {
    const set = await load('val');
    const seen: { job: number; sharedBuffer: boolean }[] = [];
    await runPool(join(__dirname, 'planted-shared-worker.js'), [0, 1, 2, 3], 2, (m: (typeof seen)[number]) => void seen.push(m), set);
    assert.deepEqual(seen.sort((a, b) => a.job - b.job), [0, 1, 2, 3].map((job) => ({ job, sharedBuffer: true })));
    assert.deepEqual([0, 1, 2, 3].map((j) => set.img[j * set.dImg]), [0.5, 1.5, 2.5, 3.5]);
  });

  it('a flipped byte is still a checksum mismatch naming the file and its manifest', async () => {
    const p = featurePaths(cacheDir, PLANTED_DATASET, 'test', 'image', PLANTED_ENCODERS.image);
    const buf = readFileSync(p.file);
    buf[buf.length - 5] ^= 1;
    writeFileSync(p.file, buf);
    await assert.rejects(loadFeatures(p, { chunkBytes: 9 }), (e: unknown) => {
      assert.ok(e instanceof CorruptFileError);
      assert.match(e.message, /checksum mismatch with .*test\.image\.planted-img\.json/);
      assert.ok(e.message.includes(p.file));
      return true;
    });
  });
});
