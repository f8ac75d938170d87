/**
 * Per-target locks between concurrent ptmst processes (two terminals, a notebook and a CLI, jobs on a
 * shared file system). `withLock(target, …)` holds `<target>.lock` while `body` runs; another process
 * asking for the same target waits, then runs its body — which re-checks whether the work is already done.
 * Locks are about not doing work twice and not deleting another run's temporary files; correctness against
 * crashes comes from atomic writes.
 *
 * The lock is the folder `<target>.lock` holding `owner.json`: pid, the process's start time and pid
 * namespace, the machine's boot id, host, a random token, and what it is doing. It is made whole: the owner
 * file is written into a private staging folder (`.<name>.lock-<pid>-<token>`, beside the target), which is
 * then renamed to `<target>.lock` — one atomic step that fails while another lock folder holds an owner, so
 * a lock never exists without its owner, whenever a process is killed. Release renames the folder away (again
 * one step) and removes it.
 *
 * A lock is stale, and taken over at once, when its owner ran on this machine (same host, boot and pid
 * namespace) and no longer runs: its pid is gone, or now belongs to a process started at another time (the
 * pid was reused); or when the machine has rebooted since. An empty lock folder (what ptmst before this
 * scheme left when killed between making the folder and writing its owner) is replaced at once; a folder
 * with no readable owner after `GRACE_MS` unchanged is stale. An owner elsewhere (another host or
 * container) cannot be asked: its lock is stale when `owner.json` has not been refreshed (every
 * `REFRESH_MS`) for `STALE_MS`. Taking over renames the stale folder away first (of two waiters only one
 * can), and puts it back if it turns out to hold another owner than the one judged dead.
 *
 * Process start times and namespaces come from /proc (Linux); elsewhere only the pid is checked.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, readlinkSync } from 'node:fs';
import { mkdir, readFile, readdir, rename, rm, stat, utimes, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { WriteError, describeSystemError } from '../errors';
import { ensureDir } from './atomic';

/** A lock held elsewhere and not refreshed for this long is taken over (another host's crashed run). */
const STALE_MS = 10 * 60_000;
/** How often a holder refreshes its owner file; on a busy event loop it is late, hence STALE_MS ≫ this. */
const REFRESH_MS = 60_000;
/** A lock folder without a readable owner, unchanged for this long, is stale (never made by this scheme). */
const GRACE_MS = 10_000;
const POLL_MS = 500;
const OWNER = 'owner.json';

interface Owner {
  readonly pid: number;
  /** the process's start time, in clock ticks since boot (/proc/<pid>/stat field 22); absent off Linux */
  readonly start?: string;
  /** /proc/sys/kernel/random/boot_id: the same pid on another boot is another process */
  readonly boot?: string;
  /** the pid namespace (/proc/self/ns/pid): a pid is only meaningful inside its namespace */
  readonly ns?: string;
  readonly host: string;
  readonly token: string;
  readonly what: string;
}

const lockDir = (target: string) => `${target}.lock`;
/** Prefix of this target's staging and discarded folders (hidden, beside the target). */
const scratchPrefix = (target: string) => `.${basename(target)}.lock-`;
const scratchDir = (target: string, tag: string) => join(dirname(target), `${scratchPrefix(target)}${tag}`);

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** A process's state and start time (fields 3 and 22 of /proc/<pid>/stat, after the parenthesised command name). */
function procStat(pid: number): { state: string; start: string } | undefined {
  const text = readText(`/proc/${pid}/stat`);
  const fields = text?.slice(text.lastIndexOf(')') + 2).split(' ');
  return fields && fields.length > 19 ? { state: fields[0]!, start: fields[19]! } : undefined;
}

function pidNamespace(): string | undefined {
  try {
    return readlinkSync('/proc/self/ns/pid');
  } catch {
    return undefined;
  }
}

const BOOT = readText('/proc/sys/kernel/random/boot_id')?.trim();
const NS = pidNamespace();
const START = procStat(process.pid)?.start;

