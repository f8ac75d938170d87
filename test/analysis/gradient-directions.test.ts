import { strict as assert } from 'node:assert';
import {
  type DirectionSetup,
  type DirectionStats,
  directionSetup,
  directionStats,
  gradientDirections,
  gradientDirectionsFromBuffer,
} from '../../src/analysis/gradient-directions';
import { ready, tf } from '../../src/backend';
import { distillIteration } from '../../src/distill/iteration';
import { disposeTeacher, similaritySpec, teacherAt } from '../../src/distill/phase-loop';
import { similarityBlock } from '../../src/distill/synthetic';
import type { FeatureSet } from '../../src/features/feature-set';
import { type DualParams, type Tower, TOWERS, disposeDual, dualGrads, dualShape, flattenTower, sgdStep } from '../../src/model/dual';
import { gatherRows } from '../../src/model/linalg';
import type { LossName } from '../../src/model/losses';
import { convexifyTrajectory } from '../../src/trajectory/convexify';
import { trainExpert } from '../../src/trajectory/expert';
import { BUFFER_FORMAT, type Trajectory, writeBufferManifest, writeTrajectory } from '../../src/trajectory/store';
import { rng } from '../../src/util/random';
import { tempDir, toySet } from '../helpers';


type Rows = Record<Tower, Float64Array>;
const row = (t: Trajectory, i: number): Rows => {
  const one = (tw: Tower) => {
    const p = t[tw].length / t.snapshots;
    return Float64Array.from(t[tw].subarray(i * p, (i + 1) * p));
  };
  return { img: one('img'), txt: one('txt') };
};
/** A trajectory made of the given snapshots (stored as float32, as a buffer stores them). */
const fromRows = (shape: Trajectory['shape'], rows: readonly Rows[]): Trajectory => ({
  shape,
  img: Float32Array.from(rows.flatMap((r) => [...r.img])),
  txt: Float32Array.from(rows.flatMap((r) => [...r.txt])),
  snapshots: rows.length,
  retrieval: [],
  retrievalVal: [],
});
const dot = (a: ArrayLike<number>, b: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
};
const close = (a: number, b: number, tol: number, what: string) => assert.ok(Math.abs(a - b) <= tol, `${what}: ${a} vs ${b} (tol ${tol})`);

function checkShape(s: DirectionStats, n: number) {
  assert.equal(s.cosine.length, n);
  for (let i = 0; i < n; i++) {
    close(s.cosine[i]![i]!, 1, 1e-12, `unit diagonal [${i}]`);
    for (let j = 0; j < n; j++) assert.equal(s.cosine[i]![j], s.cosine[j]![i], `symmetric [${i}][${j}]`);
  }
  assert.deepEqual(s.consecutive, Array.from({ length: n - 1 }, (_, i) => s.cosine[i]![i + 1]));
  let off = 0;
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) if (i !== j) off += s.cosine[i]![j]!;
  close(s.meanOffDiagonal, off / (n * (n - 1)), 1e-15, 'mean off-diagonal');
  assert.equal(s.norm.length, n);
  assert.equal(s.loss.length, n);
}

