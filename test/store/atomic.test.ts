import { strict as assert } from 'node:assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { WriteError } from '../../src/errors';
import { writeAtomic } from '../../src/store/atomic';
import { isLocked, withLock } from '../../src/store/lock';
import { tempDir } from '../helpers';

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

  it('names the real cause when the folder cannot be made', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'file'), '');
    await assert.rejects(writeAtomic(join(dir, 'file', 'sub', 'x.json'), '{}'), (e: unknown) =>
      e instanceof WriteError && /cannot create folder .*file\/sub: a part of the path is a file, not a folder \(ENOTDIR\)/.test(e.message),
    );
    rmSync(dir, { recursive: true });
  });
});

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

  it('takes over at once a lock whose owner process was killed', async () => {
    const dir = tempDir();
    const target = join(dir, 'buffer');
    const dead = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    mkdirSync(`${target}.lock`);
    writeFileSync(`${target}.lock.owner`, JSON.stringify({ pid: Number(dead.stdout), host: require('node:os').hostname(), what: 'buffer' }));
    const t0 = Date.now();
    await withLock(target, 'buffer', async () => undefined);
    assert.ok(Date.now() - t0 < 5000, `took ${Date.now() - t0} ms (the stale timeout is 20 s)`);
    rmSync(dir, { recursive: true });
  });
});
