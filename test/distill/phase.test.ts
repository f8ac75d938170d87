import { strict as assert } from 'node:assert';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ready, tf } from '../../src/backend';
import { DistillConfig } from '../../src/config/schemas';
import { emaUpdate } from '../../src/distill/ema';
import { distillPhase } from '../../src/distill/phase';
import { disposePhaseState, disposeTeacher, initPhaseState, runPhase, sampleUnroll, teacherAt } from '../../src/distill/phase-loop';
import { NonFiniteError } from '../../src/errors';
import type { FeatureSet } from '../../src/features/feature-set';
import { dualShape } from '../../src/model/dual';
import { trainExpert } from '../../src/trajectory/expert';
import { BUFFER_FORMAT, type Trajectory, readBuffer, writeBufferManifest, writeTrajectory } from '../../src/trajectory/store';
import { rng } from '../../src/util/random';
import { tempDir, toySet } from '../helpers';


describe('distill: phase loop', function () {
  this.timeout(120000);
  let train: FeatureSet;
  let trajectories: Trajectory[];
  const shape = dualShape(16, 8, 6);
  before(async () => {
    await ready(() => undefined);
    train = toySet(1);
    const t = await trainExpert(train, {}, { epochs: 3, lrImg: 0.1, lrTxt: 0.1, batchSize: 16, dropout: 0.1, loss: 'infonce', dOut: 6, temperature: 0.07 }, rng(2));
    trajectories = [{ ...t, snapshots: 4 }];
  });

  const config = (extra: Record<string, unknown> = {}) =>
    DistillConfig.parse({ phases: [{ start: [0, 1], size: 12, iterations: 10 }], batchSyn: 6, synSteps: 3, lrX: 1, lrY: 1, lrS: 0.01, lrAlpha: 1e-4, checkpointEvery: 3, ...extra });
  const input = (c: DistillConfig, checkpoint: string, stopAfter?: number) => ({
    index: 0, phase: c.phases[0]!, config: c, train, trajectories, shape, temperature: 0.07, dropout: 0.1, checkpoint,
    ...(stopAfter !== undefined ? { stopAfter } : {}),
  });
  const values = (o: { state: Record<string, tf.Tensor> }) => Object.fromEntries(Object.entries(o.state).map(([k, t]) => [k, Array.from(t.dataSync())]));

  it('resumes after an interruption to a bit-identical result', async () => {
    const dir = tempDir();
    const c = config();
    const straight = await distillPhase(input(c, join(dir, 'a.ckpt')));
    const first = await distillPhase(input(c, join(dir, 'b.ckpt'), 4)); // killed after iteration 4
    assert.equal(first.completed, false);
    tf.dispose(Object.values(first.state));
    const before = tf.memory().numTensors;
    const resumed = await distillPhase(input(c, join(dir, 'b.ckpt')));
    assert.equal(resumed.completed, true);
    assert.deepEqual(values(resumed), values(straight));
    assert.deepEqual(Array.from(resumed.losses), Array.from(straight.losses));
    tf.dispose(Object.values(resumed.state));
    assert.equal(tf.memory().numTensors, before, 'the loop disposes every tensor it creates');
    tf.dispose(Object.values(straight.state));
  });

  it('runs in memory without a checkpoint file, with the same result', async () => {
    const dir = tempDir();
    const c = config();
    const withFile = await distillPhase(input(c, join(dir, 'a.ckpt')));
    const { checkpoint: _none, ...inMemory } = input(c, '');
    const before = tf.memory().numTensors;
    const plain = await distillPhase(inMemory);
    assert.deepEqual(values(plain), values(withFile));
    assert.deepEqual(Array.from(plain.losses), Array.from(withFile.losses));
    tf.dispose(Object.values(plain.state));
    assert.equal(tf.memory().numTensors, before);
    tf.dispose(Object.values(withFile.state));
  });

  it('runPhase, the bare in-memory loop, gives the same loss history, one callback per iteration', async () => {
    const c = config();
    const { checkpoint: _none, ...inMemory } = input(c, '');
    const viaStage = await distillPhase(inMemory);
    const s = initPhaseState(train, 0, c.phases[0]!, c);
    const seen: number[] = [];
    await runPhase(s, { ...inMemory }, (_, loss) => void seen.push(loss));
    assert.deepEqual(s.losses.map(Math.fround), Array.from(viaStage.losses));
    assert.deepEqual(seen, s.losses);
    disposePhaseState(s);
    tf.dispose(Object.values(viaStage.state));
  });

  it('a corrupted checkpoint is reported and the phase restarts, ending identical to an uninterrupted run', async () => {
    const dir = tempDir();
    const c = config();
    const straight = await distillPhase(input(c, join(dir, 'a.ckpt')));
    const first = await distillPhase(input(c, join(dir, 'b.ckpt'), 6));
    tf.dispose(Object.values(first.state));
    const bytes = readFileSync(join(dir, 'b.ckpt'));
    bytes[bytes.length - 3]! ^= 0x40; // an exponent byte of the last float
    writeFileSync(join(dir, 'b.ckpt'), bytes);
    const warnings: string[] = [];
    const resumed = await distillPhase({ ...input(c, join(dir, 'b.ckpt')), log: (l: string) => warnings.push(l) });
    assert.equal(warnings.length, 1);
    assert.match(warnings[0]!, /b\.ckpt: content digest mismatch.*phase 0 restarts from iteration 0/);
    assert.deepEqual(values(resumed), values(straight));
    tf.dispose(Object.values(resumed.state));
    tf.dispose(Object.values(straight.state));
    rmSync(dir, { recursive: true });
  });

  it('stops on a NaN loss with an error and keeps the last good checkpoint', async () => {
    const dir = tempDir();
    const ckpt = join(dir, 'nan.ckpt');
    const c = config({ lrAlpha: 1e30 }); // the learned learning rates explode
    await assert.rejects(distillPhase(input(c, ckpt)), (e: unknown) => e instanceof NonFiniteError && /(matching loss is NaN|holds NaN or infinite values); stopped/.test((e as Error).message));
    assert.ok(existsSync(ckpt), 'the last good checkpoint is kept');
    rmSync(dir, { recursive: true });
  });

  it('a NaN matching loss caused by a teacher names the expert file (phase numbered from 0, as its file phase-0)', async () => {
    const dir = tempDir();
    // an expert with finite but huge parameters (it verifies): the unrolled student overflows
    const t = trajectories[0]!;
    const huge = { ...t, img: t.img.map((v) => v * 1e36), txt: t.txt.map((v) => v * 1e36) };
    const entry = await writeTrajectory(dir, 0, huge, {});
    await writeBufferManifest(dir, {
      format: BUFFER_FORMAT, kind: 'experts', dataset: 'toy', imageEncoder: 'toy', textEncoder: 'toy', dims: { img: 16, txt: 8, out: 6 },
      epochs: 3, seed: 0, config: {}, numExperts: 1, experts: [{ ...entry, seed: 0, wallSeconds: 0 }],
    });
    const { trajectories: teachers } = await readBuffer(dir);
    await assert.rejects(distillPhase({ ...input(config(), join(dir, 'p.ckpt')), trajectories: teachers }), (e: unknown) => {
      assert.ok(e instanceof NonFiniteError, String(e));
      assert.match(e.message, /^phase 0, iteration 1, teacher .*\/expert-000\.safetensors \(snapshots [01] → [12]\): matching loss is (NaN|-?Infinity); stopped\./);
      return true;
    });
  });

  it('names the phase field when the start range runs past the trajectory', async () => {
    const c = config({ phases: [{ start: [0, 3], size: 12, iterations: 2 }] });
    await assert.rejects(distillPhase(input(c, join(tempDir(), 'x.ckpt'))), /phases\[0\]\.start: max start 3 \+ expertStep 1 exceeds the last snapshot \(3\)/);
  });

  it('AMD asynchronous matching: off, the random stream is unchanged; on, the towers start at independent epochs', () => {
    const off = config();
    const on = config({ asyncStart: true });
    assert.equal('asyncStart' in off, false, 'absent when not set (existing keys and provenance hold)');
    const o = (c: DistillConfig) => ({ phase: { ...c.phases[0]!, start: [0, 2] as [number, number] }, config: c, trajectories, shape, dropout: 0 });
    const plain = sampleUnroll(rng(5), o(off));
    assert.equal(plain.startTxt, undefined);
    const starts = Array.from({ length: 40 }, (_, i) => sampleUnroll(rng(100 + i), o(on)));
    assert.ok(starts.some((d) => d.startTxt !== d.start), 'the text start differs from the image start in some draws');
    assert.ok(starts.every((d) => d.startTxt! >= 0 && d.startTxt! <= 2));
    // the teacher's text tower comes from its own snapshot, the image tower from the image start
    const t = teacherAt(trajectories[0]!, shape, 0, 1, 2);
    const p = trajectories[0]!.txt.length / 4;
    assert.deepEqual(Array.from(t.start.txt.dataSync()), Array.from(trajectories[0]!.txt.subarray(2 * p, 3 * p)));
    assert.deepEqual(Array.from(t.target.txt.dataSync()), Array.from(trajectories[0]!.txt.subarray(3 * p, 4 * p)));
    const q = trajectories[0]!.img.length / 4;
    assert.deepEqual(Array.from(t.start.img.dataSync()), Array.from(trajectories[0]!.img.subarray(0, q)));
    disposeTeacher(t);
    for (const d of [plain, ...starts]) for (const st of d.steps) (st.maskImg?.dispose(), st.maskTxt?.dispose());
  });

  it('EMA after n steps equals the closed form', () => {
    const d = 0.9;
    const xs = [2, -1, 4, 0.5];
    let ema = { v: tf.scalar(1) } as Record<string, tf.Tensor>;
    for (const x of xs) ema = emaUpdate(ema, { v: tf.scalar(x) }, d) as Record<string, tf.Tensor>;
    const n = xs.length;
    const closed = d ** n * 1 + (1 - d) * xs.reduce((a, x, k) => a + d ** (n - 1 - k) * x, 0);
    assert.ok(Math.abs(ema.v!.dataSync()[0]! - closed) < 1e-6);
  });
});
