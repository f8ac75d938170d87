import { strict as assert } from 'node:assert';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CC3M_HELD_OUT, cc3mSplitSizes, readCc3m } from '../../src/data/cc3m';
import type { ImageCaptionSplit } from '../../src/data/dataset';
import { loadSplit } from '../../src/data/registry';
import { ConfigError, DatasetError } from '../../src/errors';
import { REPO, tempDir } from '../helpers';

const ids = Array.from({ length: 10 }, (_, i) => `GCC_train_00000${i}`);
const captionOf = (i: number) => (i === 4 ? 'A dog, running on the beach!' : `Caption number ${i} .`);

/** One LLaVA chat.json record, as in LLaVA-CC3M-Pretrain-595K. */
const chatRecord = (i: number) => ({
  id: ids[i],
  image: `${ids[i]}.jpg`,
  conversations: [
    { from: 'human', value: 'Give a brief description of the image.\n<image>' },
    { from: 'gpt', value: captionOf(i) },
  ],
});
const metadataRecord = (i: number) => ({ id: ids[i], image: `${ids[i]}.jpg`, caption: captionOf(i), blip_caption: 'ignored' });

/** A cc3m folder under a fresh data root holding `files` (name → JSON value). */
function cc3mRoot(files: Record<string, unknown>): { root: string; dir: string } {
  const root = tempDir('cc3m-');
  const dir = join(root, 'cc3m');
  mkdirSync(join(dir, 'images'), { recursive: true });
  for (const [name, value] of Object.entries(files)) writeFileSync(join(dir, name), JSON.stringify(value));
  return { root, dir };
}

/** The split's image, caption and link arrays, for comparing two readings. */
const shape = (s: ImageCaptionSplit) => ({
  images: s.images,
  captions: s.captions,
  rawCaptions: s.rawCaptions,
  captionToImage: [...s.captionToImage],
  imageToCaptions: s.imageToCaptions,
});

