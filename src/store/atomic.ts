/**
 * Atomic file writes that survive a crash and a full disk. The bytes go to a uniquely named temporary
 * file in the target's folder; the writer checks that every byte was written, fsyncs, and only then
 * renames over the target. On any failure (ENOSPC, EACCES, a kill) the temporary file is removed and the
 * target keeps its old content or stays absent: no truncated file ever appears under a final name.
 * Errors are one `WriteError` naming the path being written and the cause.
 *
 * (`write-file-atomic` does not check the byte count before renaming, and its errors name no file.)
 *
 * Test hook: `PTMST_FAULT_DISK_FULL_AFTER=<bytes>` makes this thread's writes fail with ENOSPC once
 * that many bytes have been written through here (each worker thread counts its own) (the last write is short, as a real full disk makes
 * it), so the fault suite can run whole stages against a full disk.
 */
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { threadId } from 'node:worker_threads';
import { WriteError, describeSystemError } from '../errors';

let faultBytesWritten = 0;
let faultLimit: string | undefined;

/** Bytes this write may put on the simulated disk before ENOSPC (Infinity when no fault is set). */
function faultBudget(): number {
  const limit = process.env.PTMST_FAULT_DISK_FULL_AFTER;
  if (limit !== faultLimit) {
    faultLimit = limit; // a new setting counts from zero
    faultBytesWritten = 0;
  }
  if (limit === undefined || limit === '') return Infinity;
  return Math.max(0, Number(limit) - faultBytesWritten);
}

function enospc(): NodeJS.ErrnoException {
  return Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
}

/** Create a folder (and its parents); an error names the folder and the real cause. */
export async function ensureDir(dir: string, forFile?: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    throw new WriteError(forFile ?? dir, `cannot create folder ${dir}: ${describeSystemError(await realCause(dir, e))}`);
  }
}

/**
 * Node's recursive mkdir reports ENOENT when a folder cannot be made for another reason (a read-only file
 * system, no permission: it stats the path after the failure and reports that). Making the first missing
 * folder alone hears the real cause.
 */
async function realCause(dir: string, e: unknown): Promise<unknown> {
  if ((e as NodeJS.ErrnoException).code !== 'ENOENT') return e;
  let missing = resolve(dir);
  while (dirname(missing) !== missing && !existsSync(dirname(missing))) missing = dirname(missing);
  try {
    await mkdir(missing);
  } catch (again) {
    return again;
  }
  return e;
}

export async function writeAtomic(path: string, data: string | Uint8Array): Promise<void> {
  await writeAtomicChunks(path, [typeof data === 'string' ? Buffer.from(data, 'utf8') : data]);
}

/**
 * `writeAtomic` for data given in parts (written in order, never joined in memory: a file larger than one
 * Buffer can hold). The parts are iterated once; each may be a view into a larger array.
 */
export async function writeAtomicChunks(path: string, chunks: Iterable<Uint8Array>): Promise<void> {
  const dir = dirname(path);
  await ensureDir(dir, path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}-${threadId}-${randomBytes(4).toString('hex')}.tmp`);
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(tmp, 'wx', 0o644);
    let total = 0;
    for (const bytes of chunks) {
      let offset = 0;
      while (offset < bytes.length) {
        const budget = faultBudget();
        const want = Math.min(bytes.length - offset, budget, 1 << 30);
        if (want <= 0) throw enospc();
        const { bytesWritten } = await handle.write(bytes, offset, want);
        if (bytesWritten <= 0) throw new Error(`write returned ${bytesWritten} bytes`);
        offset += bytesWritten;
        if (budget !== Infinity) faultBytesWritten += bytesWritten;
      }
      total += bytes.length;
    }
    await handle.sync();
    await handle.close();
    handle = undefined;
    const size = (await stat(tmp)).size;
    if (size !== total) throw new Error(`only ${size} of ${total} bytes reached the disk`);
    await rename(tmp, path);
    await syncFolder(dir);
  } catch (e) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    throw e instanceof WriteError ? e : new WriteError(path, `${describeSystemError(e)}; nothing was written under this name`);
  }
}

/** fsync a folder so a rename in it survives a power loss (best effort: some file systems refuse). */
async function syncFolder(dir: string): Promise<void> {
  const h = await open(dir, 'r').catch(() => undefined);
  if (h === undefined) return;
  await h.sync().catch(() => undefined);
  await h.close();
}

export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  await writeAtomic(path, JSON.stringify(value, null, 2) + '\n');
}

export function sha256(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}
