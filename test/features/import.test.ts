import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { ready } from '../../src/backend';
import { probeArray, readArray } from '../../src/features/array-file';
import { loadFeatures } from '../../src/features/cache';
import { importFeatures } from '../../src/features/import';
import { prepareFeatureSets } from '../../src/features/load';
import { encodeSafetensors } from '../../src/store/safetensors';
import { buildBuffer } from '../../src/trajectory/buffer';
import { REPO, onlyWhere, tempDir } from '../helpers';
import { karpathyFixture, npyBytes, npyHeader, writeBytes, zipBytes } from './array-files';

const VALUES = [1.5, -2, 0.25, 3, 1024, -0.125]; // exact in float16, float32, float64
const read = async (file: string, key?: string, chunkBytes = 7) => readArray(await probeArray(file, key), { chunkBytes });
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('features: reading .npy, .npz and .safetensors made elsewhere', () => {
  for (const descr of ['<f4', '<f2', '<f8'] as const) {
    for (const version of [1, 2, 3] as const) {
      it(`.npy ${descr} v${version}.0, read in 7-byte chunks, to float32`, async () => {
        const bytes = npyBytes(VALUES, [2, 3], descr, version);
        const f = writeBytes(join(tempDir(), 'x.npy'), bytes);
        const a = await probeArray(f);
        assert.deepEqual([a.rows, a.dim, a.dtype], [2, 3, descr.slice(1)]);
        const r = await readArray(a, { chunkBytes: 7 });
        assert.deepEqual(Array.from(r.data), VALUES);
        assert.equal(r.sha256, sha(bytes));
        assert.equal(r.bytes, bytes.length);
      });
    }
  }

  it('float16 subnormals, signed zero and the largest value', async () => {
    const bits = new Uint16Array([0x0001, 0x8000, 0x7bff, 0x3c00]); // 2^-24, -0, 65504, 1
    const f = writeBytes(join(tempDir(), 'h.npy'), Buffer.concat([npyHeader('<f2', [2, 2]), Buffer.from(bits.buffer)]));
    const r = await read(f);
    assert.deepEqual(Array.from(r.data), [2 ** -24, -0, 65504, 1]);
    assert.ok(Object.is(r.data[1], -0));
  });

  it('float64 values round to float32', async () => {
    const f = writeBytes(join(tempDir(), 'd.npy'), npyBytes([0.1, 1 / 3], [1, 2], '<f8'));
    assert.deepEqual(Array.from((await read(f)).data), [Math.fround(0.1), Math.fround(1 / 3)]);
  });

  it('.npz: stored and deflated members, the only array by default, others by --key', async () => {
    const dir = tempDir();
    const one = writeBytes(join(dir, 'one.npz'), zipBytes([{ name: 'bert_test_embed.npy', data: npyBytes(VALUES, [3, 2]), deflate: true }]));
    assert.deepEqual(Array.from((await read(one)).data), VALUES);
    assert.equal((await probeArray(one)).key, 'bert_test_embed');
    const two = writeBytes(
      join(dir, 'two.npz'),
      zipBytes([
        { name: 'arr_0.npy', data: npyBytes([9, 9], [1, 2], '<f8') },
        { name: 'bert_test_embed.npy', data: npyBytes(VALUES, [2, 3], '<f2'), deflate: false },
      ]),
    );
    await assert.rejects(probeArray(two), /holds 2 arrays \(arr_0, bert_test_embed\): pass --key NAME/);
    assert.deepEqual(Array.from((await read(two, 'bert_test_embed')).data), VALUES);
    assert.deepEqual(Array.from((await read(two, 'arr_0', 3)).data), [9, 9]);
    await assert.rejects(probeArray(two, 'nope'), /--key nope: .* has no such array; it has arr_0, bert_test_embed/);
    const r = await read(two, 'arr_0');
    assert.equal(r.sha256, sha(readFileSync(two)), 'the whole .npz file is hashed');
  });

  it('.npz in zip64 form (sizes and offsets in zip64 extra fields and records, as for members beyond 4 GiB)', async () => {
    const f = writeBytes(
      join(tempDir(), 'z64.npz'),
      zipBytes(
        [
          { name: 'first.npy', data: npyBytes([7, 8], [1, 2]), deflate: true },
          { name: 'bert_test_embed.npy', data: npyBytes(VALUES, [2, 3], '<f8') },
        ],
        true,
      ),
    );
    assert.deepEqual(Array.from((await read(f, 'bert_test_embed')).data), VALUES);
    assert.deepEqual(Array.from((await read(f, 'first')).data), [7, 8]);
  });

  it('.safetensors: F32 with ptmst digest (checked), F64 without, F16 by hand', async () => {
    const dir = tempDir();
    const f32 = writeBytes(join(dir, 'a.safetensors'), encodeSafetensors({ features: { shape: [2, 3], data: new Float32Array(VALUES) } }, { m: 'x' }));
    assert.deepEqual(Array.from((await read(f32)).data), VALUES);
    const edited = Buffer.from(readFileSync(f32));
    edited[edited.length - 1] ^= 1;
    await assert.rejects(read(writeBytes(join(dir, 'e.safetensors'), edited)), /ptmst\.digest mismatch/);
    const json = (h: object) => {
      const s = JSON.stringify(h);
      const n = Buffer.alloc(8);
      n.writeBigUInt64LE(BigInt(s.length));
      return Buffer.concat([n, Buffer.from(s)]);
    };
    const f64 = writeBytes(join(dir, 'b.safetensors'), Buffer.concat([json({ emb: { dtype: 'F64', shape: [3, 2], data_offsets: [0, 48] } }), Buffer.from(new Float64Array(VALUES).buffer)]));
    assert.deepEqual(Array.from((await read(f64)).data), VALUES);
    const half = new Uint16Array([0x3e00, 0xc000]); // 1.5, -2
    const f16 = writeBytes(
      join(dir, 'c.safetensors'),
      Buffer.concat([json({ other: { dtype: 'F32', shape: [1, 1], data_offsets: [0, 4] }, emb: { dtype: 'F16', shape: [1, 2], data_offsets: [4, 8] } }), Buffer.alloc(4), Buffer.from(half.buffer)]),
    );
    await assert.rejects(probeArray(f16), /holds 2 tensors \(other, emb\): pass --key NAME/);
    assert.deepEqual(Array.from((await read(f16, 'emb')).data), [1.5, -2]);
  });

  it('refuses bad inputs, each with one error naming the file', async () => {
    const dir = tempDir();
    const cases: [string, Buffer, RegExp][] = [
      ['fortran.npy', Buffer.concat([npyHeader('<f4', [2, 2], 1, true), Buffer.alloc(16)]), /fortran\.npy: is in Fortran \(column-major\) order/],
      ['big.npy', npyBytes([1, 2], [1, 2], '>f4'), /big\.npy: is big-endian \(dtype >f4\)/],
      ['object.npy', Buffer.concat([npyHeader('|O', [2, 2]), Buffer.alloc(32)]), /object\.npy: holds Python objects \(dtype \|O\): loading them unpickles, which runs code/],
      ['int.npy', Buffer.concat([npyHeader('<i8', [2, 2]), Buffer.alloc(32)]), /int\.npy: dtype <i8 is not float16, float32 or float64/],
      ['vector.npy', npyBytes([1, 2, 3], [3]), /vector\.npy: the array has shape \[3\], not 2-D/],
      ['short.npy', npyBytes([1, 2, 3, 4], [2, 2]).subarray(0, 128 + 12), /short\.npy: truncated: 140 bytes, the header promises 144/],
      ['cut.npy', npyBytes([1, 2], [1, 2]).subarray(0, 40), /cut\.npy: truncated \.npy header \(40 of 128 bytes\)/],
      ['long.npy', Buffer.concat([npyBytes([1, 2], [1, 2]), Buffer.alloc(4)]), /long\.npy: 4 bytes after the array's 2 values/],
      ['magic.npy', Buffer.from('hello world, not numpy'), /magic\.npy: not a \.npy array/],
      ['v9.npy', Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 9, 0, 0, 0, 0, 0]), /v9\.npy: \.npy format version 9\.0 is not 1\.0, 2\.0 or 3\.0/],
    ];
    for (const [name, bytes, pattern] of cases) await assert.rejects(probeArray(writeBytes(join(dir, name), bytes)), pattern, name);
    // a NaN: the error names the file and the first bad row
    const nan = writeBytes(join(dir, 'nan.npy'), npyBytes([1, 2, 3, 4, NaN, 6], [3, 2]));
    await assert.rejects(read(nan), /nan\.npy: row 2 \(0-based, as stored\) holds a value that is not finite: NaN at column 0/);
    const big = writeBytes(join(dir, 'over.npy'), npyBytes([1, 1e300], [2, 1], '<f8'));
    await assert.rejects(read(big), /over\.npy: row 1 .* 1e\+300 overflows float32 at column 0/);
    const inf16 = writeBytes(join(dir, 'inf.npz'), zipBytes([{ name: 'a.npy', data: npyBytes([1, Infinity], [1, 2], '<f2'), deflate: true }]));
    await assert.rejects(read(inf16), /inf\.npz \(member a\.npy\): row 0 .* Infinity at column 1/);
  });

  it('refuses PyTorch files with one message and the numpy conversion', async () => {
    for (const name of ['model.pt', 'x.pth', 'pytorch_model.bin']) {
      await assert.rejects(probeArray(writeBytes(join(tempDir(), name), Buffer.from('PK'))), (e: Error) => {
        assert.match(e.message, new RegExp(`${name.replace('.', '\\.')} is a PyTorch file: loading it unpickles, which runs code`));
        assert.match(e.message, /np\.save\('features\.npy', torch\.load\('[^']+', map_location='cpu'\)\.float\(\)\.numpy\(\)\)/);
        return true;
      });
    }
    // a torch.save zip renamed to .npz
    const renamed = writeBytes(join(tempDir(), 'renamed.npz'), zipBytes([{ name: 'archive/data.pkl', data: Buffer.from('x') }]));
    await assert.rejects(probeArray(renamed), /renamed\.npz is a PyTorch file/);
  });
});

describe('features: import-features', function () {
  this.timeout(120000);
  let root: string;
  before(() => {
    root = tempDir();
    karpathyFixture(root, { train: 4, val: 3, test: 3 });
  });
  /** row i of image features: [i, 10 i]; caption j: [j, -j, 0.5] */
  const imageRows = (n: number) => Array.from({ length: n }, (_, i) => [i, 10 * i]).flat();
  const captionRows = (n: number) => Array.from({ length: n }, (_, j) => [j, 0 - j, 0.5]).flat();
  const base = (cacheDir: string, file: string) => ({ dataset: 'flickr30k', split: 'test' as const, modality: 'image' as const, file, encoder: 'nfnet-ext', dataRoot: root, cacheDir, chunkBytes: 5 });

  it('writes the cache and a manifest naming the external encoder and the source', async () => {
    const dir = tempDir();
    const src = writeBytes(join(dir, 'test_img.npy'), npyBytes(imageRows(3), [3, 2], '<f2'));
    const r = await importFeatures({ ...base(dir, src), provenance: 'NFNet-l0, timm, 224 px' });
    assert.equal(r.reused, false);
    assert.ok(r.paths.file.endsWith(join('features', 'flickr30k', 'test.image.nfnet-ext.safetensors')));
    const m = r.manifest;
    assert.deepEqual(m.encoder, { id: 'nfnet-ext', version: 'external', external: true, provenance: 'NFNet-l0, timm, 224 px' });
    assert.deepEqual([m.count, m.dim, m.imported, m.sourceHashOf], [3, 2, true, 'names']);
    assert.deepEqual(m.source, { file: 'test_img.npy', sha256: sha(readFileSync(src)), bytes: readFileSync(src).length, format: 'npy', dtype: 'f2' });
    const loaded = await loadFeatures(r.paths);
    assert.deepEqual(Array.from(loaded.data), imageRows(3));
    // the cache file is byte for byte what ptmst's own writer makes (with its digest)
    const own = encodeSafetensors({ features: { shape: [3, 2], data: new Float32Array(imageRows(3)) } }, { dataset: 'flickr30k', split: 'test', modality: 'image', encoder: 'external:nfnet-ext' });
    assert.ok(readFileSync(r.paths.file).equals(own));
    // the same import again: reused; another source: an error unless --force
    assert.equal((await importFeatures(base(dir, src))).reused, true);
    const other = writeBytes(join(dir, 'other.npy'), npyBytes(imageRows(3).map((v) => v + 1), [3, 2]));
    await assert.rejects(importFeatures(base(dir, other)), /exists \(imported from test_img\.npy\); pass --force to replace it/);
    const forced = await importFeatures({ ...base(dir, other), force: true });
    assert.equal(forced.manifest.source!.file, 'other.npy');
  });

  it('a count mismatch names both counts and both files', async () => {
    const dir = tempDir();
    const src = writeBytes(join(dir, 'train_img.npy'), npyBytes(imageRows(4), [4, 2]));
    await assert.rejects(importFeatures(base(dir, src)), (e: Error) => {
      assert.equal(e.name, 'ConfigError');
      assert.match(e.message, /train_img\.npy holds 4 rows, the flickr30k test split has 3 images \(read from .*flickr30k\)/);
      return true;
    });
    const txt = writeBytes(join(dir, 'caps.npz'), zipBytes([{ name: 'bert_test_embed.npy', data: npyBytes(captionRows(5), [5, 3]), deflate: true }]));
    await assert.rejects(importFeatures({ ...base(dir, txt), modality: 'text' }), /caps\.npz holds 5 rows, the flickr30k test split has 6 captions \(flattened in annotation order\)/);
  });

  it('cc3m: the split rule and test limit of the later stages reach the import (3:1:1 by default, holdout, all)', async () => {
    // 20 records: 3:1:1 gives 12/4/4, holdout min(1000, N/10) = 2 each for val and test (16/2/2)
    const cc3m = tempDir();
    mkdirSync(join(cc3m, 'cc3m'), { recursive: true });
    writeFileSync(join(cc3m, 'cc3m', 'metadata.json'), JSON.stringify(Array.from({ length: 20 }, (_, i) => ({ id: `r${i}`, image: `r${i}.jpg`, caption: `caption ${i}` }))));
    const dir = tempDir();
    const at = (rows: number, name: string) => writeBytes(join(dir, name), npyBytes(imageRows(rows), [rows, 2]));
    const cc = (file: string, extra: Record<string, unknown>) => importFeatures({ ...base(dir, file), dataset: 'cc3m', split: 'val', dataRoot: cc3m, force: true, ...extra });
    assert.equal((await cc(at(4, 'val4.npy'), {})).manifest.count, 4);
    await assert.rejects(cc(at(4, 'val4.npy'), { cc3mSplit: 'holdout' }), /val4\.npy holds 4 rows, the cc3m val split has 2 images/);
    assert.equal((await cc(at(2, 'val2.npy'), { cc3mSplit: 'holdout' })).manifest.count, 2);
    // the test limit: the first 3 of the 4 test entries
    assert.equal((await cc(at(3, 'test3.npy'), { split: 'test', cc3mTestLimit: 3 })).manifest.count, 3);
    assert.equal((await cc(at(4, 'test4.npy'), { split: 'test', cc3mTestLimit: null })).manifest.count, 4);
  });

  it('--ids reorders rows to the split (image names, base names, caption images, indices)', async () => {
    const dir = tempDir();
    // stored in the order test2, test0, test1
    const src = writeBytes(join(dir, 'img.npy'), npyBytes([2, 20, 0, 0, 1, 10], [3, 2]));
    const ids = join(dir, 'ids.txt');
    writeFileSync(ids, 'test2.jpg\ntest0.jpg\ntest1.jpg\n');
    const r = await importFeatures({ ...base(dir, src), ids });
    assert.deepEqual(Array.from((await loadFeatures(r.paths)).data), imageRows(3));
    assert.equal(r.manifest.source!.ids!.file, 'ids.txt');
    // captions: each row names its image; the k-th row naming an image is its k-th caption
    const caps = writeBytes(join(dir, 'caps.npy'), npyBytes([4, -4, 0.5, 0, 0, 0.5, 5, -5, 0.5, 1, -1, 0.5, 2, -2, 0.5, 3, -3, 0.5], [6, 3]));
    const capIds = join(dir, 'cap-ids.npy');
    const names = ['test2', 'test0', 'test2', 'test0', 'test1', 'test1'];
    const u = Buffer.alloc(6 * 5 * 4);
    names.forEach((n, k) => [...n].forEach((c, i) => u.writeUInt32LE(c.codePointAt(0)!, (k * 5 + i) * 4)));
    writeBytes(capIds, Buffer.concat([npyHeader('<U5', [6]), u]));
    const t = await importFeatures({ ...base(dir, caps), modality: 'text', encoder: 'bert-ext', ids: capIds });
    assert.deepEqual(Array.from((await loadFeatures(t.paths)).data), captionRows(6));
    // row indices (integers no image is named by)
    const idx = join(dir, 'idx.npy');
    writeBytes(idx, Buffer.concat([npyHeader('<i8', [3]), Buffer.from(new BigInt64Array([2n, 0n, 1n]).buffer)]));
    const i = await importFeatures({ ...base(dir, src), encoder: 'by-index', ids: idx });
    assert.deepEqual(Array.from((await loadFeatures(i.paths)).data), imageRows(3));
  });

  it('--ids: unknown, duplicate and missing ids are one error', async () => {
    const dir = tempDir();
    const src = writeBytes(join(dir, 'img.npy'), npyBytes(imageRows(3), [3, 2]));
    const ids = join(dir, 'ids.txt');
    writeFileSync(ids, 'test0.jpg\ntest0.jpg\nnope.jpg\n');
    await assert.rejects(
      importFeatures({ ...base(dir, src), ids }),
      /ids\.txt: 1 unknown id\(s\) "nope\.jpg"; 1 duplicate id\(s\) "test0\.jpg"; split rows without an id: "flickr30k-images\/test1\.jpg", "flickr30k-images\/test2\.jpg"/,
    );
    writeFileSync(ids, 'test0.jpg\ntest1.jpg\n');
    await assert.rejects(importFeatures({ ...base(dir, src), ids }), /ids\.txt: 2 ids, the flickr30k test split has 3 images/);
  });

  it('an unknown encoder imported is valid input to the feature stage and the buffer stage, with no image files', async () => {
    await ready(() => undefined);
    const cacheDir = tempDir();
    const dir = tempDir();
    const counts = { train: 4, val: 3, test: 3 };
    for (const split of ['train', 'val', 'test'] as const) {
      const n = counts[split];
      const img = writeBytes(join(dir, `${split}_img.npy`), npyBytes(Array.from({ length: n * 4 }, (_, k) => Math.sin(k + 1)), [n, 4]));
      const txt = writeBytes(join(dir, `${split}.npz`), zipBytes([{ name: `bert_${split}_embed.npy`, data: npyBytes(Array.from({ length: 2 * n * 3 }, (_, k) => Math.cos(k)), [2 * n, 3], '<f8'), deflate: true }]));
      await importFeatures({ ...base(cacheDir, img), split, encoder: 'nfnet-ext' });
      await importFeatures({ ...base(cacheDir, txt), split, modality: 'text', encoder: 'bert-ext' });
    }
    assert.ok(!existsSync(join(root, 'flickr30k', 'flickr30k-images')), 'no image files exist');
    const data = { dataset: 'flickr30k', dataRoot: root, cacheDir, imageEncoder: 'nfnet-ext', textEncoder: 'bert-ext' };
    const sets = await prepareFeatureSets(data, ['train', 'val', 'test']); // what repro does: the feature stage, then load
    assert.deepEqual(sets.map((s) => [s.numImages, s.numCaptions, s.dImg, s.dTxt]), [[4, 8, 4, 3], [3, 6, 4, 3], [3, 6, 4, 3]]);
    assert.equal(sets[0]!.txt[1], Math.fround(Math.cos(1)));
    const b = await buildBuffer({ data, model: { dOut: 8 }, buffer: { numExperts: 1, epochs: 1, batchSize: 4 }, workspace: tempDir() });
    assert.equal(b.trained, 1);
  });

  it('a stale cache exits 3 through the CLI, naming the file and the import command', async () => {
    const cacheDir = tempDir();
    const dataRoot = tempDir();
    karpathyFixture(dataRoot, { train: 4, val: 3, test: 3 });
    const src = writeBytes(join(tempDir(), 'test_img.npy'), npyBytes(imageRows(3), [3, 2]));
    const cli = (...args: string[]) => spawnSync(process.execPath, [join(REPO, 'dist', 'src', 'cli', 'main.js'), ...args], { encoding: 'utf8', env: { ...process.env, PTMST_DATA_ROOT: '' } });
    const imp = cli('import-features', '--dataset', 'flickr30k', '--split', 'test', '--modality', 'image', '--file', src, '--encoder', 'nfnet-ext', '--data-root', dataRoot, '--cache-dir', cacheDir, '--no-progress');
    assert.equal(imp.status, 0, imp.stderr);
    // the annotations change: one more test image
    karpathyFixture(dataRoot, { train: 4, val: 3, test: 4 });
    const f = cli('features', '--dataset', 'flickr30k', '--data-root', dataRoot, '--cache-dir', cacheDir, '--image-encoder', 'nfnet-ext', '--splits', 'test', '--no-progress');
    assert.equal(f.status, 3, f.stderr);
    assert.match(f.stderr, /stale cache: .*test\.image\.nfnet-ext\.safetensors: it holds 3 rows, the split has 4 images .*rerun `ptmst import-features --dataset flickr30k --split test --modality image --encoder nfnet-ext --file test_img\.npy --force`/);
    const pt = cli('import-features', '--dataset', 'flickr30k', '--split', 'test', '--modality', 'image', '--file', 'x.pt', '--encoder', 'e', '--data-root', dataRoot);
    assert.equal(pt.status, 2);
    assert.match(pt.stderr, /x\.pt is a PyTorch file/);
  });

  it('reads files numpy itself wrote (np.save, np.savez, np.savez_compressed)', function () {
    const py = spawnSync('/usr/bin/python3', ['-c', 'import numpy'], { encoding: 'utf8' });
    onlyWhere(this, py.status === 0, 'where /usr/bin/python3 has numpy (Debian python3-numpy)');
    const dir = tempDir();
    const script = `
import numpy as np
x = np.arange(12, dtype=np.float64).reshape(4, 3) / 8
np.save('${dir}/a.npy', x.astype(np.float32))
np.save('${dir}/h.npy', x.astype(np.float16))
np.savez('${dir}/b.npz', x, bert_test_embed=x)
np.savez_compressed('${dir}/c.npz', bert_test_embed=x.astype(np.float32))
np.save('${dir}/f.npy', np.asfortranarray(x))
`;
    const w = spawnSync('/usr/bin/python3', ['-c', script], { encoding: 'utf8' });
    assert.equal(w.status, 0, w.stderr);
    const want = Array.from({ length: 12 }, (_, k) => k / 8);
    return (async () => {
      for (const [f, key] of [['a.npy'], ['h.npy'], ['b.npz', 'bert_test_embed'], ['b.npz', 'arr_0'], ['c.npz']] as [string, string?][]) {
        assert.deepEqual(Array.from((await read(join(dir, f), key, 1 << 16)).data), want, f);
      }
      await assert.rejects(probeArray(join(dir, 'f.npy')), /Fortran/);
    })();
  });
});