describe('analysis: gradient directions along trajectories', function () {
  this.timeout(300000);
  const shape = dualShape(16, 8, 6);
  let train: FeatureSet;
  let experts: Trajectory[];
  const common = () => ({
    train, shape, temperature: 0.07, dropout: 0.1, size: 12, seed: 3,
    distill: { synSteps: 3, batchSyn: 6 },
  });
  before(async () => {
    await ready(() => undefined);
    train = toySet(1);
    const opts = { epochs: 3, lrImg: 0.1, lrTxt: 0.1, batchSize: 16, dropout: 0.1, loss: 'infonce' as const, dOut: 6, temperature: 0.07 };
    experts = [];
    for (const seed of [2, 5]) experts.push({ ...(await trainExpert(train, {}, opts, rng(seed))), snapshots: 4 });
  });

  it('directionStats: cosines, norms and summaries of hand-made vectors, in float64', () => {
    const v = (...xs: number[]) => Float64Array.from(xs);
    const s = directionStats([v(1, 0), v(2, 0), v(-3, 0), v(0, 0.5)]);
    assert.deepEqual(s.norm, [1, 2, 3, 0.5]);
    assert.deepEqual(s.cosine, [
      [1, 1, -1, 0],
      [1, 1, -1, 0],
      [-1, -1, 1, 0],
      [0, 0, 0, 1],
    ]);
    assert.deepEqual(s.consecutive, [1, -1, 0]);
    close(s.meanOffDiagonal, (2 * (1 - 1 - 1)) / 12, 1e-15, 'mean');
    // a long vector whose float32 sum of squares would drift: 2^22 entries of 1e-3 and one of 1
    const long = new Float64Array(1 << 22).fill(1e-3);
    long[0] = 1;
    close(directionStats([long]).norm[0]!, Math.sqrt(1 + ((1 << 22) - 1) * 1e-6), 1e-9, 'float64 norm'); // a float32 running sum gives 2.236, 2 % short
    assert.ok(Number.isNaN(directionStats([v(0, 0), v(1, 0)]).cosine[0]![1]!), 'a zero gradient has no direction');
  });

  it('identical windows give cosine 1; the matrices are symmetric with unit diagonal', async () => {
    // each expert's snapshots A, B repeated: starts 0 and 2 are the same window A → B
    const rep = experts.map((t) => fromRows(shape, [row(t, 0), row(t, 1), row(t, 0), row(t, 1)]));
    const r = await gradientDirections({ ...common(), trajectories: rep });
    assert.deepEqual(r.starts, [0, 1, 2]);
    assert.deepEqual(r.keys, ['x', 'y', 'sFull']);
    assert.deepEqual(r.sizes, [12 * 16, 12 * 8, 12 * 12]);
    checkShape(r.original, 3);
    checkShape(r.shortcut, 3);
    close(r.original.cosine[0]![2]!, 1, 1e-12, 'same window, same draws');
    assert.equal(r.original.norm[0], r.original.norm[2]);
    assert.ok(r.original.cosine[0]![1]! < 0.999, 'the window B → A is another direction');
    assert.ok(r.original.norm.every((n) => n > 0 && Number.isFinite(n)));
  });

  it('norms and cosines match a direct float64 computation of the same gradients (original and shortcut)', async () => {
    const r = await gradientDirections({ ...common(), trajectories: experts });
    checkShape(r.original, 3);
    checkShape(r.shortcut, 3);
    const setup = directionSetup({ ...common(), trajectories: experts });
    const direct = async (trajs: readonly Trajectory[], t: number) => {
      const c = setup.config;
      const out: number[] = [];
      for (const traj of trajs) {
        const teacher = teacherAt(traj, shape, t, 1);
        const res = await distillIteration(setup.state, teacher, setup.steps, { loss: c.loss as LossName, temperature: 0.07, similarity: similaritySpec(c), mode: 'tesla' });
        disposeTeacher(teacher);
        const flat = ['x', 'y', 'sFull'].flatMap((k) => [...res.grads[k]!.dataSync()]);
        tf.dispose(Object.values(res.grads));
        flat.forEach((g, i) => (out[i] = (out[i] ?? 0) + g / trajs.length));
      }
      return out;
    };
    const shortcut = experts.map((t) => convexifyTrajectory(t, 0, 4));
    for (const [stats, trajs] of [[r.original, experts], [r.shortcut, shortcut]] as const) {
      const gs = [];
      for (const t of [0, 1, 2]) gs.push(await direct(trajs, t));
      gs.forEach((g, t) => close(stats.norm[t]!, Math.sqrt(dot(g, g)), 1e-9 * stats.norm[t]!, `norm at start ${t}`));
      close(stats.cosine[0]![2]!, dot(gs[0]!, gs[2]!) / Math.sqrt(dot(gs[0]!, gs[0]!) * dot(gs[2]!, gs[2]!)), 1e-9, 'cosine 0–2');
    }
    setup.dispose();
    // the experts' path bends, so its shortcut gives other gradients (the windows' endpoints differ)
    assert.ok(Math.abs(r.shortcut.norm[1]! - r.original.norm[1]!) > 1e-6 * r.original.norm[1]!);
  });

  it('a straight trajectory at a constant pace is its own shortcut: both give the same directions', async () => {
    const straight = experts.map((t) => {
      const a = row(t, 0);
      const b = row(t, 3);
      const at = (k: number): Rows => ({ img: a.img.map((v, i) => v + (k / 3) * (b.img[i]! - v)), txt: a.txt.map((v, i) => v + (k / 3) * (b.txt[i]! - v)) });
      return fromRows(shape, [at(0), at(1), at(2), at(3)]);
    });
    const r = await gradientDirections({ ...common(), trajectories: straight });
    for (let i = 0; i < 3; i++) {
      close(r.shortcut.norm[i]!, r.original.norm[i]!, 1e-3 * r.original.norm[i]!, `norm ${i}`);
      for (let j = 0; j < 3; j++) close(r.shortcut.cosine[i]![j]!, r.original.cosine[i]![j]!, 1e-4, `cosine ${i},${j}`);
    }
  });

  /*
   * Reversal. The TESLA data gradient is linear in the cotangent ∂ℓ/∂g_i = 2α(θ* − (θ_0 − αG)) / ‖θ_0 − θ*‖²
   * (matching.ts), which points from the student's endpoint θ_0 − αG to the target θ*, and the map from that
   * cotangent to the data gradient depends only on θ_0, the state and the draws. So flipping the target
   * around the student's endpoint, θ*± = θ_0 − αG ± d with d ⊥ G (per tower, so both ‖θ_0 − θ*±‖ are equal),
   * negates the cotangent and the gradient: cosine exactly −1. A naively reversed window is not −1:
   *  - (a → b) against (b → a) starts from another θ_0, so every g_i is taken at another point;
   *  - targets θ_0 ± d from the same start share the α²G part of the cotangent, so the two gradients are
   *    −A d + A αG and +A d + A αG (A linear): not opposite unless A αG = 0.
   */
  it('a target reversed about the student endpoint gives cosine −1; a naive reversal does not', async () => {
    const expert = experts[0]!;
    const setup: DirectionSetup = directionSetup({ ...common(), trajectories: [expert] });
    const theta0 = row(expert, 1);
    // G = Σ g_i of the unroll from θ_0 on the fixed draws (an independent re-computation of iteration.ts's forward pass)
    const teacher = teacherAt(expert, shape, 1, 1);
    const spec = similaritySpec(setup.config);
    let theta: DualParams = teacher.theta0;
    const G: Rows = { img: new Float64Array(theta0.img.length), txt: new Float64Array(theta0.txt.length) };
    const lr = { img: setup.state.lrImg as tf.Scalar, txt: setup.state.lrTxt as tf.Scalar };
    for (const step of setup.steps) {
      const { next, g } = tf.tidy(() => {
        const b = tf.tensor1d(step.batch, 'int32');
        const gr = dualGrads(
          theta,
          { x: gatherRows(setup.state.x as tf.Tensor2D, b), y: gatherRows(setup.state.y as tf.Tensor2D, b), s: similarityBlock(setup.state, spec, b), maskImg: step.maskImg, maskTxt: step.maskTxt },
          setup.config.loss as LossName,
          0.07,
        ).grads;
        return { next: sgdStep(theta, gr, lr), g: { img: flattenTower(gr.img), txt: flattenTower(gr.txt) } };
      });
      for (const tw of TOWERS) {
        const d = g[tw].dataSync();
        d.forEach((v, i) => (G[tw][i] += v));
        g[tw].dispose();
      }
      if (theta !== teacher.theta0) disposeDual(theta);
      theta = next;
    }
    disposeDual(theta);
    disposeTeacher(teacher);
    const alpha = { img: lr.img.dataSync()[0]!, txt: lr.txt.dataSync()[0]! };
    // d: a random direction per tower, orthogonal to G, as long as the expert's step θ_1 → θ_2
    const r = rng(11);
    const next = row(expert, 2);
    const d = {} as Rows;
    for (const tw of TOWERS) {
      const raw = theta0[tw].map(() => r.next() - 0.5);
      const proj = dot(raw, G[tw]) / dot(G[tw], G[tw]);
      const orth = raw.map((v, i) => v - proj * G[tw][i]!);
      const len = Math.sqrt(dot(next[tw].map((v, i) => v - theta0[tw][i]!), next[tw].map((v, i) => v - theta0[tw][i]!)));
      d[tw] = orth.map((v) => (v * len) / Math.sqrt(dot(orth, orth)));
    }
    const target = (sign: number, aboutEndpoint: boolean): Rows => {
      const one = (tw: Tower) => theta0[tw].map((v, i) => v - (aboutEndpoint ? alpha[tw] * G[tw][i]! : 0) + sign * d[tw][i]!);
      return { img: one('img'), txt: one('txt') };
    };
    setup.dispose();

    const mirrored = fromRows(shape, [theta0, target(1, true), theta0, target(-1, true)]);
    const m = await gradientDirections({ ...common(), trajectories: [mirrored], starts: [0, 2] });
    close(m.original.cosine[0]![1]!, -1, 1e-6, 'mirrored about the student endpoint');
    close(m.original.norm[0]!, m.original.norm[1]!, 1e-3 * m.original.norm[0]!, 'mirrored norms');

    const naive = fromRows(shape, [theta0, target(1, false), theta0, target(-1, false)]);
    const n = await gradientDirections({ ...common(), trajectories: [naive], starts: [0, 2] });
    // here the student's own step αG is far longer than the expert's step d, so the shared α²G part dominates
    // and the two naive windows even point the same way (cosine ≈ +0.97 on this toy set)
    assert.ok(n.original.cosine[0]![1]! > -1 + 1e-3, `not −1: ${n.original.cosine[0]![1]}`);
  });

  it('from a buffer folder: the same result as on the loaded trajectories, the experts\' temperature and dropout', async () => {
    const dir = tempDir();
    const entries = [];
    for (const [i, t] of experts.entries()) entries.push({ ...(await writeTrajectory(dir, i, t, {})), seed: i, wallSeconds: 0 });
    await writeBufferManifest(dir, {
      format: BUFFER_FORMAT, kind: 'experts', dataset: 'toy', imageEncoder: 'toy', textEncoder: 'toy', dims: { img: 16, txt: 8, out: 6 },
      epochs: 3, seed: 0, features: 'toy', config: { model: { dOut: 6, temperature: 0.07, dropout: 0.1 } }, numExperts: 2, experts: entries,
    });
    const { shape: _s, temperature: _t, dropout: _d, ...rest } = common();
    const viaBuffer = await gradientDirectionsFromBuffer({ ...rest, buffer: dir, starts: [0, 2] });
    const direct = await gradientDirections({ ...common(), trajectories: experts, starts: [0, 2] });
    assert.deepEqual(viaBuffer.original.cosine, direct.original.cosine);
    assert.deepEqual(viaBuffer.shortcut.norm, direct.shortcut.norm);
    await assert.rejects(gradientDirectionsFromBuffer({ ...rest, train: { ...train, digest: 'other' }, buffer: dir }), /trained on other features/);
  });

  it('disposes every tensor it creates (full and low-rank S) and rejects starts outside the slice', async () => {
    await gradientDirections({ ...common(), trajectories: experts, starts: [0] }); // warm-up (backend kernels)
    const before = tf.memory().numTensors;
    const r = await gradientDirections({ ...common(), trajectories: experts, slice: [1, 4] });
    assert.deepEqual(r.starts, [0, 1]);
    const lowrank = await gradientDirections({ ...common(), distill: { synSteps: 2, batchSyn: 6, similarity: 'lowrank', rank: 2 }, trajectories: experts });
    assert.deepEqual(lowrank.keys, ['x', 'y', 'sDiag', 'sL', 'sR']);
    await assert.rejects(gradientDirections({ ...common(), trajectories: experts, starts: [3] }), /starts must lie in \[0, 2\]/);
    await assert.rejects(gradientDirections({ ...common(), trajectories: experts, keys: ['x', 'w'] }), /keys \[w\]/);
    assert.equal(tf.memory().numTensors, before, 'no tensor outlives the analysis');
  });
});
