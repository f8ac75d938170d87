import { strict as assert } from 'node:assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ready } from '../../src/backend';
import { AdaptivePhases, DistillSpec } from '../../src/config/schemas';
import { ConfigError } from '../../src/errors';
import { distill } from '../../src/distill';
import { type TeacherTrajectory, adaptivePhases, segmentations } from '../../src/distill/adaptive-phases';
import { distillMethod } from '../../src/distill/methods';
import { readSyntheticSet } from '../../src/distill/synthetic-file';
import { prepareFeatureSets } from '../../src/features/load';
import { dualShape } from '../../src/model/dual';
import type { Retrieval } from '../../src/model/retrieval';
import { provenanceSummary } from '../../src/pipeline/origin';
import { repro } from '../../src/pipeline/repro';
import { buildBuffer } from '../../src/trajectory/buffer';
import { readBuffer, type Trajectory } from '../../src/trajectory/store';
import { sharedCache, tempDir } from '../helpers';

const score = (rMean: number): Retrieval => ({ ir1: rMean, ir5: rMean, ir10: rMean, tr1: rMean, tr5: rMean, tr10: rMean, rMean });

/** One expert whose image tower's one parameter is at `positions[e]` at snapshot e (text tower still), with validation `val`. */
function teacher(positions: number[], val: number[] = []): TeacherTrajectory {
  return { img: Float32Array.from(positions), txt: new Float32Array(positions.length), snapshots: positions.length, retrievalVal: val.map(score) };
}
/** Positions from steps: [0, s0, s0 + s1, ...]. */
const walk = (steps: number[]) => steps.reduce((p, s) => [...p, p[p.length - 1]! + s], [0]);
const spec = (o: Record<string, unknown> = {}) => AdaptivePhases.parse({ rule: 'adaptive', budget: 100, iterations: 5, ...o });
const windows = (c: ReturnType<typeof adaptivePhases>) => c.phases.map((p) => [p.source, p.start, p.size]);

