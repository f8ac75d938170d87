import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ready } from '../../src/backend';
import { type ImageCaptionSplit, takeImages } from '../../src/data/dataset';
import { loadSplit } from '../../src/data/registry';
import { encodeChunk, extractFeatures, featurePaths, loadFeatures, partialChunks, sourceHash } from '../../src/features';
import { IMAGE_ENCODERS } from '../../src/encoders/registry';
import { FEATURES_FORMAT } from '../../src/features/manifest';
import { sha256 } from '../../src/store/atomic';
import { CorruptFileError, writeSafetensors } from '../../src/store/safetensors';
import { realData, tempDir } from '../helpers';

describe('features: cache, manifest, resume', function () {
  this.timeout(180000);
  let split: ImageCaptionSplit;
  before(async function () {
    const root = realData(this);
    await ready(() => undefined);
    split = takeImages(await loadSplit(root, 'flickr8k', 'test'), 6);
  });

  it('writes features with a manifest, then reuses the cache', async () => {
    const cacheDir = tempDir();
    const first = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir, chunkSize: 4, workers: 1 });
    assert.equal(first.reused, false);
    assert.equal(first.manifest.count, 6);
    assert.equal(first.manifest.dim, 1280);
    assert.deepEqual(await partialChunks(first.paths), [], 'partial chunks are removed once joined');
    const second = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir, chunkSize: 4 });
    assert.equal(second.reused, true);
    const m = await loadFeatures(second.paths);
    assert.equal(m.data.length, 6 * 1280);
  });

  it('two worker threads give bit-identical features to one', async () => {
    const one = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir: tempDir(), chunkSize: 2, workers: 1 });
    const two = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir: tempDir(), chunkSize: 2, workers: 2 });
    assert.ok(Buffer.from((await loadFeatures(one.paths)).data.buffer).equals(Buffer.from((await loadFeatures(two.paths)).data.buffer)));
  });

  it('resumes from the chunks an interrupted run left, with the same result', async () => {
    const reference = await extractFeatures({ split, modality: 'image', encoder: 'mobilenet_v2', cacheDir: tempDir(), chunkSize: 4, workers: 1 });
    // what a run killed after its first chunk leaves behind: chunk 0 in the partial folder, no final file
    const cacheDir = tempDir();
    const paths = featurePaths(cacheDir, split.dataset, split.split, 'image', 'mobilenet_v2');
    const enc = await IMAGE_ENCODERS.mobilenet_v2!.load();
    await encodeChunk(
      enc,
      {
        index: 0,
        paths: split.images.slice(0, 4).map((f) => join(split.imageDir, f)),
        file: join(paths.partialDir, 'chunk-00000.safetensors'),
        meta: { sourceHash: await sourceHash(split, 'image'), encoder: reference.manifest.encoder.version, start: '0', count: '4' },
      },
      () => undefined,
    );
    enc.dispose();
    const seen: number[] = [];
    const resumed = await extractFeatures({
      split, modality: 'image', encoder: 'mobilenet_v2', cacheDir, chunkSize: 4, workers: 1,
      onProgress: (e) => seen.push(e.done),
    });
    assert.equal(resumed.resumedChunks, 1);
    assert.equal(seen[0], 4, 'progress starts at the resumed count');
    assert.ok(readFileSync(resumed.paths.file).equals(readFileSync(reference.paths.file)));
  });

  it('rebuilds a cache whose source changed; reports a corrupted or truncated file by name', async () => {
    const cacheDir = tempDir();
    const first = await extractFeatures({ split, modality: 'text', encoder: 'wink-sg-100d', cacheDir });
    assert.equal(first.manifest.count, 30);
    assert.equal(first.manifest.dim, 100);
    const changed = { ...split, rawCaptions: split.rawCaptions.map((c, i) => (i === 0 ? c + ' again' : c)) };
    const rebuilt = await extractFeatures({ split: changed, modality: 'text', encoder: 'wink-sg-100d', cacheDir });
    assert.equal(rebuilt.reused, false);
    assert.equal(rebuilt.staleReason, 'source files changed');

    const bytes = readFileSync(rebuilt.paths.file);
    const flipped = Buffer.from(bytes);
    flipped[flipped.length - 1]! ^= 0xff;
    writeFileSync(rebuilt.paths.file, flipped);
    await assert.rejects(
      extractFeatures({ split: changed, modality: 'text', encoder: 'wink-sg-100d', cacheDir }),
      (e: unknown) => e instanceof CorruptFileError && e.file === rebuilt.paths.file && /checksum mismatch/.test(e.message),
    );
    writeFileSync(rebuilt.paths.file, bytes.subarray(0, 100));
    await assert.rejects(loadFeatures(rebuilt.paths), /truncated or corrupted/);
    writeFileSync(rebuilt.paths.manifest, '{"format": "ptmst.features/1"}');
    await assert.rejects(loadFeatures(rebuilt.paths), (e: unknown) => e instanceof CorruptFileError && /manifest field dataset/.test(e.message));
    rmSync(cacheDir, { recursive: true });
  });
});

