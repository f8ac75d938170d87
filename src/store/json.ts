/**
 * JSON files: validated reads (`readJsonFile`), and JSON artefacts that carry their own digest
 * (`writeJsonArtefact` / `readJsonArtefact`): a top-level `sha256` holding the sha256 of the canonical JSON
 * (object keys sorted, store/safetensors.ts `canonicalJson`) of everything else in the file. Python
 * recomputes it as `sha256(json.dumps({k: v for k, v in d.items() if k != "sha256"}, sort_keys=True,
 * separators=(",", ":"), ensure_ascii=False))`.
 */
import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { CorruptFileError } from '../errors';
import { sha256, writeJsonAtomic } from './atomic';
import { canonicalJson } from './safetensors';

/** The key of a JSON artefact's digest. */
export const JSON_DIGEST_KEY = 'sha256';

async function parseFile(path: string, what: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CorruptFileError(path, `${what} is not valid JSON (${(e as Error).message})`);
  }
}

function validate<S extends z.ZodType>(path: string, raw: unknown, schema: S, what: string): z.infer<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CorruptFileError(path, `${what} field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}

/** Read a JSON file and validate it; any problem is one CorruptFileError naming the file and the field. */
export async function readJsonFile<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.infer<S>> {
  return validate(path, await parseFile(path, what), schema, what);
}

/** The digest of a JSON value (an object, without its `sha256`). */
export function jsonDigest(value: Readonly<Record<string, unknown>>): string {
  const { [JSON_DIGEST_KEY]: _old, ...rest } = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
  return sha256(canonicalJson(rest));
}

/** Write a JSON artefact (atomically) with its digest. */
export async function writeJsonArtefact(path: string, value: Readonly<Record<string, unknown>>): Promise<void> {
  const { [JSON_DIGEST_KEY]: _old, ...rest } = value;
  await writeJsonAtomic(path, { ...rest, [JSON_DIGEST_KEY]: jsonDigest(rest) });
}

export interface JsonArtefactOptions {
  /**
   * What the error says to do when the digest is absent (an older ptmst) or does not match (an edit, damage);
   * a function hears the validated (unverified) value.
   * With `unverified`, the digest is not checked at all (a `--force` rebuild that re-verifies the contents itself).
   */
  readonly remedy: string | ((value: never) => string);
  readonly unverified?: boolean;
}

/**
 * Read a JSON artefact: its digest (required), then its schema; any problem is one CorruptFileError naming
 * the file. Returns the value without the digest.
 */
export async function readJsonArtefact<S extends z.ZodType>(path: string, schema: S, what: string, opts: JsonArtefactOptions): Promise<z.infer<S>> {
  const raw = await parseFile(path, what);
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new CorruptFileError(path, `${what} is not a JSON object`);
  const { [JSON_DIGEST_KEY]: digest, ...rest } = raw as Record<string, unknown>;
  // the schema first: a field that is wrong is named even where the digest would also fail
  const value = validate(path, rest, schema, what);
  if (!opts.unverified) {
    const remedy = typeof opts.remedy === 'string' ? opts.remedy : (opts.remedy as (v: z.infer<S>) => string)(value);
    if (digest === undefined) throw new CorruptFileError(path, `has no digest (written by an older ptmst); ${remedy}`);
    if (digest !== jsonDigest(rest)) throw new CorruptFileError(path, `digest mismatch: the ${what} was edited or is corrupted; ${remedy}`);
  }
  return value;
}