describe('data/cc3m', () => {
  const chat = Array.from({ length: 10 }, (_, i) => chatRecord(i));

  it('reads chat.json: the first gpt turn is the caption, one per image; the holdout split 8/1/1', async () => {
    const { root, dir } = cc3mRoot({ 'chat.json': chat });
    const [train, val, test] = await Promise.all((['train', 'val', 'test'] as const).map((s) => loadSplit(root, 'cc3m', s, { cc3mSplit: 'holdout' })));
    assert.deepEqual(train!.images, ids.slice(0, 8).map((id) => `${id}.jpg`));
    assert.deepEqual(val!.images, [`${ids[8]}.jpg`]);
    assert.deepEqual(test!.images, [`${ids[9]}.jpg`]);
    assert.equal(train!.imageDir, join(dir, 'images'));
    assert.equal(train!.dataset, 'cc3m');
    assert.equal(train!.split, 'train');
    assert.equal(train!.rawCaptions[4], 'A dog, running on the beach!');
    assert.equal(train!.captions[4], 'a dog running on the beach');
    assert.deepEqual(test!.captions, ['caption number 9']);
    assert.deepEqual([...train!.captionToImage], [0, 1, 2, 3, 4, 5, 6, 7]);
    assert.deepEqual(train!.imageToCaptions, [[0], [1], [2], [3], [4], [5], [6], [7]]);
    // a later gpt turn is not the caption
    const twoTurns = { ...chatRecord(0), conversations: [...chatRecord(0).conversations, { from: 'gpt', value: 'second answer' }] };
    const second = cc3mRoot({ 'chat.json': [twoTurns, ...chat.slice(1)] });
    assert.equal((await readCc3m(second.dir, 'train')).rawCaptions[0], captionOf(0));
  });

  it('holds out min(1000, ⌊N/10⌋) records for val and for test, the last ones in record order', () => {
    assert.deepEqual(cc3mSplitSizes(10), { train: 8, val: 1, test: 1 });
    assert.deepEqual(cc3mSplitSizes(9), { train: 9, val: 0, test: 0 });
    assert.deepEqual(cc3mSplitSizes(25), { train: 21, val: 2, test: 2 });
    assert.deepEqual(cc3mSplitSizes(595375), { train: 593375, val: CC3M_HELD_OUT, test: CC3M_HELD_OUT });
  });

  it('reads metadata.json to the same splits as chat.json; chat.json wins when both are present', async () => {
    const fromChat = cc3mRoot({ 'chat.json': chat });
    const fromMeta = cc3mRoot({ 'metadata.json': Array.from({ length: 10 }, (_, i) => metadataRecord(i)) });
    for (const split of ['train', 'val', 'test'] as const) {
      assert.deepEqual(shape(await readCc3m(fromMeta.dir, split)), shape(await readCc3m(fromChat.dir, split)));
    }
    const both = cc3mRoot({ 'chat.json': chat, 'metadata.json': [metadataRecord(0)] });
    assert.equal((await readCc3m(both.dir, 'train')).images.length, 6); // 3:1:1 of chat.json's 10
  });

  it('takes the splits from splits.json when present, each in its list order', async () => {
    const splits = { train: [ids[5], ids[0], ids[1]], val: [ids[2]], test: [ids[7], ids[3]] };
    const { dir } = cc3mRoot({ 'chat.json': chat, 'splits.json': splits });
    const test = await readCc3m(dir, 'test');
    assert.deepEqual(test.images, [`${ids[7]}.jpg`, `${ids[3]}.jpg`]);
    assert.deepEqual(test.captions, ['caption number 7', 'caption number 3']);
    assert.deepEqual(test.imageToCaptions, [[0], [1]]);
    assert.deepEqual((await readCc3m(dir, 'train')).images, [`${ids[5]}.jpg`, `${ids[0]}.jpg`, `${ids[1]}.jpg`]);
  });

  it('refuses a splits.json naming an unknown id, an id in two splits, or missing a split', async () => {
    const cases: [unknown, string][] = [
      [{ train: ['nope'], val: [], test: [] }, 'split train: id "nope" is not in chat.json'],
      [{ train: [ids[0]], val: [], test: [ids[0]] }, `id "${ids[0]}" is listed in train and in test`],
      [{ train: [ids[0]], test: [] }, 'expected { train: [ids], val: [ids], test: [ids] }: val: '],
    ];
    for (const [splits, message] of cases) {
      const { dir } = cc3mRoot({ 'chat.json': chat, 'splits.json': splits });
      await assert.rejects(readCc3m(dir, 'test'), (e: unknown) => {
        assert.ok(e instanceof DatasetError);
        assert.equal(e.file, join(dir, 'splits.json'));
        assert.ok(e.message.startsWith(`${join(dir, 'splits.json')}: ${message}`), e.message);
        return true;
      });
    }
  });

  it('refuses each malformed record, naming the file and the entry', async () => {
    const noGpt = { ...chatRecord(3), conversations: [chatRecord(3).conversations[0]] };
    const cases: [string, unknown[], string][] = [
      ['chat.json', [...chat.slice(0, 2), 'oops', ...chat.slice(3)], 'entry 2: not an object'],
      ['chat.json', [chatRecord(0), { ...chatRecord(1), id: 7 }], 'entry 1: no string "id"'],
      ['chat.json', [...chat.slice(0, 3), { ...chatRecord(3), image: undefined }], `entry 3 (id "${ids[3]}"): missing "image"`],
      ['chat.json', [...chat.slice(0, 3), noGpt], `entry 3 (id "${ids[3]}"): no "gpt" turn`],
      ['chat.json', [{ ...chatRecord(0), conversations: 'hi' }], `entry 0 (id "${ids[0]}"): no "conversations" list`],
      [
        'chat.json',
        [chatRecord(0), { ...chatRecord(1), conversations: [{ from: 'gpt', value: '  ' }] }],
        `entry 1 (id "${ids[1]}"): empty caption`,
      ],
      [
        'chat.json',
        [chatRecord(0), { ...chatRecord(1), conversations: [{ from: 'gpt', value: 3 }] }],
        `entry 1 (id "${ids[1]}"): "gpt" turn has no string "value"`,
      ],
      ['chat.json', [chatRecord(0), chatRecord(1), { ...chatRecord(2), id: ids[1] }], `entry 2 (id "${ids[1]}"): duplicate id (also entry 1)`],
      [
        'chat.json',
        [chatRecord(0), { ...chatRecord(1), image: `${ids[0]}.jpg` }],
        `entry 1 (id "${ids[1]}"): duplicate image "${ids[0]}.jpg" (also entry 0)`,
      ],
      ['metadata.json', [metadataRecord(0), { ...metadataRecord(1), caption: '' }], `entry 1 (id "${ids[1]}"): empty caption`],
      ['metadata.json', [{ id: ids[0], image: 'a.jpg' }], `entry 0 (id "${ids[0]}"): no string "caption"`],
    ];
    for (const [name, records, message] of cases) {
      const { dir } = cc3mRoot({ [name]: records });
      const file = join(dir, name);
      await assert.rejects(readCc3m(dir, 'train'), (e: unknown) => {
        assert.ok(e instanceof DatasetError);
        assert.equal(e.file, file);
        assert.equal(e.message, `${file}: ${message}`);
        return true;
      });
    }
  });

  it('names a missing annotation file, a non-list and invalid JSON', async () => {
    const { dir } = cc3mRoot({});
    await assert.rejects(
      readCc3m(dir, 'test'),
      new DatasetError(join(dir, 'chat.json'), 'not found (nor metadata.json): the LLaVA-CC3M-Pretrain-595K annotations'),
    );
    const notList = cc3mRoot({ 'chat.json': { id: 'x' } });
    await assert.rejects(readCc3m(notList.dir, 'test'), new DatasetError(join(notList.dir, 'chat.json'), 'expected a JSON list of records'));
    const bad = cc3mRoot({});
    writeFileSync(join(bad.dir, 'chat.json'), '[{"id": ');
    await assert.rejects(readCc3m(bad.dir, 'test'), (e: unknown) => e instanceof DatasetError && /chat\.json: not valid JSON/.test(e.message));
  });
});

