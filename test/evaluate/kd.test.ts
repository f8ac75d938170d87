import { strict as assert } from 'node:assert';
import { ready } from '../../src/backend';
import { type EvalResult, evaluateMethod } from '../../src/evaluate';
import { loadKdTeacher } from '../../src/evaluate/student';
import { DataConfig } from '../../src/config/schemas';
import { loadFeatureSets, prepareFeatureSets } from '../../src/features/load';
import { unflattenTower } from '../../src/model/dual';
import { evaluateRetrieval } from '../../src/model/retrieval';
import { tf } from '../../src/backend';
import { buildBuffer } from '../../src/trajectory/buffer';
import { readBuffer } from '../../src/trajectory/store';
import { sharedCache, tempDir } from '../helpers';

/**
 * Knowledge distillation as an evaluation option, end to end on the shapes set: a random coreset's
 * students distil a trained expert. Whether KD helps is printed, not asserted (a small, noisy setting).
 */
describe('evaluate: knowledge distillation from a trained expert (shapes)', function () {
  this.timeout(600000);
  const workspace = tempDir();
  const data = { dataset: 'shapes', cacheDir: sharedCache() };
  const model = { dOut: 32 };
  let buffer = '';
  before(async () => {
    await ready(() => undefined);
    await prepareFeatureSets(data, ['train', 'val', 'test']);
    buffer = (await buildBuffer({ data, model, buffer: { numExperts: 1, epochs: 10, workers: 1 }, workspace })).dir;
  });

  const protocol = { runs: 3, epochs: 30, evalEvery: 10, decayEpoch: 20 };
  const method = { kind: 'coreset', selection: 'random', size: 50 };
  const evaluate = (kd: Record<string, unknown> | undefined, workers = 1) =>
    evaluateMethod({ data, model, method, eval: { ...protocol, ...(kd ? { kd } : {}) }, workers, workspace });
  const final = (r: EvalResult) => r.checkpoints.map((c) => c[c.length - 1]!.test.rMean);
  const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;

  it('a random coreset evaluated with KD runs and is finite; no soft weight is exactly plain training; the weightings differ; effect reported', async () => {
    const plain = await evaluate(undefined);
    const kd = await evaluate({ buffer }, 2); // defaults T = 4, α = 0.1, seed 003's weighting; two worker threads get the teacher
    const zero = await evaluate({ buffer, alpha: 0, weighting: 'soft-alpha' });
    const softAlpha = await evaluate({ buffer, weighting: 'soft-alpha' });
    for (const r of [plain, kd, zero, softAlpha]) {
      assert.equal(r.runs, 3);
      assert.ok(r.checkpoints.flat().every((c) => Object.values(c.test).every(Number.isFinite)));
    }
    assert.deepEqual(final(zero), final(plain), 'soft-alpha α = 0 trains exactly as without KD');
    assert.notDeepEqual(final(softAlpha), final(kd), 'the soft term weighs 0.1 in one, 0.9 in the other');
    const strong = await evaluate({ buffer, alpha: 0.5 });
    const { trajectories } = await readBuffer(buffer);
    const teacher = trajectories[0]!.retrieval.at(-1)!.rMean;
    const line = (name: string, r: EvalResult) =>
      `${name}: final test r_mean ${mean(final(r)).toFixed(2)} [${final(r).map((v) => v.toFixed(2)).join(', ')}], ` +
      `val-selected ${r.selections.val.rMean.mean.toFixed(2)}`;
    process.stdout.write(
      `      [kd effect, 50 random pairs, 3 runs, 30 epochs; teacher r_mean ${teacher.toFixed(2)}]\n` +
        `      ${line('plain', plain)}\n      ${line('KD T=4 α=0.1 (seed 003: soft 0.9)', kd)}\n      ${line('KD T=4 α=0.1 soft-alpha (soft 0.1)', softAlpha)}\n      ${line('KD T=4 α=0.5', strong)}\n`,
    );
  });

  it('the loaded teacher is the trained expert: it scores the test retrieval its buffer recorded', async () => {
    const [train, test] = await loadFeatureSets(DataConfig.parse(data), ['train', 'test']);
    const t = await loadKdTeacher({ buffer, teacherIndex: 0, temperature: 4, alpha: 0.1, weighting: 'hard-alpha' }, train!, 0.07);
    const theta = tf.tidy(() => ({ img: unflattenTower(tf.tensor1d(t.img), t.shape.img), txt: unflattenTower(tf.tensor1d(t.txt), t.shape.txt) }));
    const r = await evaluateRetrieval(theta, test!, 'teacher');
    tf.dispose([...Object.values(theta.img), ...Object.values(theta.txt)]);
    const { trajectories } = await readBuffer(buffer);
    assert.equal(r.rMean, trajectories[0]!.retrieval.at(-1)!.rMean);
  });

  it('a missing teacher is a clear error', async () => {
    await assert.rejects(evaluate({ buffer, teacherIndex: 5 }), /expert 5 is not finished|no finished expert/);
  });
});
