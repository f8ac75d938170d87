/**
 * Every error a user can meet, in one place, each with the exit code the CLI returns for it
 * (README "Exit codes"). Library code throws these; the CLI maps them with `exitCodeOf`.
 *
 *   2  usage: a bad option, config field or argument (ConfigError)
 *   3  input: a missing or malformed dataset file, or an artefact that fails verification — checksum, digest,
 *      shape, or numbers no artefact can hold: NaN or infinite values, scores outside [0, 100], experts the
 *      manifest promises but does not list (DatasetError, CorruptFileError)
 *   4  diverged: a loss, parameter or score became NaN or infinite while this run computed it (NonFiniteError)
 *   5  output: a file could not be written — full disk, permissions (WriteError)
 *   1  anything else (a bug: please report it)
 */

export abstract class PtmstError extends Error {
  /** the exit code of the class (static, so a class name alone tells it: see `exitCodeOf`) */
  static readonly exitCode: number = 1;
  get exitCode(): number {
    return (this.constructor as typeof PtmstError).exitCode;
  }
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** An error about one file, which it names: `<file>: <reason>`. */
abstract class FileError extends PtmstError {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
  }
}

/** A config or option that fails its schema or a range check: names the field and what was wrong. */
export class ConfigError extends PtmstError {
  static override readonly exitCode = 2;
}

/** A missing or malformed dataset file: names the file and what was expected. */
export class DatasetError extends FileError {
  static override readonly exitCode = 3;
}

/** A file that is not a valid artefact, or not the one expected (checksum, shape, format): names it. */
export class CorruptFileError extends FileError {
  static override readonly exitCode = 3;
}

/** A file that should exist and does not. */
export class MissingFileError extends CorruptFileError {
  constructor(file: string, reason = 'not found') {
    super(file, reason);
  }
}

/**
 * A feature cache (or other artefact) that is valid in itself but made for other inputs: `stale cache: <file>:
 * <reason>; rerun <command>`. Exit 3, as for any input that fails verification.
 */
export class StaleCacheError extends CorruptFileError {
  constructor(file: string, reason: string) {
    super(file, reason);
    this.message = `stale cache: ${file}: ${reason}`;
  }
}

/** A non-finite loss, parameter or score: names the method, the run and the epoch or iteration. */
export class NonFiniteError extends PtmstError {
  static override readonly exitCode = 4;
}

/** A file that could not be written; nothing was left under its final name. */
export class WriteError extends PtmstError {
  static override readonly exitCode = 5;
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`cannot write ${file}: ${reason}`);
  }
}

/**
 * A stored artefact failed verification: the same error with what to do about it appended
 * (`…: checksum mismatch; rerun with --force to recompute it`). Anything else is rethrown as it is.
 */
export function unusable(e: unknown, file: string, remedy: string): never {
  if (!(e instanceof CorruptFileError)) throw e;
  const reason = e.file === file ? e.message.slice(file.length + 2) : e.message;
  throw new CorruptFileError(file, `${reason}; ${remedy}`);
}

/** Exit codes by class name: an error thrown in a worker thread reaches the parent as a plain Error. */
const EXIT_CODES: Readonly<Record<string, number>> = Object.fromEntries(
  [ConfigError, DatasetError, CorruptFileError, MissingFileError, StaleCacheError, NonFiniteError, WriteError].map((c) => [c.name, c.exitCode]),
);

/** The exit code for an error: its class's, 1 for anything unexpected. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof PtmstError) return e.exitCode;
  const name = (e as { name?: unknown } | null)?.name;
  return typeof name === 'string' ? (EXIT_CODES[name] ?? 1) : 1;
}

/** A short reason for a Node system error (`ENOSPC` → "no space left on device (ENOSPC)"). */
export function describeSystemError(e: unknown): string {
  const err = e as NodeJS.ErrnoException;
  const known: Record<string, string> = {
    ENOSPC: 'no space left on device',
    EDQUOT: 'disk quota exceeded',
    EACCES: 'permission denied',
    EPERM: 'operation not permitted',
    EROFS: 'read-only file system',
    ENOTDIR: 'a part of the path is a file, not a folder',
    EISDIR: 'the path is a folder',
    ENOENT: 'no such file or folder',
  };
  if (err?.code && known[err.code]) return `${known[err.code]} (${err.code})`;
  return err?.message ?? String(e);
}
