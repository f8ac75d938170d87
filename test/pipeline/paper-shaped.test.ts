import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { repro } from '../../src/pipeline/repro';
import { npyBytes, writeBytes, zipBytes } from '../features/array-files';
import { REPO, tempDir } from '../helpers';

/**
 * docs/usage.md "Bring your own data and features", step by step, on a Flickr30k-shaped fixture: the release's BLIP
 * annotation JSONs, its text-embedding npz (key bert_test_embed), image features as .npy, and no image file at all;
 * then `repro` with configs/flickr30k-main.json at small counts. Rows share planted clusters (an image and its
 * captions around one centre), so the full-data teacher retrieves well above chance.
 */
describe('the paper\'s setting on imported features: a Flickr30k-shaped fixture through import-features and repro', function () {
  this.timeout(600_000);
  const counts = { train: 40, val: 10, test: 10 } as const;
  const dImg = 12;
  const dTxt = 8;
  const clusters = 10;

  it('imports every split with the documented commands and runs flickr30k-main with no image files', async () => {
    const root = tempDir();
    const feats = tempDir();
    const workspace = tempDir();
    // deterministic noise in [-1, 1] (no generator needed: the test only wants spread around each centre)
    let n = 0;
    const gauss = () => Math.sin(12.9898 * ++n) * 2 - Math.sin(78.233 * n);
    const centres = Array.from({ length: clusters }, () => Array.from({ length: Math.max(dImg, dTxt) }, gauss));
    for (const split of ['train', 'val', 'test'] as const) {
      const entries: unknown[] = [];
      const img: number[] = [];
      const txt: number[] = [];
      for (let i = 0; i < counts[split]; i++) {
        const image = `flickr30k-images/${split}${i}.jpg`;
        const c = centres[i % clusters]!;
        img.push(...Array.from({ length: dImg }, (_, k) => c[k]! + 0.3 * gauss()));
        for (let j = 0; j < 2; j++) txt.push(...Array.from({ length: dTxt }, (_, k) => c[k]! + 0.3 * gauss()));
        const caps = [`a photo ${i} of kind ${i % clusters}`, `kind ${i % clusters} photo number ${i}`];
        if (split === 'train') for (const caption of caps) entries.push({ image, caption, image_id: String(i) });
        else entries.push({ image, caption: caps });
      }
      writeBytes(join(root, 'flickr30k', 'annotations', `flickr30k_${split}.json`), Buffer.from(JSON.stringify(entries)));
      writeBytes(join(feats, `flickr30k_${split}_nfnet.npy`), npyBytes(img, [counts[split], dImg]));
      const npz = split === 'train' ? 'flickr_bert_train_text_embed.npz' : split === 'test' ? 'flickr_bert_text_embed.npz' : 'flickr_bert_val_text_embed.npz';
      writeBytes(join(feats, 'npz', npz), zipBytes([{ name: 'bert_test_embed.npy', data: npyBytes(txt, [2 * counts[split], dTxt]), deflate: true }]));
    }
    const cli = (...args: string[]) => {
      const r = spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), ...args, '--data-root', root, '--workspace', workspace, '--no-progress'], { encoding: 'utf8' });
      assert.equal(r.status, 0, `${args.join(' ')}: ${r.stderr}`);
    };
    for (const s of ['train', 'val', 'test'] as const) {
      cli('import-features', '--dataset', 'flickr30k', '--split', s, '--modality', 'image', '--file', join(feats, `flickr30k_${s}_nfnet.npy`), '--encoder', 'nfnet-l0', '--provenance', 'planted fixture');
      const npz = s === 'train' ? 'flickr_bert_train_text_embed.npz' : s === 'test' ? 'flickr_bert_text_embed.npz' : 'flickr_bert_val_text_embed.npz';
      cli('import-features', '--dataset', 'flickr30k', '--split', s, '--modality', 'text', '--file', join(feats, 'npz', npz), '--key', 'bert_test_embed', '--encoder', 'bert-base');
    }
    assert.ok(!existsSync(join(root, 'flickr30k', 'flickr30k-images')), 'no image file exists');
    // configs/flickr30k-main.json as shipped, its counts cut to seconds
    const shipped = JSON.parse(readFileSync(join(REPO, 'configs', 'flickr30k-main.json'), 'utf8')) as Record<string, unknown> & { data: object };
    const result = await repro({
      ...shipped,
      data: { ...shipped.data, dataRoot: root },
      workspace,
      model: { dOut: 16 },
      buffer: { numExperts: 2, epochs: 8, batchSize: 16 },
      eval: { runs: 1, epochs: 10 },
      // the shipped tuning cut to one method's two points at 10 pairs
      tuning: { ...(shipped.tuning as object), budget: 10, grids: { 'ptm-st': { lrX: [30, 100] } }, overrides: { iterations: 2 }, eval: { runs: 1 } },
      methods: [
        { name: 'full', kind: 'full' },
        { name: 'random-10', kind: 'coreset', size: 10 },
        { name: 'ptm-st-10', kind: 'method', method: 'ptm-st', budget: 10, seeds: [0], overrides: { iterations: 2 } },
      ],
    });
    assert.deepEqual(Object.keys(result.tuning!.methods), ['ptm-st']);
    assert.ok(existsSync(join(workspace, 'figures', 'flickr30k-main-tuning.json')), 'the tuning is its own results file');
    const byName = new Map(result.methods.map((m) => [m.name, m]));
    assert.deepEqual([...byName.keys()], ['full', 'random-10', 'ptm-st-10']);
    // 10 test images, 20 captions: chance IR@10 is 100%, so check IR@1 of the teacher against chance (10%)
    const ir1 = byName.get('full')!.selections.final.ir1.mean;
    assert.ok(ir1 > 30, `full-data teacher IR@1 ${ir1} on planted clusters`);
    for (const m of result.methods) assert.ok(Number.isFinite(m.selections.final.rMean.mean), `${m.name}: r_mean ${m.selections.final.rMean.mean}`);
    assert.deepEqual([byName.get('ptm-st-10')!.pairs, byName.get('random-10')!.pairs], [9, 10]);
    assert.ok(existsSync(result.json));
  });
});
