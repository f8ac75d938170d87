import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf } from '../../src/backend';
import { forgettingCoreset } from '../../src/coreset/forgetting';
import type { FeatureSet } from '../../src/features/feature-set';
import { loadFeatureSets, prepareFeatureSets } from '../../src/features/load';
import { dualShape, initDual } from '../../src/model/dual';
import { headForward } from '../../src/model/head';
import { type HeadsState, learnedFlags, trainEpoch } from '../../src/model/train';
import { CorruptFileError } from '../../src/store/safetensors';
import { buildBuffer } from '../../src/trajectory/buffer';
import { type ExpertOptions, trainExpert } from '../../src/trajectory/expert';
import { countForgetting, forgettingFileName, readForgetting } from '../../src/trajectory/forgetting';
import { rng } from '../../src/util/random';
import { sharedCache, tempDir } from '../helpers';

describe('coreset/forgetting', function () {
  this.timeout(600000);
  before(() => ready(() => undefined));

  it('counts learned → not-learned transitions; never-learned pairs get max + 1', () => {
    const L = (pair: number, learned: boolean) => ({ pair, learned });
    const seq = [
      // pair 0: 1 0 1 0 0 1 → events at the 2nd and 4th presentations: 2
      L(0, true), L(1, false), L(2, true), L(3, false),
      L(0, false), L(1, true), L(2, true), L(3, false),
      L(0, true), L(1, false), L(2, true), L(4, true),
      L(0, false), L(1, false), L(2, false), L(4, true),
      L(0, false), L(1, true), L(2, true), L(4, true),
      L(0, true),
    ];
    // pair 1: 0 1 0 0 1 → 1;  pair 2: 1 1 1 0 1 → 1;  pair 3: never learned → max(2,1,1,0) + 1 = 3;
    // pair 4: 1 1 1 → 0;  pair 5: never presented (never learned) → 3
    assert.deepEqual(Array.from(countForgetting(seq, 6)), [2, 1, 1, 3, 0, 3]);
    assert.deepEqual(Array.from(countForgetting([], 2)), [1, 1], 'nothing learned: all at 0 + 1');
    assert.throws(() => countForgetting([L(2, true)], 2), /out of range/);
  });

  it('the rule keeps the most-forgotten pairs, ties to the lower index', () => {
    const train = { numCaptions: 6 } as FeatureSet;
    const picked = forgettingCoreset.select({ train, forgetting: Int32Array.from([2, 5, 1, 5, 0, 2]) }, 4, rng(0));
    assert.deepEqual(Array.from(picked), [1, 3, 0, 5]);
  });

  it('flags rank 1 of each caption among the batch images, by hand', () => {
    // rows images, columns captions; pair j = (row j, column j)
    const logits = [
      [5, 1, 0],
      [2, 3, 4], // caption 2 prefers image 1 over its own (4 > 3.5)
      [1, 3, 3.5],
    ];
    const flags = tf.tidy(() => learnedFlags(tf.tensor2d(logits)).arraySync());
    assert.deepEqual(flags, [1, 1, 0]);
    const tie = tf.tidy(() => learnedFlags(tf.tensor2d([[1, 2], [1, 2]])).arraySync());
    assert.deepEqual(tie, [1, 1], 'a tie with another image counts as learned');
  });

  it('records, per step, the flags of the pre-step parameters (a 3-pair batch, no dropout)', async () => {
    const shape = dualShape(4, 3, 2);
    const r = rng(5);
    const x = tf.tensor2d(Float32Array.from({ length: 12 }, () => r.next()), [3, 4]);
    const y = tf.tensor2d(Float32Array.from({ length: 9 }, () => r.next()), [3, 3]);
    const s = tf.eye(3) as tf.Tensor2D;
    const state: HeadsState = { theta: initDual(shape, () => r.next()) };
    const seen: { pairs: number[]; learned: number[]; expected: number[] }[] = [];
    for (let epoch = 0; epoch < 6; epoch++) {
      // what the step will see: logits of the current (pre-step) parameters, computed separately
      const Lpre = tf.tidy(() => {
        const u = headForward(state.theta.img, x, null).u;
        const v = headForward(state.theta.txt, y, null).u;
        return tf.div(tf.matMul(u, v, false, true), 0.5).arraySync() as number[][];
      });
      const expected = [0, 1, 2].map((j) => ([0, 1, 2].every((i) => Lpre[i]![j]! <= Lpre[j]![j]!) ? 1 : 0));
      await trainEpoch(
        state,
        { n: 3, batch: (p) => ({ x: tf.gather(x, p), y: tf.gather(y, p), s: tf.gather(tf.gather(s, p), p, 1) }) },
        {
          shape, batchSize: 3, dropout: 0, loss: 'infonce', temperature: 0.5, lr: { img: 2, txt: 2 }, sgd: { momentum: 0, weightDecay: 0 },
          label: 't', where: 'e', onBatch: (pairs, learned) => seen.push({ pairs: Array.from(pairs), learned: Array.from(learned), expected }),
        },
        rng(epoch),
      );
    }
    assert.equal(seen.length, 6, 'one call per step');
    for (const { pairs, learned, expected } of seen) assert.deepEqual(learned, pairs.map((p) => expected[p]!), `pairs ${pairs}`);
    assert.ok(seen.some((x) => x.learned.includes(0)) && seen.some((x) => x.learned.includes(1)), 'both outcomes occur');
    tf.dispose([x, y, s, ...Object.values(state.theta.img), ...Object.values(state.theta.txt)]);
  });

});

