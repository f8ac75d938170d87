import { strict as assert } from 'node:assert';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { annotationPath, readKarpathyJson } from '../../src/data/karpathy';
import { tempDir } from '../helpers';

describe('data/karpathy', () => {
  const dir = tempDir();
  const train = join(dir, 'flickr30k_train.json');
  const test = join(dir, 'flickr30k_test.json');
  writeFileSync(
    train,
    JSON.stringify([
      { image: 'flickr30k-images/1.jpg', caption: 'Two dogs play.', image_id: '1' },
      { image: 'flickr30k-images/2.jpg', caption: 'A red car', image_id: '2' },
      { image: 'flickr30k-images/1.jpg', caption: 'Dogs, playing!', image_id: '1' },
    ]),
  );
  writeFileSync(
    test,
    JSON.stringify([
      { image: 'flickr30k-images/7.jpg', caption: ['a', 'b', 'c', 'd', 'e'] },
      { image: 'flickr30k-images/8.jpg', caption: ['f', 'g', 'h', 'i', 'j'] },
    ]),
  );

  it('groups one-caption train entries by image, in first-appearance order', async () => {
    const s = await readKarpathyJson('flickr30k', 'train', train, dir);
    assert.deepEqual(s.images, ['flickr30k-images/1.jpg', 'flickr30k-images/2.jpg']);
    assert.deepEqual(s.captions, ['two dogs play', 'dogs playing', 'a red car']);
    assert.deepEqual([...s.captionToImage], [0, 0, 1]);
    assert.deepEqual(s.imageToCaptions, [[0, 1], [2]]);
  });

  it('reads val/test entries with five captions each', async () => {
    const s = await readKarpathyJson('flickr30k', 'test', test, dir);
    assert.equal(s.images.length, 2);
    assert.equal(s.captions.length, 10);
    assert.deepEqual(s.imageToCaptions[1], [5, 6, 7, 8, 9]);
    assert.equal(s.captionToImage[7], 1);
  });

  it('names the file and the entry of a malformed annotation', async () => {
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, JSON.stringify([{ image: 'x.jpg', caption: 'ok' }, { image: 'y.jpg' }]));
    await assert.rejects(readKarpathyJson('f', 'train', bad, dir), /bad\.json: entry 1\.caption/);
    writeFileSync(bad, '{not json');
    await assert.rejects(readKarpathyJson('f', 'train', bad, dir), /bad\.json: not valid JSON/);
    await assert.rejects(readKarpathyJson('f', 'train', join(dir, 'none.json'), dir), /none\.json: annotation file not found/);
  });
});

describe('data/karpathy: the annotation folder', () => {
  it('finds the JSONs in annotations/, Annotation/ or the dataset folder itself, in that order', async () => {
    const dir = tempDir();
    assert.equal(annotationPath(dir, 'x.json'), join(dir, 'annotations', 'x.json'));
    writeFileSync(join(dir, 'x.json'), '[]');
    assert.equal(annotationPath(dir, 'x.json'), join(dir, '.', 'x.json'));
    mkdirSync(join(dir, 'Annotation'));
    writeFileSync(join(dir, 'Annotation', 'x.json'), '[]');
    assert.equal(annotationPath(dir, 'x.json'), join(dir, 'Annotation', 'x.json'));
  });
});
