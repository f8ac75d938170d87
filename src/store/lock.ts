/**
 * Per-target locks between concurrent ptmst processes (two terminals, a notebook and a CLI, jobs on a
 * shared file system). `withLock(target, …)` holds `<target>.lock` (proper-lockfile: an atomic mkdir whose
 * mtime is kept fresh) while `body` runs; another process asking for the same target waits, then runs its
 * body — which re-checks whether the work is already done. Locks are about not doing work twice and not
 * deleting another run's temporary files; correctness against crashes comes from atomic writes.
 *
 * A process killed with SIGKILL cannot release its lock. Its owner file (`<target>.lock.owner`: pid and
 * host) lets a later run on the same host see that the owner is dead and take the lock at once; on
 * another host the lock expires after `STALE_MS` without updates. Known limit: two waiters that find the
 * same dead owner at the same instant can both take the lock (atomic writes keep the files whole).
 */
import { existsSync, readFileSync } from 'node:fs';
import { rm, rmdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import lockfile from 'proper-lockfile';
import { WriteError, describeSystemError } from '../errors';
import { ensureDir, writeJsonAtomic } from './atomic';

/**
 * A lock not refreshed for this long is taken over (another host's crashed run). Long, because a process
 * busy in synchronous tensor code cannot refresh it; a crash on this host is detected at once (owner pid).
 */
const STALE_MS = 10 * 60_000;
const POLL_MS = 500;

interface Owner {
  readonly pid: number;
  readonly host: string;
  readonly what: string;
}

const lockDir = (target: string) => `${target}.lock`;
const ownerFile = (target: string) => `${target}.lock.owner`;

function readOwner(target: string): Owner | undefined {
  try {
    return JSON.parse(readFileSync(ownerFile(target), 'utf8')) as Owner;
  } catch {
    return undefined;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Remove a lock whose owner, on this host, no longer runs. */
async function breakDeadLock(target: string): Promise<void> {
  const owner = readOwner(target);
  if (!owner || owner.host !== hostname() || owner.pid === process.pid || alive(owner.pid)) return;
  const again = readOwner(target); // narrow the window in which another waiter took it meanwhile
  if (again?.pid !== owner.pid) return;
  await rmdir(lockDir(target)).catch(() => undefined);
  await rm(ownerFile(target), { force: true });
}

/**
 * Run `body` holding the lock on `target` (a file or folder path; it need not exist). `log` hears one line
 * when the lock is busy and this process starts waiting.
 */
export async function withLock<T>(
  target: string,
  what: string,
  body: () => Promise<T>,
  log: (line: string) => void = () => undefined,
): Promise<T> {
  await ensureDir(dirname(target));
  const options = {
    realpath: false,
    stale: STALE_MS,
    onCompromised: (e: Error) => log(`[ptmst] warning: lock on ${target} was lost (${e.message}); continuing`),
  };
  let release: (() => Promise<void>) | undefined;
  let told = false;
  while (release === undefined) {
    await breakDeadLock(target);
    try {
      release = await lockfile.lock(target, options);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ELOCKED') throw new WriteError(lockDir(target), `cannot take the lock: ${describeSystemError(e)}`);
      if (!told) {
        const o = readOwner(target);
        log(`[ptmst] ${what}: waiting for another ptmst process${o ? ` (pid ${o.pid} on ${o.host})` : ''} working on ${target}`);
        told = true;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  }
  try {
    await writeJsonAtomic(ownerFile(target), { pid: process.pid, host: hostname(), what } satisfies Owner);
    return await body();
  } finally {
    await rm(ownerFile(target), { force: true }).catch(() => undefined);
    await release().catch(() => undefined);
  }
}

/** Whether some process holds the lock on `target` (for tests and messages). */
export function isLocked(target: string): boolean {
  return existsSync(lockDir(target));
}