describe('coreset/forgetting on the shapes set', function () {
  this.timeout(600000);
  let shapes: FeatureSet;
  before(async () => {
    await ready(() => undefined);
    const data = { dataset: 'shapes', cacheDir: sharedCache() };
    await prepareFeatureSets(data, ['train', 'val', 'test']);
    [shapes] = await loadFeatureSets(data, ['train']);
  });

  it('the hook leaves expert training bit-identical on shapes (and reports its cost)', async () => {
    const opts: ExpertOptions = { epochs: 2, lrImg: 0.1, lrTxt: 0.1, batchSize: 128, dropout: 0.1, loss: 'infonce', dOut: 32, temperature: 0.07 };
    const before = tf.memory().numTensors;
    let t0 = performance.now();
    const plain = await trainExpert(shapes, {}, opts, rng(3));
    const tPlain = performance.now() - t0;
    let calls = 0;
    let flags = 0;
    t0 = performance.now();
    const hooked = await trainExpert(shapes, {}, opts, rng(3), undefined, {
      onBatch: (_e, pairs, learned) => {
        calls++;
        flags += learned.length;
        assert.equal(pairs.length, learned.length);
      },
    });
    const tHook = performance.now() - t0;
    assert.equal(tf.memory().numTensors, before, 'no tensor leaks');
    assert.ok(Buffer.from(plain.img.buffer).equals(Buffer.from(hooked.img.buffer)), 'img snapshots bit-identical');
    assert.ok(Buffer.from(plain.txt.buffer).equals(Buffer.from(hooked.txt.buffer)), 'txt snapshots bit-identical');
    assert.equal(calls, 2 * Math.ceil(shapes.numCaptions / 128));
    assert.equal(flags, 2 * shapes.numCaptions);
    console.log(`      expert epoch on shapes (${shapes.numCaptions} pairs): ${(tPlain / 2).toFixed(0)} ms without the hook, ${(tHook / 2).toFixed(0)} ms with it`);
  });

  it('buildBuffer with forgetting: same expert files, a verified forgetting file per expert, summed by readForgetting', async () => {
    const cfg = (out: string, forgetting: boolean) => ({
      data: { dataset: 'shapes', cacheDir: sharedCache() },
      model: { dOut: 16 },
      buffer: { numExperts: 2, epochs: 2, workers: 1, forgetting },
      out,
    });
    const a = join(tempDir(), 'plain');
    const b = join(tempDir(), 'forget');
    await buildBuffer(cfg(a, false));
    const withF = await buildBuffer(cfg(b, true));
    for (const i of [0, 1]) {
      const f = `expert-00${i}.safetensors`;
      assert.ok(readFileSync(join(a, f)).equals(readFileSync(join(b, f))), `${f} byte-identical`);
    }
    assert.deepEqual(withF.manifest.config, (await buildBuffer(cfg(a, false))).manifest.config, 'forgetting is no part of the key');
    const sum = await readForgetting(b, 2);
    assert.equal(sum.length, shapes.numCaptions);
    assert.ok(sum.some((c) => c > 0), 'some pair forgotten or never learned');
    // extending a plain buffer with forgetting on retrains (to the same bytes) the experts to record their counts
    const again = await buildBuffer(cfg(a, true));
    assert.equal(again.trained, 2);
    assert.deepEqual(Array.from(await readForgetting(a, 2)), Array.from(sum));
    const f = join(b, forgettingFileName(1));
    const bytes = readFileSync(f);
    bytes[bytes.length - 3]! ^= 0x01;
    writeFileSync(f, bytes);
    await assert.rejects(readForgetting(b, 2), (e: unknown) => e instanceof CorruptFileError && e.file === f);
  });
});
