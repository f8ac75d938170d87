/**
 * The buffer reader (trajectory/store.ts) is the one read path of expert files: whatever a consumer does
 * with a buffer (distil, `eval --full`, a KD teacher, coresets), it gets experts that the manifest promises,
 * that verify, and whose numbers are plausible — or one error naming the file (exit 3).
 */
import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptFileError } from '../../src/errors';
import { dualShape } from '../../src/model/dual';
import { paramCount } from '../../src/model/head';
import { RECALL_KEYS, type Retrieval } from '../../src/model/retrieval';
import { BUFFER_FORMAT, readBuffer, writeBufferManifest, writeTrajectory } from '../../src/trajectory/store';
import { rng } from '../../src/util/random';
import { editBufferManifest, editExpertFile, stripExpertDigest, tempDir } from '../helpers';

const SHAPE = dualShape(16, 8, 6);
const SNAPSHOTS = 3;

async function makeBuffer(experts = 4): Promise<string> {
  const dir = tempDir('ptmst-store-');
  const r = rng(7);
  const row = (): Retrieval => {
    const recalls = RECALL_KEYS.map(() => 100 * r.next());
    return { ...Object.fromEntries(RECALL_KEYS.map((k, i) => [k, recalls[i]!])), rMean: recalls.reduce((a, b) => a + b, 0) / recalls.length } as Retrieval;
  };
  const entries = [];
  for (let i = 0; i < experts; i++) {
    const t = {
      img: Float32Array.from({ length: SNAPSHOTS * paramCount(SHAPE.img) }, () => r.next() - 0.5),
      txt: Float32Array.from({ length: SNAPSHOTS * paramCount(SHAPE.txt) }, () => r.next() - 0.5),
      snapshots: SNAPSHOTS,
      retrieval: Array.from({ length: SNAPSHOTS }, row),
      retrievalVal: Array.from({ length: SNAPSHOTS }, row),
    };
    entries.push({ ...(await writeTrajectory(dir, i, t, { expert: String(i) })), seed: i, wallSeconds: 0 });
  }
  await writeBufferManifest(dir, {
    format: BUFFER_FORMAT, kind: 'experts', dataset: 'toy', imageEncoder: 'toy', textEncoder: 'toy', dims: { img: 16, txt: 8, out: 6 },
    epochs: SNAPSHOTS - 1, seed: 0, config: {}, numExperts: experts, experts: entries,
  });
  return dir;
}

const refused = (file: string, reason: RegExp) => (e: unknown) => {
  assert.ok(e instanceof CorruptFileError, `a CorruptFileError (exit 3), got ${String(e)}`);
  assert.equal(e.file, file);
  assert.match(e.message, reason);
  assert.equal(e.exitCode, 3);
  return true;
};

describe('trajectory/store: the buffer reader refuses what the manifest does not promise or the numbers cannot be', function () {
  this.timeout(30000);

  it('reads a sound buffer whole, and the first N experts when asked', async () => {
    const dir = await makeBuffer();
    assert.equal((await readBuffer(dir)).trajectories.length, 4);
    assert.equal((await readBuffer(dir, 2)).trajectories.length, 2);
  });

  it('a manifest with one expert entry deleted (its digest fixed up) is one error naming the manifest', async () => {
    const dir = await makeBuffer();
    await editBufferManifest(dir, (m) => void m.experts.splice(2, 1));
    await assert.rejects(readBuffer(dir), refused(join(dir, 'manifest.json'), /promises 4 experts and lists 3 \(expert 2 missing\)/));
    // a consumer asking only for experts the manifest still lists reads them
    assert.equal((await readBuffer(dir, 2)).trajectories.length, 2);
  });

  it('a manifest edited by hand (an entry deleted, nothing fixed up) fails its digest', async () => {
    const dir = await makeBuffer();
    const file = join(dir, 'manifest.json');
    const m = JSON.parse(readFileSync(file, 'utf8')) as { experts: unknown[] };
    m.experts.pop();
    writeFileSync(file, JSON.stringify(m, null, 2));
    await assert.rejects(readBuffer(dir), refused(file, /digest mismatch/));
  });

  it('a manifest without a digest (an older ptmst) is one message saying to rebuild with --force', async () => {
    const dir = await makeBuffer();
    const file = join(dir, 'manifest.json');
    const { sha256: _d, ...m } = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
    writeFileSync(file, JSON.stringify(m, null, 2));
    await assert.rejects(readBuffer(dir), refused(file, /has no digest.*ptmst buffer .*--force/));
  });

  for (const [what, tensor, value, reason] of [
    ['NaN retrieval scores', 'retrieval', NaN, /retrieval holds NaN or infinite values/],
    ['a retrieval score of -1e9', 'retrieval', -1e9, /retrieval holds -1000000000 .*outside \[0, 100\]/],
    ['a validation score above 100', 'retrievalVal', 100.5, /retrievalVal holds 100\.5 .*outside \[0, 100\]/],
    ['NaN image-head parameters', 'img', NaN, /img holds NaN or infinite values/],
    ['infinite text-head parameters', 'txt', Infinity, /txt holds NaN or infinite values/],
  ] as const) {
    it(`an expert file holding ${what} (valid digest, manifest checksum fixed up) is refused, naming it`, async () => {
      const dir = await makeBuffer();
      const file = await editExpertFile(dir, 1, (t) => void (t[tensor]!.data[3] = value));
      await assert.rejects(readBuffer(dir), refused(file, reason));
    });
  }

  it('an expert file without its ptmst digest (an older ptmst; checksum fixed up) is refused with the remedy', async () => {
    const dir = await makeBuffer();
    const file = await stripExpertDigest(dir, 0);
    await assert.rejects(readBuffer(dir), refused(file, /has no ptmst\.digest.*--force/));
  });
});
