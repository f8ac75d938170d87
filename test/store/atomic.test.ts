import { strict as assert } from 'node:assert';
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WriteError } from '../../src/errors';
import { writeAtomic } from '../../src/store/atomic';
import { isLocked, withLock } from '../../src/store/lock';
import { REPO, readOnlyMount, tempDir } from '../helpers';

/** Run `body` with the simulated full disk of store/atomic.ts after `bytes` more bytes. */
async function withFullDisk<T>(bytes: number, body: () => Promise<T>): Promise<T> {
  process.env.PTMST_FAULT_DISK_FULL_AFTER = String(bytes);
  try {
    return await body();
  } finally {
    delete process.env.PTMST_FAULT_DISK_FULL_AFTER;
  }
}

describe('store/atomic: writes that survive a full disk', () => {
  it('on ENOSPC names the file, keeps the old content and leaves no temporary file', async () => {
    const dir = tempDir();
    const target = join(dir, 'expert-000.safetensors');
    writeFileSync(target, 'old content');
    // the simulated disk counts bytes per process from the first write under the variable: allow 1000
    await withFullDisk(1000, async () => {
      await assert.rejects(
        writeAtomic(target, Buffer.alloc(4096, 7)),
        (e: unknown) => e instanceof WriteError && e.file === target && /no space left on device \(ENOSPC\)/.test(e.message) && e.exitCode === 5,
      );
    });
    assert.equal(readFileSync(target, 'utf8'), 'old content');
    assert.deepEqual(readdirSync(dir), ['expert-000.safetensors']);
    rmSync(dir, { recursive: true });
  });

  it('a new file that does not fit never appears under its name', async () => {
    const dir = tempDir();
    const target = join(dir, 'synthetic.safetensors');
    await withFullDisk(10, () => assert.rejects(writeAtomic(target, 'x'.repeat(100)), WriteError));
    assert.deepEqual(readdirSync(dir), []);
    rmSync(dir, { recursive: true });
  });

  it('a read-only file system is reported as read-only (EROFS), naming the file, not as a missing folder', async function () {
    const ro = readOnlyMount(this);
    try {
      // a folder to create inside the read-only mount (recursive mkdir reports ENOENT there), and a file in the mount itself
      const deep = join(ro, 'runs', 'x', 'synthetic.safetensors');
      await assert.rejects(writeAtomic(deep, 'x'), (e: unknown) =>
        e instanceof WriteError && e.file === deep && e.exitCode === 5 &&
        /^cannot write .*synthetic\.safetensors: cannot create folder .*\/runs\/x: read-only file system \(EROFS\)$/.test(e.message));
      const flat = join(ro, 'record.json');
      await assert.rejects(writeAtomic(flat, '{}'), (e: unknown) =>
        e instanceof WriteError && e.file === flat && /^cannot write .*record\.json: read-only file system \(EROFS\); nothing was written under this name$/.test(e.message));
    } finally {
      spawnSync('umount', [ro]);
    }
  });

  it('names the real cause when the folder cannot be made', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(writeAtomic(join(dir, 'file', 'sub', 'x.json'), '{}'), (e: unknown) =>
      e instanceof WriteError && /cannot create folder .*file\/sub: a part of the path is a file, not a folder \(ENOTDIR\)/.test(e.message),
    );
    rmSync(dir, { recursive: true });
  });
});

const LOCK_JS = join(REPO, 'dist', 'src', 'store', 'lock.js');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A child process that takes the lock on `target`, says so, and holds it until it is killed. */
function holder(target: string): Promise<ChildProcess> {
  const script = `require(${JSON.stringify(LOCK_JS)}).withLock(${JSON.stringify(target)}, 'holder', () => { process.stdout.write('held\\n'); return new Promise(() => setInterval(() => undefined, 1000)); })`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => void (d.toString().includes('held') && resolve(child)));
    child.on('exit', (code) => reject(new Error(`the holder exited (${code}) before taking the lock`)));
  });
}

/** SIGKILL a child and wait until it is gone. */
function killed(child: ChildProcess): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) return resolve();
    child.on('exit', () => resolve());
    child.kill('SIGKILL');
  });
}

/** Milliseconds another process needs to take (and release) the lock on `target`; undefined when not within `ms`. */
function takeInChild(target: string, ms: number): number | undefined {
  const script = `require(${JSON.stringify(LOCK_JS)}).withLock(${JSON.stringify(target)}, 'taker', async () => undefined).then(() => process.exit(0), (e) => { console.error(e.message); process.exit(1); })`;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['-e', script], { timeout: ms, encoding: 'utf8' });
  return r.status === 0 ? Date.now() - t0 : undefined;
}

