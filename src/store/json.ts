import { readFile } from 'node:fs/promises';
import type { z } from 'zod';
import { CorruptFileError } from '../errors';

/** Read a JSON file and validate it; any problem is one CorruptFileError naming the file and the field. */
export async function readJsonFile<S extends z.ZodType>(path: string, schema: S, what: string): Promise<z.infer<S>> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (e) {
    throw new CorruptFileError(path, `${what} is not valid JSON (${(e as Error).message})`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    throw new CorruptFileError(path, `${what} field ${issue.path.join('.') || '(root)'}: ${issue.message}`);
  }
  return parsed.data;
}