describe('adaptive phases: P, windows, starts and sizes from the expert trajectories', () => {
  it('fast then plateau: two regimes cut where the pace drops; windows end at each regime, starts its first epochs', () => {
    // steps 4 4 4 1 1 1; no validation curve: the horizon is where 95% of the path (15) is travelled: epoch 6
    const c = adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]))], spec(), 1);
    assert.deepEqual([c.horizon, c.horizonFrom, c.regimes], [6, 'parameters', [[0, 3], [3, 6]]]);
    assert.deepEqual(c.stepNorms, [4, 4, 4, 1, 1, 1]);
    assert.deepEqual(windows(c), [
      [[0, 4], [0, 1], 49],
      [[0, 7], [3, 4], 50],
    ]);
    assert.ok(c.phases.every((p) => p.iterations === 5));
    assert.match(c.text, /2 regimes \[0, 3\) \[3, 6\) → ST \[0, 4\) starts 0–1 × 49 pairs, ST \[0, 7\) starts 3–4 × 50 pairs/);
  });

  it('the step size is averaged over experts and both towers (one vector per snapshot)', () => {
    // expert 1: image steps 3, text steps 4 → ‖(3, 4)‖ = 5; expert 2: 1 → mean 3
    const a = { ...teacher([0, 3, 6]), txt: Float32Array.from([0, 4, 8]) };
    assert.deepEqual(adaptivePhases([a, teacher([0, 1, 2])], spec(), 1).stepNorms, [3, 3]);
  });

  it('a flat trajectory is one phase over the whole horizon; a still one too', () => {
    const flat = adaptivePhases([teacher(walk([2, 2, 2, 2, 2, 2]))], spec(), 1);
    assert.deepEqual([flat.horizon, flat.regimes, windows(flat)], [6, [[0, 6]], [[[0, 7], [0, 1], 100]]]);
    const still = adaptivePhases([teacher([5, 5, 5, 5])], spec(), 1);
    assert.deepEqual([still.horizon, still.horizonFrom, still.regimes, windows(still)], [3, 'parameters', [[0, 3]], [[[0, 4], [0, 1], 100]]]);
  });

  it('a validation curve that peaks early ends the horizon at the peak (the later epochs are not matched)', () => {
    // val rises 0 → 25 at epoch 3, then falls: 95% of the gain (23.75) first at epoch 3
    const c = adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]), [0, 10, 20, 25, 24, 22, 20])], spec(), 1);
    assert.deepEqual([c.horizon, c.horizonFrom, c.regimes], [3, 'validation', [[0, 3]]]);
    assert.deepEqual(windows(c), [[[0, 4], [0, 1], 100]]);
    assert.deepEqual(c.validation, [0, 10, 20, 25, 24, 22, 20]);
    // the horizon is the first epoch reaching the share: 80% of 25 = 20, reached at epoch 2
    assert.equal(adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]), [0, 10, 20, 25, 24, 22, 20])], spec({ gainShare: 0.8 }), 1).horizon, 2);
    // a curve that never rises gives no horizon: the parameters' path does (95% of 15 → epoch 6)
    assert.deepEqual(adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]), [5, 5, 4, 3, 3, 3, 3])], spec(), 1).horizonFrom, 'parameters');
  });

  it('three paces: three regimes, sizes in proportion to their lengths; maxPhases and minExplained cap them', () => {
    // steps 8 8 2 2 .5 .5 (log levels 3, 1, −1), validation rising to the end (horizon 6)
    const t = [teacher(walk([8, 8, 2, 2, 0.5, 0.5]), [0, 1, 2, 3, 4, 5, 6])];
    const three = adaptivePhases(t, spec(), 1);
    assert.deepEqual(three.regimes, [[0, 2], [2, 4], [4, 6]]);
    // budget − 1 = 99 pairs in thirds
    assert.deepEqual(windows(three), [
      [[0, 3], [0, 1], 33],
      [[0, 5], [2, 3], 33],
      [[0, 7], [4, 5], 33],
    ]);
    // 199 = 65.33 each: the one left over goes to the first
    assert.deepEqual(adaptivePhases(t, spec({ budget: 200 }), 1).phases.map((p) => p.size), [67, 66, 66]);
    // two regimes at most: the two best cuts tie (SSE 4 ln²2 either way), the earlier wins; sizes as PTM's
    assert.deepEqual(windows(adaptivePhases(t, spec({ maxPhases: 2 }), 1)), [
      [[0, 3], [0, 1], 49],
      [[0, 7], [2, 3], 50],
    ]);
    // the third regime removes 25% of the one-regime spread (SSE 16 ln²2 → 4 ln²2 → 0): refused at 30%
    assert.equal(adaptivePhases(t, spec({ minExplained: 0.3 }), 1).regimes.length, 2);
    assert.throws(() => adaptivePhases(t, spec({ budget: 3 }), 1), (e: unknown) => e instanceof ConfigError && /budget: 3 pairs cannot fill 3 phases/.test(e.message));
  });

  it('the segmentation is the least-squares optimum (brute force over every cut) and respects the minimum length', () => {
    const x = [3.1, 2.9, 3.4, 1.2, 0.8, 1.1, 1.0, -0.5];
    const cost = (s: number[]) => {
      const m = s.reduce((a, b) => a + b, 0) / s.length;
      return s.reduce((a, b) => a + (b - m) ** 2, 0);
    };
    const { sse, cuts } = segmentations(x, 3, 2);
    let best = Infinity;
    let arg: number[] = [];
    for (let i = 2; i <= x.length - 4; i++) {
      for (let j = i + 2; j <= x.length - 2; j++) {
        const c = cost(x.slice(0, i)) + cost(x.slice(i, j)) + cost(x.slice(j));
        if (c < best) [best, arg] = [c, [i, j]];
      }
    }
    assert.ok(Math.abs(sse[2]! - best) < 1e-12);
    assert.deepEqual(cuts[2], arg);
    assert.deepEqual(cuts[1], [3]);
    assert.ok(Math.abs(sse[0]! - cost(x)) < 1e-12);
  });

  it('expertStep M: every start has its target inside its window, every regime is at least M epochs', () => {
    const c = adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]))], spec(), 2);
    assert.deepEqual(windows(c), [
      [[0, 4], [0, 1], 49],
      [[0, 7], [3, 4], 50],
    ]);
    for (const p of c.phases) assert.ok(p.start[1] + 2 <= (p.source as [number, number])[1] - 1);
    assert.throws(() => adaptivePhases([teacher([0, 1, 2])], spec(), 2), (e: unknown) => e instanceof ConfigError && /expertStep 2/.test(e.message));
  });

  it('reads no test split: the input type has none, and experts that differ only in their test scores give the same choice', () => {
    const val = [0, 10, 20, 25, 24, 22, 20];
    const make = (test: number[]): Trajectory => ({ ...teacher(walk([4, 4, 4, 1, 1, 1])), retrievalVal: val.map(score), shape: dualShape(1, 1, 1), retrieval: test.map(score) });
    const early = adaptivePhases([make([0, 30, 10, 5, 5, 5, 5])], spec(), 1);
    const late = adaptivePhases([make([0, 1, 2, 3, 4, 5, 60])], spec(), 1);
    assert.deepEqual(late, early);
    // the validation curve does matter (so the test above could fail): with the test curve as validation, the choice moves
    const asVal = adaptivePhases([teacher(walk([4, 4, 4, 1, 1, 1]), [0, 1, 2, 3, 4, 5, 60])], spec(), 1);
    assert.notDeepEqual(asVal.phases, early.phases);
  });

  it('DATM: the budget moves every start and window end, monotonically, by round(log2(budget / reference)) epochs', () => {
    const t = [teacher(walk([4, 4, 4, 1, 1, 1]))];
    const at = (budget: number) => adaptivePhases(t, spec({ budget, datm: {} }), 1);
    assert.deepEqual([25, 100, 200, 300, 400, 1600].map((b) => at(b).shift), [-3, -1, 0, 1, 1, 3]);
    assert.deepEqual(at(200).phases.map((p) => [p.source, p.start]), adaptivePhases(t, spec({ budget: 200 }), 1).phases.map((p) => [p.source, p.start]));
    assert.deepEqual(at(100).phases.map((p) => [p.source, p.start]), [[[0, 3], [0, 0]], [[0, 6], [2, 3]]]);
    assert.deepEqual(at(400).phases.map((p) => [p.source, p.start]), [[[0, 5], [1, 2]], [[0, 7], [4, 5]]]);
    const budgets = [3, 10, 25, 50, 100, 150, 200, 300, 500, 1000, 5000];
    for (let k = 1; k < budgets.length; k++) {
      const [a, b] = [at(budgets[k - 1]!), at(budgets[k]!)];
      a.phases.forEach((p, i) => {
        const q = b.phases[i]!;
        const [pe, qe] = [(p.source as [number, number])[1], (q.source as [number, number])[1]];
        assert.ok(q.start[0] >= p.start[0] && q.start[1] >= p.start[1] && qe >= pe, `budget ${budgets[k - 1]} → ${budgets[k]}, phase ${i}`);
        assert.ok(q.start[0] <= q.start[1] && q.start[1] + 1 <= qe - 1 && qe <= 7);
      });
    }
    // the reference budget and the epochs per doubling are settings
    assert.equal(adaptivePhases(t, spec({ budget: 400, datm: { referenceBudget: 100, epochsPerDoubling: 0.5 } }), 1).shift, 1);
  });

  it('the registry methods: ptm-st-adaptive (and -datm) are PTM-ST with an adaptive schedule; --iterations reaches it', () => {
    const c = DistillSpec.parse(distillMethod('ptm-st-adaptive').config(200, { iterations: 7 }));
    assert.deepEqual([c.phases, c.ema, c.similarity], [{ rule: 'adaptive', budget: 200, iterations: 7, maxPhases: 3, gainShare: 0.95, minExplained: 0.2, startWidth: 2 }, 0.99, 'full']);
    const d = DistillSpec.parse(distillMethod('ptm-st-adaptive-datm').config(500));
    assert.deepEqual(Array.isArray(d.phases) ? null : d.phases.datm, { referenceBudget: 200, epochsPerDoubling: 1 });
    assert.equal(distillMethod('ptm-st-adaptive').label, 'PTM-ST (adaptive)');
    // a bad schedule is one error naming its field
    const bad = DistillSpec.safeParse({ phases: { rule: 'adaptive', budget: 2 } });
    assert.deepEqual(bad.success ? [] : bad.error.issues.map((i) => i.path.join('.')), ['phases.budget']);
  });

  describe('the distill stage resolves the schedule from the buffer, prints and records it', function () {
    this.timeout(600000);
    const workspace = tempDir();
    const data = { dataset: 'shapes', cacheDir: sharedCache() };
    it('on a 1-expert, 2-epoch shapes buffer', async () => {
      await ready(() => undefined);
      await prepareFeatureSets(data, ['train', 'val', 'test']);
      const experts = await buildBuffer({ data, model: { dOut: 8 }, buffer: { numExperts: 1, epochs: 2, workers: 1 }, workspace });
      const lines: string[] = [];
      const schedule = { rule: 'adaptive', budget: 6, iterations: 1 };
      const r = await distill({ data, expertBuffer: experts.dir, workspace, workers: 1, name: 'adaptive', distill: { batchSyn: 4, synSteps: 2, phases: schedule } }, undefined, {
        log: (l) => lines.push(l),
      });
      const expected = adaptivePhases((await readBuffer(experts.dir)).trajectories, spec(schedule), 1);
      assert.deepEqual(r.adaptive, expected);
      assert.deepEqual(r.phases.map((p) => [p.size, p.iterations]), expected.phases.map((p) => [p.size, p.iterations]));
      assert.ok(lines.includes(expected.text), 'the choice is printed');
      const record = JSON.parse(readFileSync(join(r.dir, 'synthetic.json'), 'utf8'));
      assert.deepEqual(record.config.distill.phases, expected.phases);
      assert.deepEqual(record.adaptive.phases, expected.phases);
      assert.equal(record.adaptive.schedule.budget, 6);
      const set = await readSyntheticSet(r.file);
      assert.deepEqual((set.provenance.adaptive as { regimes: unknown }).regimes, expected.regimes);
      assert.equal(set.phases.reduce((a, p) => a + p.n, 0), expected.phases.reduce((a, p) => a + p.size, 0));
    });

    it('a repro row records the resolved phases and the schedule beside them', async () => {
      // the same features and experts as above (same workspace, model and buffer settings)
      const res = await repro({
        name: 'adaptive-repro',
        data,
        model: { dOut: 8 },
        buffer: { numExperts: 1, epochs: 2, workers: 1 },
        eval: { runs: 1, epochs: 1, evalEvery: 1, decayEpoch: 1 },
        methods: [{ name: 'adaptive-6', kind: 'method', method: 'ptm-st-adaptive', budget: 6, overrides: { iterations: 1, synSteps: 2, batchSyn: 4 } }],
        workspace,
        workers: 1,
      });
      const expected = adaptivePhases((await readBuffer(res.experts!)).trajectories, spec({ budget: 6, iterations: 1 }), 1);
      const resolved = res.origin!.rows[0]!.resolved;
      assert.deepEqual(resolved.distill!.phases, expected.phases);
      assert.deepEqual(resolved.schedule, spec({ budget: 6, iterations: 1 }));
      assert.match(provenanceSummary(res), /adaptive phases \(ST \[0, \d\) starts \d–\d/);
    });
  });
});