/** Where the owner of the lock on `target` is recorded. */
const ownerFileOf = (target: string) => join(`${target}.lock`, 'owner.json');

describe('store/lock: one process at a time per target', function () {
  this.timeout(60000);

  it('serialises two holders of one target and releases the lock', async () => {
    const dir = tempDir();
    const target = join(dir, 'features', 'x.safetensors');
    const events: string[] = [];
    const hold = (name: string) =>
      withLock(target, name, async () => {
        events.push(`${name} in`);
        await new Promise((r) => setTimeout(r, 300));
        events.push(`${name} out`);
      });
    await Promise.all([hold('a'), hold('b')]);
    assert.deepEqual(events.map((e) => e.split(' ')[1]), ['in', 'out', 'in', 'out'], events.join(', '));
    assert.equal(isLocked(target), false);
    rmSync(dir, { recursive: true });
  });

  it('waits for a live owner process, and takes the lock at once when that process is killed', async () => {
    const target = join(tempDir(), 'buffer');
    const h = await holder(target);
    let entered = false;
    const waiter = withLock(target, 'waiter', async () => void (entered = true));
    await sleep(1500);
    assert.equal(entered, false, 'the lock of a live owner is respected');
    const t0 = Date.now();
    await killed(h);
    await waiter;
    assert.ok(entered);
    assert.ok(Date.now() - t0 < 3000, `took ${Date.now() - t0} ms after the kill`);
    assert.equal(isLocked(target), false);
  });

  it('takes over at once a lock folder left without its owner file (a kill between taking the lock and writing the owner)', () => {
    const target = join(tempDir(), 'buffer');
    mkdirSync(`${target}.lock`);
    const ms = takeInChild(target, 15000);
    assert.ok(ms !== undefined && ms < 8000, `another process got the lock after ${ms ?? 'more than 15000'} ms (the stale timeout is 10 minutes)`);
    assert.equal(isLocked(target), false);
  });

  it('takes over at once a lock whose owner file names a live process that is not its owner (pid reuse)', async () => {
    const target = join(tempDir(), 'buffer');
    await killed(await holder(target)); // a real owner, killed: its lock and owner file stay behind
    const unrelated = spawn('sleep', ['60'], { stdio: 'ignore' });
    try {
      // the killed owner's pid now belongs to another, live process
      const file = ownerFileOf(target);
      writeFileSync(file, readFileSync(file, 'utf8').replace(/"pid":\s*\d+/, `"pid":${unrelated.pid}`));
      const ms = takeInChild(target, 15000);
      assert.ok(ms !== undefined && ms < 8000, `another process got the lock after ${ms ?? 'more than 15000'} ms`);
    } finally {
      await killed(unrelated);
    }
  });

  it('a lock folder holding something but no owner file is respected for a grace period, then taken', () => {
    const target = join(tempDir(), 'buffer');
    mkdirSync(`${target}.lock`);
    writeFileSync(join(`${target}.lock`, 'junk'), '');
    assert.equal(takeInChild(target, 2500), undefined, 'a fresh folder is left alone');
    const old = new Date(Date.now() - 60_000);
    utimesSync(`${target}.lock`, old, old);
    const ms = takeInChild(target, 15000);
    assert.ok(ms !== undefined && ms < 8000, `took ${ms ?? 'more than 15000'} ms`);
  });

  it('an owner on another host is waited for while it refreshes its lock, and taken over 10 minutes after it stopped', async () => {
    const target = join(tempDir(), 'buffer');
    await killed(await holder(target));
    const file = ownerFileOf(target);
    writeFileSync(file, readFileSync(file, 'utf8').replace(/"host":"[^"]*"/, '"host":"another-host"'));
    assert.equal(takeInChild(target, 2500), undefined, 'a lock refreshed just now is respected');
    const old = new Date(Date.now() - 11 * 60_000);
    utimesSync(file, old, old);
    const ms = takeInChild(target, 15000);
    assert.ok(ms !== undefined && ms < 8000, `took ${ms ?? 'more than 15000'} ms`);
  });

  it('leaves no staging folder behind, and sweeps one a killed process left', async () => {
    const dir = tempDir();
    const target = join(dir, 'x.safetensors');
    mkdirSync(join(dir, '.x.safetensors.lock-123-abc'));
    const old = new Date(Date.now() - 60_000);
    utimesSync(join(dir, '.x.safetensors.lock-123-abc'), old, old);
    await withLock(target, 'x', async () => undefined);
    assert.deepEqual(readdirSync(dir), []);
  });
});
