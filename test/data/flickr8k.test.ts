import { strict as assert } from 'node:assert';
import { join } from 'node:path';
import { preprocessCaption } from '../../src/data/dataset';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { DatasetError } from '../../src/errors';
import { parseCaptionsCsv, readCaptionsFolder, readFlickr8k } from '../../src/data/flickr8k';
import { loadSplit } from '../../src/data/registry';
import { realData, tempDir } from '../helpers';

describe('data/flickr8k', () => {
  it('parses quoted CSV captions holding commas and quotes', () => {
    const text = [
      'image,caption',
      'a.jpg,A dog runs .',
      'a.jpg,"A dog , brown and white , runs ."',
      'b.jpg,"She said ""hi"" , then left"',
      '',
    ].join('\n');
    const m = parseCaptionsCsv(text, 'mem.csv');
    assert.deepEqual([...m.keys()], ['a.jpg', 'b.jpg']);
    assert.deepEqual(m.get('a.jpg'), ['A dog runs .', 'A dog , brown and white , runs .']);
    assert.deepEqual(m.get('b.jpg'), ['She said "hi" , then left']);
  });

  it('rejects a CSV with the wrong header, naming the file', () => {
    assert.throws(() => parseCaptionsCsv('img,text\na,b\n', 'x/captions.txt'), /x\/captions\.txt: expected the header/);
  });

  it('preprocesses captions: lower case, no punctuation, at most 30 words', () => {
    assert.equal(preprocessCaption('A Dog, running!  "Fast".'), 'a dog running fast');
    assert.equal(preprocessCaption("The man's hat"), 'the man s hat');
    const long = Array.from({ length: 40 }, (_, i) => `w${i}`).join(' ');
    assert.equal(preprocessCaption(long).split(' ').length, 30);
    assert.equal(preprocessCaption(long).split(' ')[29], 'w29');
  });

  it('reads the official split: 6,000/1,000/1,000 listed, 5,999 train present, 5 captions each', async function () {
    const root = realData(this);
    const [train, val, test, rest] = await Promise.all(
      (['train', 'val', 'test', 'rest'] as const).map((s) => readFlickr8k(join(root, 'flickr8k'), s)),
    );
    assert.equal(train!.images.length, 5999);
    assert.equal(val!.images.length, 1000);
    assert.equal(test!.images.length, 1000);
    assert.equal(rest!.images.length, 91);
    assert.equal(train!.images.length + val!.images.length + test!.images.length + rest!.images.length, 8090);
    assert.ok(!train!.images.includes('3050606344_af711c726c.jpg'));
    assert.equal(test!.captions.length, 5000);
    assert.equal(train!.captions.length, 5999 * 5);
    // the retrieval maps are each other's inverse
    test!.imageToCaptions.forEach((caps, i) => {
      assert.equal(caps.length, 5);
      for (const c of caps) assert.equal(test!.captionToImage[c], i);
    });
  });

  it('refuses a split whose listed images are missing (an unfinished copy), naming them', async () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'images'));
    writeFileSync(join(dir, 'captions.txt'), 'image,caption\na.jpg,one\nb.jpg,two\nc.jpg,three\n');
    for (const f of ['a.jpg', 'b.jpg']) writeFileSync(join(dir, 'images', f), '');
    writeFileSync(join(dir, 'train.txt'), 'a.jpg\nb.jpg\nc.jpg\n');
    writeFileSync(join(dir, 'val.txt'), 'a.jpg\n');
    writeFileSync(join(dir, 'test.txt'), 'b.jpg\n');
    const files = { train: 'train.txt', val: 'val.txt', test: 'test.txt' };
    await assert.rejects(readCaptionsFolder('toy', dir, 'train', files), (e: unknown) =>
      e instanceof DatasetError && e.file === join(dir, 'train.txt') && /1 listed image\(s\) of split train are missing: c\.jpg \(no image file\)/.test(e.message),
    );
    // a dataset's documented gaps are skipped, nothing else
    assert.equal((await readCaptionsFolder('toy', dir, 'train', files, ['c.jpg'])).images.length, 2);
    rmSync(dir, { recursive: true });
  });

  it('names the missing folder when the data root is wrong', async () => {
    await assert.rejects(loadSplit('/nonexistent-root', 'flickr8k', 'test'), /nonexistent-root\/flickr8k: dataset folder not found/);
    await assert.rejects(loadSplit(tempDir(), 'flickr9k', 'test'), /unknown dataset "flickr9k"; valid: flickr8k/);
  });
});
