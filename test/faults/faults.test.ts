/**
 * The fault suite (issue "Trustworthy numbers and files"): on the generated shapes set, through the CLI as a
 * user runs it — kill -9 at random moments of every stage and resume (bit-identical result), corrupted and
 * hostile files of every kind the project reads (one clear error naming the file, then `--force` rebuilds),
 * NaN injection (stopped with exit 4, naming method, run and epoch), and a full disk (exit 5, no truncated
 * file under a final name, a clean rerun finishes with the same result).
 *
 * Quick by default (one kill per stage); `PTMST_FAULTS=long` kills each stage five times.
 */
import { strict as assert } from 'node:assert';
import { type SpawnSyncReturns, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { readSafetensors, writeSafetensors } from '../../src/store/safetensors';
import { rng } from '../../src/util/random';
import { sha256 } from '../../src/store/atomic';
import { REPO, editBufferManifest, editExpertFile, readOnlyMount, stripExpertDigest, sharedCache, tempDir } from '../helpers';

const CLI = join(REPO, 'dist', 'src', 'cli', 'main.js');
const KILLS = process.env.PTMST_FAULTS === 'long' ? 5 : 1;

interface Result {
  readonly code: number | null;
  readonly err: string;
  readonly seconds: number;
}

function ptmst(cwd: string, args: readonly string[], env: Record<string, string> = {}): Result {
  const t0 = performance.now();
  const r: SpawnSyncReturns<string> = spawnSync(process.execPath, [CLI, ...args, '--no-progress'], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, PTMST_DATA_ROOT: '', ...env },
  });
  return { code: r.status, err: r.stderr, seconds: (performance.now() - t0) / 1000 };
}

/** Start a command and SIGKILL it after `ms`; resolves when it is gone (or had finished). */
function killAfter(cwd: string, args: readonly string[], ms: number): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args, '--no-progress'], { cwd, stdio: 'ignore', env: { ...process.env, PTMST_DATA_ROOT: '' } });
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('exit', () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

const config = {
  name: 'faults',
  data: { dataset: 'shapes', cacheDir: sharedCache() },
  model: { dOut: 32 },
  buffer: { numExperts: 2, epochs: 3, workers: 1 },
  distill: {
    phases: [
      { source: [0, 3], start: [0, 1], size: 10, iterations: 30 },
      { source: [0, 4], start: [1, 2], size: 10, iterations: 30 },
    ],
    batchSyn: 8,
    synSteps: 4,
    checkpointEvery: 5,
  },
  eval: { runs: 3, epochs: 10, evalEvery: 5, decayEpoch: 5 },
};

const BUFFER = join('buffers', 'shapes-mobilenet_v2-wink-sg-100d-d32-s0-e3');
const STAGES = {
  buffer: ['buffer', '--config', 'faults.json'],
  distill: ['distill', '--config', 'faults.json', '--workers', '1'],
  eval: ['eval', '--config', 'faults.json', '--synthetic', join('runs', 'faults', 'synthetic.safetensors'), '--out', 'evalrec'],
} as const;

function workspace(): string {
  const cwd = tempDir('ptmst-faults-');
  writeFileSync(join(cwd, 'faults.json'), JSON.stringify(config));
  return cwd;
}

/** What a stage produced, as comparable strings (wall times and paths left out). */
async function fingerprint(cwd: string, stage: keyof typeof STAGES): Promise<string[]> {
  if (stage === 'buffer') {
    const m = JSON.parse(readFileSync(join(cwd, BUFFER, 'manifest.json'), 'utf8')) as { experts: { index: number; sha256: string }[] };
    return m.experts.map((e) => `${e.index}:${e.sha256}`);
  }
  if (stage === 'distill') {
    const out: string[] = [];
    for (const k of [0, 1]) {
      const st = await readSafetensors(join(cwd, 'runs', 'faults', `phase-${k}.safetensors`));
      for (const [name, t] of st.tensors) out.push(`${k}.${name}:${Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString('base64')}`);
    }
    return out;
  }
  return readdirSync(join(cwd, 'evalrec'))
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => JSON.stringify((JSON.parse(readFileSync(join(cwd, 'evalrec', f), 'utf8')) as { checkpoints: unknown }).checkpoints));
}