describe('features: the cache requires ptmst\'s digest on its own files, not on imported ones', () => {
  /** A 3 × 2 feature file and its manifest in a fresh cache; `digest: false` writes it as another writer would. */
  async function cached(opts: { digest: boolean; imported?: boolean; value?: number }) {
    const paths = featurePaths(tempDir(), 'toy', 'test', 'image', 'mobilenet_v2');
    const data = Float32Array.from([0.1, 0.2, 0.3, opts.value ?? 0.4, 0.5, 0.6]);
    mkdirSync(dirname(paths.file), { recursive: true });
    let buf: Buffer;
    if (opts.digest) buf = await writeSafetensors(paths.file, { features: { shape: [3, 2], data } });
    else {
      const json = Buffer.from(JSON.stringify({ features: { dtype: 'F32', shape: [3, 2], data_offsets: [0, 24] } }));
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(json.length));
      buf = Buffer.concat([len, json, Buffer.from(data.buffer)]);
      writeFileSync(paths.file, buf);
    }
    const manifest = {
      format: FEATURES_FORMAT, dataset: 'toy', split: 'test', modality: 'image', encoder: { id: 'mobilenet_v2', version: 'v' },
      count: 3, dim: 2, sourceHash: 'x', sha256: sha256(buf), bytes: buf.length, createdAt: '2026-01-01', wallSeconds: 0,
      ...(opts.imported === undefined ? {} : { imported: opts.imported }),
    };
    writeFileSync(paths.manifest, JSON.stringify(manifest));
    return paths;
  }

  it('reads ptmst\'s own files, and imported files without a digest', async () => {
    assert.equal((await loadFeatures(await cached({ digest: true }))).data[3], Math.fround(0.4));
    assert.equal((await loadFeatures(await cached({ digest: false, imported: true }))).data[3], Math.fround(0.4));
  });

  it('a file of ptmst\'s without its digest is one error naming it, saying to rebuild with --force (or mark it imported)', async () => {
    const paths = await cached({ digest: false });
    await assert.rejects(loadFeatures(paths), (e: unknown) =>
      e instanceof CorruptFileError && e.file === paths.file &&
      /has no ptmst\.digest: features an older ptmst wrote \(rebuild them: ptmst features --force\) or computed elsewhere \(say so with "imported": true in .*\.json\)$/.test(e.message));
  });

  it('NaN features are refused, imported or not, naming the file', async () => {
    for (const digest of [true, false]) {
      const paths = await cached({ digest, imported: true, value: Number.NaN });
      await assert.rejects(loadFeatures(paths), (e: unknown) => e instanceof CorruptFileError && e.file === paths.file && /features holds NaN or infinite values \(NaN at element 3\)/.test(e.message));
    }
  });
});