describe('data/captions (a captions.txt folder)', () => {
  /** A data root holding `<folder>/captions.txt`, `images/` and the given split lists. */
  function captionsRoot(folder: string, lists: Record<string, string[]>): string {
    const root = tempDir('captions-');
    const dir = join(root, folder);
    mkdirSync(join(dir, 'images'), { recursive: true });
    writeFileSync(join(dir, 'captions.txt'), 'image,caption\na.jpg,"One, two"\na.jpg,Three\nb.jpg,Four\nc.jpg,Five\n');
    for (const f of ['a.jpg', 'b.jpg', 'c.jpg']) writeFileSync(join(dir, 'images', f), '');
    for (const [name, images] of Object.entries(lists)) writeFileSync(join(dir, name), images.map((n) => `${n}\n`).join(''));
    return root;
  }

  it('with no split lists puts every image in test, in captions.txt order; train is an error', async () => {
    const root = captionsRoot('mine', {});
    const test = await loadSplit(root, 'captions:mine', 'test');
    assert.equal(test.dataset, 'captions:mine');
    assert.deepEqual(test.images, ['a.jpg', 'b.jpg', 'c.jpg']);
    assert.deepEqual(test.captions, ['one two', 'three', 'four', 'five']);
    assert.deepEqual([...test.captionToImage], [0, 0, 1, 2]);
    assert.deepEqual(test.imageToCaptions, [[0, 1], [2], [3]]);
    assert.equal(test.imageDir, join(root, 'mine', 'images'));
    await assert.rejects(
      loadSplit(root, 'captions:mine', 'train'),
      new DatasetError(join(root, 'mine'), 'no split lists (train.txt, val.txt, test.txt): every image is in split test, there is no split train'),
    );
  });

  it('with the three lists reads each split from its list; some lists but not all is an error', async () => {
    const root = captionsRoot('mine', { 'train.txt': ['c.jpg', 'a.jpg'], 'val.txt': [], 'test.txt': ['b.jpg'] });
    assert.deepEqual((await loadSplit(root, 'captions:mine', 'train')).images, ['c.jpg', 'a.jpg']);
    assert.deepEqual((await loadSplit(root, 'captions:mine', 'test')).captions, ['four']);
    assert.equal((await loadSplit(root, 'captions:mine', 'val')).images.length, 0);
    const partial = captionsRoot('mine', { 'train.txt': ['a.jpg'] });
    await assert.rejects(loadSplit(partial, 'captions:mine', 'test'), (e: unknown) =>
      e instanceof DatasetError && e.file === join(partial, 'mine', 'val.txt') && /give all three split lists/.test(e.message),
    );
  });

  it('refuses a captions: name that is not one folder, and lists the form among the valid names', async () => {
    for (const name of ['captions:', 'captions:..', 'captions:a/b']) {
      await assert.rejects(loadSplit('/tmp', name, 'test'), ConfigError);
    }
    await assert.rejects(loadSplit('/tmp', 'flickr9k', 'test'), /valid: flickr8k, .*cc3m, coco-mini, captions:<folder>/);
  });

  it('reads coco-mini: 407 images, 2,035 captions, all in test', async function () {
    const root = process.env.PTMST_DATA_ROOT || resolve(REPO, '..', 'shared', 'data');
    if (!existsSync(join(root, 'coco-mini', 'captions.txt'))) this.skip();
    const test = await loadSplit(root, 'coco-mini', 'test');
    assert.equal(test.images.length, 407);
    assert.equal(test.captions.length, 2035);
    assert.equal(test.captionToImage.length, 2035);
    test.imageToCaptions.forEach((caps, i) => {
      assert.equal(caps.length, 5);
      for (const c of caps) assert.equal(test.captionToImage[c], i);
    });
    await assert.rejects(loadSplit(root, 'coco-mini', 'train'), /dataset coco-mini has no split "train"; valid: test/);
  });
});

