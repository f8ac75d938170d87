import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf } from '../../src/backend';
import { prepareFeatureSets } from '../../src/features/load';
import { buildBuffer } from '../../src/trajectory/buffer';
import { readBuffer } from '../../src/trajectory/store';
import { CorruptFileError } from '../../src/store/safetensors';
import { sharedCache, tempDir } from '../helpers';

describe('trajectory/buffer on the shapes set', function () {
  this.timeout(600000);
  before(async () => {
    await ready(() => undefined);
    await prepareFeatureSets({ dataset: 'shapes', cacheDir: sharedCache() }, ['train', 'val', 'test']);
  });

  const config = (out: string, numExperts: number) => ({
    data: { dataset: 'shapes', cacheDir: sharedCache() },
    model: { dOut: 32 },
    buffer: { numExperts, epochs: 2, workers: 1 },
    out,
  });

  it('stores trajectories with manifest and checksums, and resumes at the next unfinished expert', async () => {
    const out = join(tempDir(), 'buf');
    const tensors = tf.memory().numTensors;
    const first = await buildBuffer(config(out, 1));
    assert.equal(first.trained, 1);
    assert.equal(tf.memory().numTensors, tensors, 'expert training disposes every tensor it creates');
    const second = await buildBuffer(config(out, 2));
    assert.equal(second.trained, 1, 'only the missing expert is trained');
    assert.deepEqual(second.manifest.experts.map((e) => e.index), [0, 1]);
    const { trajectories } = await readBuffer(out);
    assert.equal(trajectories[0]!.snapshots, 3);
    assert.equal(trajectories[0]!.retrieval.length, 3);
    assert.ok(trajectories[0]!.retrieval[2]!.rMean > trajectories[0]!.retrieval[0]!.rMean, 'the teacher learns');
    // a corrupted expert file is reported by name
    const f = join(out, 'expert-001.safetensors');
    const bytes = readFileSync(f);
    bytes[bytes.length - 5]! ^= 0xff;
    writeFileSync(f, bytes);
    await assert.rejects(readBuffer(out), (e: unknown) => e instanceof CorruptFileError && e.file === f);
  });

  it('refuses to extend a buffer made with another configuration', async () => {
    const out = join(tempDir(), 'buf');
    await buildBuffer(config(out, 1));
    await assert.rejects(buildBuffer({ ...config(out, 1), model: { dOut: 16 } }), /holds a buffer made with a different configuration/);
  });
});
