import { strict as assert } from 'node:assert';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf } from '../../src/backend';
import { IMAGE_ENCODERS, lookup } from '../../src/encoders/registry';
import type { ImageEncoder } from '../../src/encoders/types';
import { realData } from '../helpers';

describe('encoders/registry', () => {
  it('names an unknown encoder and lists the valid ones', () => {
    assert.throws(() => lookup(IMAGE_ENCODERS, 'image encoder', 'clip'), /unknown image encoder "clip"; valid: mobilenet_v2, inception_v3/);
    assert.throws(() => lookup(IMAGE_ENCODERS, 'image encoder', 'constructor'), /unknown image encoder "constructor"/);
  });
});

describe('encoders/mobilenet_v2 (nsfwjs)', function () {
  this.timeout(120000);
  let enc: ImageEncoder;
  let files: string[];
  before(async function () {
    const root = realData(this);
    await ready(() => undefined);
    enc = await IMAGE_ENCODERS.mobilenet_v2!.load();
    const dir = join(root, 'flickr8k', 'images');
    files = readdirSync(dir).sort().slice(0, 3).map((f) => join(dir, f));
  });
  after(() => enc?.dispose());

  it('gives 1280-d pooled features, identical for the same image twice, distinct for different ones', async () => {
    const before = tf.memory().numTensors;
    const out = await enc.encode([files[0]!, files[1]!, files[0]!]);
    assert.equal(out.length, 3 * 1280);
    const row = (i: number) => out.subarray(i * 1280, (i + 1) * 1280);
    assert.deepEqual(row(0), row(2));
    assert.notDeepEqual(row(0), row(1));
    assert.ok(row(0).every((x) => Number.isFinite(x) && x >= 0), 'pooled ReLU6 features are finite and >= 0');
    assert.ok(row(0).some((x) => x > 0));
    // batch composition does not change a row
    const alone = await enc.encode([files[1]!]);
    for (let k = 0; k < 1280; k++) assert.ok(Math.abs(alone[k]! - row(1)[k]!) < 1e-4);
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
  });

  it('names an image that is not a JPEG', async function () {
    await assert.rejects(enc.encode([join(realData(this), 'flickr8k', 'captions.txt')]), /captions\.txt: not a decodable JPEG/);
  });
});