describe('data/cc3m: the paper split, the release layout, the test cap', () => {
  const chat = Array.from({ length: 10 }, (_, i) => chatRecord(i));

  it('splits chat.json 3:1:1 by record order by default: 6/2/2 of 10 records', async () => {
    const { dir } = cc3mRoot({ 'chat.json': chat });
    assert.deepEqual((await readCc3m(dir, 'train')).images, ids.slice(0, 6).map((id) => `${id}.jpg`));
    assert.deepEqual((await readCc3m(dir, 'val')).images, ids.slice(6, 8).map((id) => `${id}.jpg`));
    assert.deepEqual((await readCc3m(dir, 'test')).images, ids.slice(8, 10).map((id) => `${id}.jpg`));
    assert.deepEqual(cc3mSplitSizes(595375, '3:1:1'), { train: 357225, val: 119075, test: 119075 });
    assert.deepEqual(cc3mSplitSizes(10, '3:1:1'), { train: 6, val: 2, test: 2 });
  });

  it('keeps the first cc3mTestLimit test entries (null: all); train is never capped', async () => {
    const { dir } = cc3mRoot({ 'chat.json': chat });
    assert.deepEqual((await readCc3m(dir, 'test', { cc3mTestLimit: 1 })).images, [`${ids[8]}.jpg`]);
    assert.equal((await readCc3m(dir, 'test', { cc3mTestLimit: null })).images.length, 2);
    assert.equal((await readCc3m(dir, 'train', { cc3mTestLimit: 1 })).images.length, 6);
    await assert.rejects(readCc3m(dir, 'test', { cc3mTestLimit: 0 }), /data\.cc3mTestLimit/);
  });

  it("reads the release's cc3m_captions_{train,val,test}.json (val/test caption a single string), capped test", async () => {
    const entries = (from: number, to: number, train: boolean) =>
      ids.slice(from, to).map((id, k) => ({ image: `images/${id}.jpg`, caption: captionOf(from + k), ...(train ? { image_id: id } : {}) }));
    const { dir } = cc3mRoot({});
    mkdirSync(join(dir, 'annotations'));
    writeFileSync(join(dir, 'annotations', 'cc3m_captions_train.json'), JSON.stringify(entries(0, 6, true)));
    writeFileSync(join(dir, 'annotations', 'cc3m_captions_val.json'), JSON.stringify(entries(6, 8, false)));
    writeFileSync(join(dir, 'annotations', 'cc3m_captions_test.json'), JSON.stringify(entries(8, 10, false)));
    const train = await readCc3m(dir, 'train');
    assert.equal(train.images.length, 6);
    assert.equal(train.captions[4], 'a dog running on the beach');
    assert.deepEqual([...train.captionToImage], [0, 1, 2, 3, 4, 5]);
    const test = await readCc3m(dir, 'test', { cc3mTestLimit: 1 });
    assert.deepEqual(test.images, [`images/${ids[8]}.jpg`]);
    assert.deepEqual(test.captions, ['caption number 8']);
  });
});