/** Flip one byte of a file (an exponent byte of a float in the data section, for safetensors). */
function flipByte(file: string, fromEnd = 2): void {
  const b = readFileSync(file);
  b[b.length - fromEnd] = b[b.length - fromEnd]! ^ 0x40;
  writeFileSync(file, b);
}

describe('faults: kill, corrupt, poison and fill the disk on the shapes set', function () {
  this.timeout(1800000);
  const straight = workspace();
  const seconds: Record<string, number> = {};
  const reference: Record<string, string[]> = {};

  before(async () => {
    // features (shared cache) first, so the stage timings below are the stages' own
    const f = ptmst(straight, ['features', '--dataset', 'shapes', '--cache-dir', sharedCache()]);
    assert.equal(f.code, 0, f.err);
    for (const stage of ['buffer', 'distill', 'eval'] as const) {
      const r = ptmst(straight, STAGES[stage]);
      assert.equal(r.code, 0, `${stage}: ${r.err}`);
      seconds[stage] = r.seconds;
      reference[stage] = await fingerprint(straight, stage);
    }
  });

  describe('kill -9 at random moments, then resume: the result is bit-identical', () => {
    const rand = rng(2026);
    for (const stage of ['buffer', 'distill', 'eval'] as const) {
      it(`${stage} (${KILLS} kill${KILLS > 1 ? 's' : ''})`, async () => {
        const cwd = workspace();
        if (stage !== 'buffer') cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
        if (stage === 'eval') cpSync(join(straight, 'runs'), join(cwd, 'runs'), { recursive: true });
        for (let k = 0; k < KILLS; k++) await killAfter(cwd, STAGES[stage], (0.2 + 0.7 * rand.next()) * seconds[stage]! * 1000);
        const r = ptmst(cwd, STAGES[stage]);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(await fingerprint(cwd, stage), reference[stage]);
      });
    }

    it(`features (${KILLS} kill${KILLS > 1 ? 's' : ''}), while a second process asks for the same features`, async () => {
      // fresh feature caches that share the generated photos (generating them takes ~20 s)
      const freshCache = () => {
        const dir = tempDir('ptmst-faults-cache-');
        cpSync(join(sharedCache(), 'generated'), join(dir, 'generated'), { recursive: true });
        return dir;
      };
      const cache = freshCache();
      const args = ['features', '--dataset', 'shapes', '--cache-dir', cache, '--splits', 'val', '--chunk-size', '16', '--workers', '1'];
      const straightCache = freshCache();
      const s = ptmst(straight, ['features', '--dataset', 'shapes', '--cache-dir', straightCache, '--splits', 'val', '--chunk-size', '16', '--workers', '1']);
      assert.equal(s.code, 0, s.err);
      for (let k = 0; k < KILLS; k++) await killAfter(straight, args, (0.2 + 0.7 * rand.next()) * s.seconds * 1000);
      // two runs at once on the same cache: one waits for the other and reuses its result
      const [a, b] = await Promise.all([0, 1].map(() => new Promise<number | null>((resolve) => {
        const c = spawn(process.execPath, [CLI, ...args, '--no-progress'], { cwd: straight, stdio: 'ignore' });
        c.on('exit', resolve);
      })));
      assert.deepEqual([a, b], [0, 0]);
      const file = (root: string) => readFileSync(join(root, 'features', 'shapes', 'val.image.mobilenet_v2.safetensors'));
      assert.ok(file(cache).equals(file(straightCache)), 'same features as an uninterrupted run');
      assert.deepEqual(readdirSync(join(cache, 'features', 'shapes')).filter((n) => n.endsWith('.partial') || n.endsWith('.lock')), []);
    });
  });

  describe('corrupted files: one error naming the file (exit 3), then --force rebuilds the same result', () => {
    it('a synthetic set with one flipped exponent is refused', () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      cpSync(join(straight, 'runs'), join(cwd, 'runs'), { recursive: true });
      const file = join(cwd, 'runs', 'faults', 'synthetic.safetensors');
      flipByte(file);
      const r = ptmst(cwd, [...STAGES.eval.slice(0, 3), '--synthetic', file]);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, new RegExp(`${file}: content digest mismatch`));
    });

    it('a phase file, an expert file and an evaluation record', async () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      cpSync(join(straight, 'runs'), join(cwd, 'runs'), { recursive: true });
      cpSync(join(straight, 'evalrec'), join(cwd, 'evalrec'), { recursive: true });
      const cases = [
        { stage: 'distill', file: join('runs', 'faults', 'phase-1.safetensors') },
        { stage: 'buffer', file: join(BUFFER, 'expert-001.safetensors') },
        { stage: 'eval', file: join('evalrec', 'run-002.json') },
      ] as const;
      for (const { stage, file } of cases) {
        if (file.endsWith('.json')) writeFileSync(join(cwd, file), readFileSync(join(cwd, file), 'utf8').replace(/"rMean": (\d)/, '"rMean": 9$1'));
        else flipByte(join(cwd, file));
        const r = ptmst(cwd, STAGES[stage]);
        assert.equal(r.code, 3, `${stage}: ${r.err}`);
        assert.match(r.err, new RegExp(`${file.replace(/[.]/g, '\\.')}: .*rerun with --force`), stage);
        const forced = ptmst(cwd, [...STAGES[stage], '--force']);
        assert.equal(forced.code, 0, forced.err);
        assert.deepEqual(await fingerprint(cwd, stage), reference[stage], stage);
      }
    });

    it('a finished phase holding NaN (with a valid digest) is refused, not used', async () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      cpSync(join(straight, 'runs'), join(cwd, 'runs'), { recursive: true });
      const file = join(cwd, 'runs', 'faults', 'phase-0.safetensors');
      const st = await readSafetensors(file);
      const tensors = Object.fromEntries([...st.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
      (tensors.x!.data as Float32Array)[3] = NaN;
      await writeSafetensors(file, tensors, st.metadata);
      const r = ptmst(cwd, STAGES.distill);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /phase-0\.safetensors: x holds NaN or infinite values/);
    });

    it('a buffer manifest naming one expert file under two indices', () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      const file = join(cwd, BUFFER, 'manifest.json');
      const m = JSON.parse(readFileSync(file, 'utf8')) as { experts: { file: string; sha256: string; bytes: number }[] };
      m.experts[1] = { ...m.experts[1]!, file: m.experts[0]!.file, sha256: m.experts[0]!.sha256, bytes: m.experts[0]!.bytes };
      writeFileSync(file, JSON.stringify(m));
      const r = ptmst(cwd, ['eval', '--config', 'faults.json', '--full']);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /manifest\.json: buffer manifest field experts: an expert file is not named expert-<index>\.safetensors/);
    });

    it('a buffer manifest with one expert entry deleted: refused (exit 3) naming the manifest, never scored on the rest', async () => {
      for (const fixedUp of [false, true]) {
        const cwd = workspace();
        cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
        const dir = join(cwd, BUFFER);
        if (fixedUp) await editBufferManifest(dir, (m) => void m.experts.splice(1, 1));
        else {
          const m = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { experts: unknown[] };
          m.experts.splice(1, 1);
          writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
        }
        const r = ptmst(cwd, ['eval', '--config', 'faults.json', '--full']);
        assert.equal(r.code, 3, r.err);
        assert.match(r.err, fixedUp ? /manifest\.json: .*promises 2 experts and lists 1 \(expert 1 missing\)/ : /manifest\.json: .*digest mismatch/);
        assert.doesNotMatch(r.err, /r_mean/);
      }
    });

    it('an expert file holding NaN or -1e9 retrieval scores, or NaN parameters (checksums fixed up): refused (exit 3) naming it', async () => {
      const cases = [
        ['retrieval', NaN, /retrieval holds NaN or infinite values/],
        ['retrieval', -1e9, /retrieval holds -1000000000 .*outside \[0, 100\]/],
        ['img', NaN, /img holds NaN or infinite values/],
      ] as const;
      for (const [tensor, value, reason] of cases) {
        const cwd = workspace();
        cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
        const file = await editExpertFile(join(cwd, BUFFER), 1, (t) => void (t[tensor]!.data[5] = value));
        for (const args of [['eval', '--config', 'faults.json', '--full'], STAGES.distill]) {
          const r = ptmst(cwd, args);
          assert.equal(r.code, 3, `${tensor} = ${value}, ${args[0]}: ${r.err}`);
          assert.match(r.err, new RegExp(`${file.replace(/[.]/g, '\\.')}: ${reason.source}`));
          assert.doesNotMatch(r.err, /r_mean/);
        }
      }
    });

    it('an evaluation record holding a score out of [0, 100] (checksum fixed up) is refused, naming it', () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      cpSync(join(straight, 'runs'), join(cwd, 'runs'), { recursive: true });
      cpSync(join(straight, 'evalrec'), join(cwd, 'evalrec'), { recursive: true });
      const file = join(cwd, 'evalrec', 'run-001.json');
      const rec = JSON.parse(readFileSync(file, 'utf8')) as { checkpoints: { test: { ir1: number } }[]; sha256: string };
      rec.checkpoints[0]!.test.ir1 = -1e9;
      rec.sha256 = sha256(JSON.stringify(rec.checkpoints));
      writeFileSync(file, JSON.stringify(rec, null, 2));
      const r = ptmst(cwd, STAGES.eval);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /run-001\.json: evaluation record field checkpoints\.0\.test\.ir1: .*rerun with --force/);
    });

    it('artefacts an older ptmst wrote without a digest: one message saying --force, which rebuilds the same result', async () => {
      // an expert file without its digest (manifest checksum fixed up): retrained by --force to the same bytes
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      const dir = join(cwd, BUFFER);
      await stripExpertDigest(dir, 0);
      const r = ptmst(cwd, STAGES.buffer);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /expert-000\.safetensors: has no ptmst\.digest.*rerun with --force/);
      const forced = ptmst(cwd, [...STAGES.buffer, '--force']);
      assert.equal(forced.code, 0, forced.err);
      assert.deepEqual(await fingerprint(cwd, 'buffer'), reference.buffer);

      // a manifest without its digest: --force verifies the experts it lists and rewrites it, retraining none
      const { sha256: _d, ...m } = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(m, null, 2));
      const old = ptmst(cwd, ['eval', '--config', 'faults.json', '--full']);
      assert.equal(old.code, 3, old.err);
      assert.match(old.err, /manifest\.json: has no digest .*rerun ptmst buffer with --force/);
      const rewritten = ptmst(cwd, [...STAGES.buffer, '--force', '--json', 'rewritten.json']);
      assert.equal(rewritten.code, 0, rewritten.err);
      assert.equal((JSON.parse(readFileSync(join(cwd, 'rewritten.json'), 'utf8')) as { trained: number }).trained, 0);
      assert.deepEqual(await fingerprint(cwd, 'buffer'), reference.buffer);
      assert.equal(ptmst(cwd, ['eval', '--config', 'faults.json', '--full']).code, 0);
    });

    it('a buffer manifest listing one expert twice', () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      const file = join(cwd, BUFFER, 'manifest.json');
      const m = JSON.parse(readFileSync(file, 'utf8')) as { experts: unknown[] };
      m.experts.push(m.experts[0]);
      writeFileSync(file, JSON.stringify(m));
      const r = ptmst(cwd, STAGES.distill);
      assert.equal(r.code, 3, r.err);
      assert.match(r.err, /manifest\.json: buffer manifest field experts: an expert index is listed twice/);
    });
  });

  describe('NaN injection: the run stops (exit 4) naming method, run and epoch', () => {
    it('a student whose learning rate diverges is never scored', () => {
      const cwd = workspace();
      writeFileSync(join(cwd, 'nan.json'), JSON.stringify({ ...config, eval: { ...config.eval, realLr: 1e8 } }));
      const r = ptmst(cwd, ['eval', '--config', 'nan.json', '--random', '40', '--out', 'nanrec']);
      assert.equal(r.code, 4, r.err);
      assert.match(r.err, /random coreset \(40 pairs\), run \d: the training loss or the parameters became NaN or infinite in subset 1, epoch \d+; stopped/);
      assert.doesNotMatch(r.err, /r_mean/);
    });

    it('a student whose parameters stay finite but whose scores overflow is never scored either', () => {
      const cwd = workspace();
      writeFileSync(join(cwd, 'big.json'), JSON.stringify({ ...config, eval: { ...config.eval, realLr: 1e30, epochs: 1, runs: 1 } }));
      const r = ptmst(cwd, ['eval', '--config', 'big.json', '--random', '40', '--out', 'bigrec']);
      assert.equal(r.code, 4, r.err);
      assert.match(r.err, /random coreset \(40 pairs\), run 1.*(NaN or infinite)/);
      assert.doesNotMatch(r.err, /r_mean/);
    });
  });

  describe('a full disk: exit 5 naming the file, nothing truncated, a rerun finishes the same', () => {
    it('distill and eval', async () => {
      const cwd = workspace();
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      for (const [stage, bytes] of [['distill', 600_000], ['eval', 2_000]] as const) {
        const r = ptmst(cwd, STAGES[stage], { PTMST_FAULT_DISK_FULL_AFTER: String(bytes) });
        assert.equal(r.code, 5, `${stage}: ${r.err}`);
        assert.match(r.err, /cannot write .*: no space left on device \(ENOSPC\); nothing was written under this name/);
        // every file under a final name is whole
        const dir = stage === 'distill' ? join(cwd, 'runs', 'faults') : join(cwd, 'evalrec');
        for (const f of existsSync(dir) ? readdirSync(dir) : []) {
          assert.doesNotMatch(f, /\.tmp$/, 'no temporary file is left');
          if (f.endsWith('.safetensors')) await readSafetensors(join(dir, f), { requireDigest: true });
          if (f.endsWith('.json')) JSON.parse(readFileSync(join(dir, f), 'utf8'));
        }
        const again = ptmst(cwd, STAGES[stage]);
        assert.equal(again.code, 0, again.err);
        assert.deepEqual(await fingerprint(cwd, stage), reference[stage]);
      }
    });
  });

  describe('user mistakes: one line and the documented exit code', () => {
    const cases: [string, string[], number, RegExp][] = [
      ['an unknown config section', ['buffer', '--config', 'typo.json'], 2, /unknown section\(s\) modle/],
      ['a run name that climbs out of runs/', ['distill', '--config', 'climb.json'], 2, /field name: use letters, digits/],
      ['a coreset larger than the data set', ['eval', '--config', 'faults.json', '--random', '100000'], 2, /a coreset of 100000 pairs is larger than the 2500 training pairs/],
      ['a start range beyond the buffer', ['distill', '--config', 'late.json'], 2, /phases\[0\]\.start: max start 5 \+ expertStep 1 exceeds the last snapshot/],
      ['an unknown dataset', ['features', '--dataset', 'mnist'], 2, /unknown dataset "mnist"; valid: flickr8k/],
      ['an unknown encoder', ['features', '--dataset', 'shapes', '--cache-dir', sharedCache(), '--image-encoder', 'resnet'], 2, /unknown image encoder "resnet"/],
      ['a zero temperature', ['step', '--state', 'x', '--out', 'y', '--temperature', '0'], 2, /--temperature: 0 must be > 0/],
      ['a missing state file', ['step', '--state', 'missing.safetensors', '--out', 'y'], 3, /missing\.safetensors: not found/],
      ['indices that are not a JSON array', ['eval', '--config', 'faults.json', '--indices', 'faults.json'], 2, /must hold a JSON array of caption indices/],
      ['a convexify slice beyond the buffer', ['convexify', '--buffer', BUFFER, '--start', '2', '--end', '9'], 2, /convexify slice \[2, 9\): must hold at least 2 of the 4 snapshots of .*\(--start 2 --end 9\)/],
      ['an unknown encoder in a config', ['buffer', '--config', 'encoder.json'], 2, /data\.imageEncoder: unknown image encoder "resnet"; valid: mobilenet_v2/],
    ];
    const cwd = workspace();
    before(() => {
      cpSync(join(straight, 'buffers'), join(cwd, 'buffers'), { recursive: true });
      writeFileSync(join(cwd, 'typo.json'), JSON.stringify({ ...config, modle: { dOut: 8 } }));
      writeFileSync(join(cwd, 'climb.json'), JSON.stringify({ ...config, name: '..' }));
      writeFileSync(join(cwd, 'late.json'), JSON.stringify({ ...config, distill: { phases: [{ start: [0, 5], size: 10, iterations: 2 }] } }));
      writeFileSync(join(cwd, 'encoder.json'), JSON.stringify({ ...config, data: { ...config.data, imageEncoder: 'resnet' } }));
    });
    for (const [what, args, code, message] of cases) {
      it(what, () => {
        const r = ptmst(cwd, args);
        assert.equal(r.code, code, r.err);
        assert.match(r.err, message);
      });
    }

    it('a read-only output folder: exit 5 naming the file and saying read-only', function () {
      const ro = readOnlyMount(this);
      try {
        const r = ptmst(cwd, ['eval', '--config', 'faults.json', '--random', '20', '--runs', '1', '--out', join(ro, 'records')]);
        assert.equal(r.code, 5, r.err);
        assert.match(r.err, /cannot write .*\/records: .*read-only file system \(EROFS\)/);
      } finally {
        spawnSync('umount', [ro]);
      }
    });

    it('an evaluation asked for more runs trains only the missing ones', () => {
      const a = ptmst(cwd, ['eval', '--config', 'faults.json', '--random', '20', '--runs', '2', '--out', 'more']);
      assert.equal(a.code, 0, a.err);
      const b = ptmst(cwd, ['eval', '--config', 'faults.json', '--random', '20', '--runs', '3', '--out', 'more']);
      assert.equal(b.code, 0, b.err);
      assert.match(b.err, /eval: 2 of 3 runs already stored in \S*\/more/);
    });

    it('features of the shapes set need no data root; a JSON array of indices is a coreset', () => {
      assert.equal(ptmst(cwd, ['features', '--dataset', 'shapes', '--cache-dir', sharedCache()]).code, 0);
      writeFileSync(join(cwd, 'idx.json'), JSON.stringify([0, 5, 10, 15, 20, 25, 30, 35]));
      const r = ptmst(cwd, ['eval', '--config', 'faults.json', '--indices', 'idx.json', '--runs', '1', '--json', 'idx-summary.json']);
      assert.equal(r.code, 0, r.err);
      assert.equal((JSON.parse(readFileSync(join(cwd, 'idx-summary.json'), 'utf8')) as { pairs: number }).pairs, 8);
    });
  });
});