function pidRuns(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether the owner still runs: true, false, or undefined when this process cannot tell (another host, or
 * another pid namespace).
 */
function ownerRuns(o: Owner): boolean | undefined {
  if (o.host !== hostname()) return undefined;
  if (o.boot !== undefined && BOOT !== undefined && o.boot !== BOOT) return false; // rebooted since
  if (o.ns !== undefined && NS !== undefined && o.ns !== NS) return undefined;
  if (!pidRuns(o.pid)) return false;
  const now = procStat(o.pid);
  if (now?.state === 'Z') return false; // killed, not yet reaped
  if (o.start !== undefined && now !== undefined && now.start !== o.start) return false; // the pid now names another process
  return true;
}

async function readOwner(dir: string): Promise<Owner | undefined> {
  try {
    const o = JSON.parse(await readFile(join(dir, OWNER), 'utf8')) as Partial<Owner>;
    return typeof o.pid === 'number' && typeof o.host === 'string' && typeof o.token === 'string' ? (o as Owner) : undefined;
  } catch {
    return undefined;
  }
}

const cannot = (path: string, e: unknown) => new WriteError(path, `cannot take the lock: ${describeSystemError(e)}`);

/** Try to take the lock once: stage a folder with the owner file, rename it into place. */
async function tryTake(target: string, owner: Owner): Promise<boolean> {
  const stage = scratchDir(target, `${process.pid}-${owner.token}`);
  try {
    await mkdir(stage);
    await writeFile(join(stage, OWNER), JSON.stringify(owner), { flush: true });
  } catch (e) {
    await rm(stage, { recursive: true, force: true });
    throw cannot(lockDir(target), e);
  }
  try {
    await rename(stage, lockDir(target)); // replaces nothing but an empty folder
    return true;
  } catch (e) {
    await rm(stage, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return false;
    throw cannot(lockDir(target), e);
  }
}

/** Why the lock on `target` is stale, or undefined while it is held (or gone). */
async function staleness(target: string, owner: Owner | undefined): Promise<string | undefined> {
  const dir = lockDir(target);
  if (owner === undefined) {
    const s = await stat(dir).catch(() => undefined);
    const entries = s && (await readdir(dir).catch(() => undefined));
    if (!s || !entries || entries.length === 0) return undefined; // gone, or empty: the next rename replaces it
    return Date.now() - s.mtimeMs > GRACE_MS ? `it holds no readable ${OWNER}` : undefined;
  }
  const runs = ownerRuns(owner);
  if (runs === false) return `its owner, pid ${owner.pid} on ${owner.host}, no longer runs`;
  if (runs === true) return undefined;
  const s = await stat(join(dir, OWNER)).catch(() => undefined);
  return s && Date.now() - s.mtimeMs > STALE_MS ? `its owner on ${owner.host} has not refreshed it for ${STALE_MS / 60_000} minutes` : undefined;
}

/** Remove the lock on `target` if it is stale; says why when it did. */
async function breakStale(target: string): Promise<string | undefined> {
  const dir = lockDir(target);
  const owner = await readOwner(dir);
  const why = await staleness(target, owner);
  if (why === undefined) return undefined;
  const moved = scratchDir(target, `stale-${randomBytes(6).toString('hex')}`);
  try {
    await rename(dir, moved);
  } catch {
    return undefined; // another waiter moved it first, or its owner released it
  }
  const got = await readOwner(moved);
  if (got?.token !== owner?.token) {
    // between the look and the move another process took the lock: give it back
    await rename(moved, dir).catch(() => undefined);
    return undefined;
  }
  await rm(moved, { recursive: true, force: true });
  return why;
}

/**
 * Remove staging and discarded folders of this target that outlived any use (left by a kill), and the
 * owner file an older ptmst kept beside its lock folder.
 */
async function sweep(target: string): Promise<void> {
  await rm(`${target}.lock.owner`, { force: true }).catch(() => undefined);
  const prefix = scratchPrefix(target);
  const names = await readdir(dirname(target)).catch(() => [] as string[]);
  for (const name of names.filter((n) => n.startsWith(prefix))) {
    const path = join(dirname(target), name);
    const s = await stat(path).catch(() => undefined);
    if (s && Date.now() - s.mtimeMs > GRACE_MS) await rm(path, { recursive: true, force: true }).catch(() => undefined);
  }
}

/**
 * Run `body` holding the lock on `target` (a file or folder path; it need not exist). `log` hears one line
 * when the lock is busy and this process starts waiting, and one when it takes over a stale lock.
 */
export async function withLock<T>(
  target: string,
  what: string,
  body: () => Promise<T>,
  log: (line: string) => void = () => undefined,
): Promise<T> {
  await ensureDir(dirname(target));
  const owner: Owner = {
    pid: process.pid,
    ...(START !== undefined ? { start: START } : {}),
    ...(BOOT !== undefined ? { boot: BOOT } : {}),
    ...(NS !== undefined ? { ns: NS } : {}),
    host: hostname(),
    token: randomBytes(8).toString('hex'),
    what,
  };
  let told = false;
  while (!(await tryTake(target, owner))) {
    const why = await breakStale(target);
    if (why !== undefined) {
      log(`[ptmst] ${what}: took over the lock on ${target}: ${why}`);
      continue;
    }
    if (!told) {
      const o = await readOwner(lockDir(target));
      log(`[ptmst] ${what}: waiting for another ptmst process${o ? ` (pid ${o.pid} on ${o.host})` : ''} working on ${target}`);
      told = true;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const mine = join(lockDir(target), OWNER);
  let lost = false;
  const refresh = setInterval(() => {
    void (async () => {
      if ((await readOwner(lockDir(target)))?.token !== owner.token) {
        if (!lost) log(`[ptmst] warning: lock on ${target} was taken over by another process; continuing`);
        lost = true;
        return;
      }
      const now = new Date();
      await utimes(mine, now, now).catch(() => undefined);
    })();
  }, REFRESH_MS);
  refresh.unref();
  try {
    await sweep(target);
    return await body();
  } finally {
    clearInterval(refresh);
    await release(target, owner);
  }
}

/** Give the lock back, if it is still this owner's. */
async function release(target: string, owner: Owner): Promise<void> {
  const dir = lockDir(target);
  if ((await readOwner(dir))?.token !== owner.token) return;
  const gone = scratchDir(target, `released-${owner.token}`);
  try {
    await rename(dir, gone);
  } catch {
    return;
  }
  await rm(gone, { recursive: true, force: true }).catch(() => undefined);
}

/** Whether some process holds the lock on `target` (for tests and messages). */
export function isLocked(target: string): boolean {
  return existsSync(lockDir(target));
}
