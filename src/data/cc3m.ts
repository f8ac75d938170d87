/**
 * CC3M as the PTM-ST paper uses it: LLaVA-CC3M-Pretrain-595K, under `<dataRoot>/cc3m/` with the images of
 * its `images.zip` in `images/` and one of its two annotation files (`chat.json` when both are present):
 * - `chat.json`: `[{ id, image, conversations: [{ from: "human", value: "…<image>…" }, { from: "gpt", value }] }]`;
 *   the caption is the first `gpt` turn's value;
 * - `metadata.json`: `[{ id, image, caption }]` (other fields, e.g. `blip_caption`, `url`, are ignored).
 * `image` is relative to `images/`; one caption per image. Image files are not checked here (as with the
 * Karpathy JSONs): the feature stage names a missing one.
 *
 * Or the reference release's BLIP-style `cc3m_captions_{train,val,test}.json` (in `annotations/` or the
 * cc3m folder itself; used when `cc3m_captions_train.json` is found): entries `{ image, caption }`, one
 * caption each (val/test `caption` a single string), `image` relative to the cc3m folder.
 *
 * Splits of chat.json/metadata.json (there is no official one): `splits.json` beside the annotations,
 * `{ train: [ids], val: [ids], test: [ids] }`, each split in its list's order (records in no list are left
 * out; an id that is not a record, or in two lists, is an error); without it, `cc3mSplit`:
 * - `3:1:1` (default, the paper's ratio): by record order, contiguous, t = ⌊N / 5⌋ records each for `val`
 *   and `test` (the last t are `test`, the t before them `val`), the rest `train` (10 records: 6 / 2 / 2;
 *   595,375: 357,225 / 119,075 / 119,075). Record order, not a permutation: the file's order is fixed and
 *   the split needs no seed to reproduce.
 * - `holdout`: the same by record order with t = min(1000, ⌊N / 10⌋) (595K records: 1,000 each held out;
 *   10 records: 8 / 1 / 1).
 * `cc3mTestLimit` (default 10,000, as the release evaluates CC3M): the test split is its first that many
 * entries; `null` keeps the whole test split. Both layouts.
 *
 * A malformed record is refused naming the file and the entry (counted from 0, with its id once it has
 * one): not an object, no string id, no image, no `gpt` turn, an empty caption, a duplicate id or image.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { ConfigError } from '../errors';
import { DatasetError, type ImageCaptionSplit, type SplitName, splitFromRows, takeImages } from './dataset';
import { readKarpathyJson } from './karpathy';

export const CC3M_DATASET = 'cc3m';
/** The annotation files looked for, in order, and how each holds its caption. */
export const CC3M_ANNOTATIONS = [
  { name: 'chat.json', format: 'chat' },
  { name: 'metadata.json', format: 'metadata' },
] as const;
export type Cc3mFormat = (typeof CC3M_ANNOTATIONS)[number]['format'];
export const CC3M_SPLITS_FILE = 'splits.json';
/** Records held out for `val` and for `test` by the record-order split (fewer for under 10,000 records). */
export const CC3M_HELD_OUT = 1000;
/** The release evaluates CC3M on the first 10,000 test entries. */
export const CC3M_TEST_LIMIT = 10_000;
export const CC3M_SPLIT_MODES = ['3:1:1', 'holdout'] as const;
export type Cc3mSplitMode = (typeof CC3M_SPLIT_MODES)[number];
/** The BLIP-style annotation files of the reference release. */
export const CC3M_CAPTIONS_PREFIX = 'cc3m_captions';

export interface Cc3mOptions {
  /** how chat.json/metadata.json records are split without splits.json (default `3:1:1`) */
  readonly cc3mSplit?: Cc3mSplitMode;
  /** test entries kept (default 10,000, as the release); `null`: all */
  readonly cc3mTestLimit?: number | null;
}

export interface Cc3mRecord {
  readonly id: string;
  readonly image: string;
  readonly caption: string;
}

type Fail = (reason: string) => never;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

async function readJson(file: string): Promise<unknown> {
  if (!existsSync(file)) throw new DatasetError(file, 'not found');
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (e) {
    throw new DatasetError(file, `not valid JSON: ${(e as Error).message}`);
  }
}

/** The value of a chat record's first `gpt` turn (checked by the caller). */
function chatCaption(entry: Record<string, unknown>, fail: Fail): unknown {
  const turns = entry.conversations;
  if (!Array.isArray(turns)) return fail('no "conversations" list');
  const gpt: unknown = turns.find((t) => isObject(t) && t.from === 'gpt');
  if (!isObject(gpt)) return fail('no "gpt" turn');
  return gpt.value;
}

function parseRecord(entry: unknown, format: Cc3mFormat, fail: (reason: string, id?: string) => never): Cc3mRecord {
  if (!isObject(entry)) return fail('not an object');
  const id = entry.id;
  if (typeof id !== 'string' || id.length === 0) return fail('no string "id"');
  const failId: Fail = (reason) => fail(reason, id);
  const image = entry.image;
  if (typeof image !== 'string' || image.length === 0) return failId('missing "image"');
  const caption = format === 'chat' ? chatCaption(entry, failId) : entry.caption;
  if (typeof caption !== 'string') return failId(format === 'chat' ? '"gpt" turn has no string "value"' : 'no string "caption"');
  if (caption.trim().length === 0) return failId('empty caption');
  return { id, image, caption };
}

/** Every record of a LLaVA-CC3M annotation file, in file order; a malformed one is an error naming it. */
export async function readCc3mRecords(file: string, format: Cc3mFormat): Promise<Cc3mRecord[]> {
  const raw = await readJson(file);
  if (!Array.isArray(raw)) throw new DatasetError(file, 'expected a JSON list of records');
  const ids = new Map<string, number>();
  const images = new Map<string, number>();
  return raw.map((entry: unknown, i) => {
    const fail = (reason: string, id?: string): never => {
      throw new DatasetError(file, `entry ${i}${id === undefined ? '' : ` (id ${JSON.stringify(id)})`}: ${reason}`);
    };
    const record = parseRecord(entry, format, fail);
    const sameId = ids.get(record.id);
    if (sameId !== undefined) fail(`duplicate id (also entry ${sameId})`, record.id);
    const sameImage = images.get(record.image);
    if (sameImage !== undefined) fail(`duplicate image ${JSON.stringify(record.image)} (also entry ${sameImage})`, record.id);
    ids.set(record.id, i);
    images.set(record.image, i);
    return record;
  });
}

/** The record-order split: train, val, test sizes for `n` records (see the module comment; default `holdout`). */
export function cc3mSplitSizes(n: number, mode: Cc3mSplitMode = 'holdout'): Readonly<Record<'train' | 'val' | 'test', number>> {
  const t = mode === '3:1:1' ? Math.floor(n / 5) : Math.min(CC3M_HELD_OUT, Math.floor(n / 10));
  return { train: n - 2 * t, val: t, test: t };
}

function splitByOrder(records: readonly Cc3mRecord[], split: 'train' | 'val' | 'test', mode: Cc3mSplitMode): readonly Cc3mRecord[] {
  const { train, val } = cc3mSplitSizes(records.length, mode);
  const start = { train: 0, val: train, test: train + val }[split];
  const end = { train, val: train + val, test: records.length }[split];
  return records.slice(start, end);
}

const SplitsJson = z.object({ train: z.array(z.string()), val: z.array(z.string()), test: z.array(z.string()) });

/** A split as `splits.json` lists it, each id checked against the records and the other lists. */
async function splitByList(
  splitsFile: string,
  records: readonly Cc3mRecord[],
  annotationName: string,
  split: 'train' | 'val' | 'test',
): Promise<readonly Cc3mRecord[]> {
  const parsed = SplitsJson.safeParse(await readJson(splitsFile));
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const where = issue.path.join('.') || 'top level';
    throw new DatasetError(splitsFile, `expected { train: [ids], val: [ids], test: [ids] }: ${where}: ${issue.message}`);
  }
  const byId = new Map(records.map((r) => [r.id, r]));
  const listedIn = new Map<string, string>();
  for (const [name, ids] of Object.entries(parsed.data)) {
    for (const id of ids) {
      if (!byId.has(id)) throw new DatasetError(splitsFile, `split ${name}: id ${JSON.stringify(id)} is not in ${annotationName}`);
      const other = listedIn.get(id);
      if (other !== undefined) throw new DatasetError(splitsFile, `id ${JSON.stringify(id)} is listed in ${other} and in ${name}`);
      listedIn.set(id, name);
    }
  }
  return parsed.data[split].map((id) => byId.get(id)!);
}

/** The annotation file of a CC3M folder: `chat.json`, else `metadata.json`. */
function annotationFile(dir: string): { readonly file: string; readonly format: Cc3mFormat } {
  const found = CC3M_ANNOTATIONS.find(({ name }) => existsSync(join(dir, name)));
  if (found === undefined) {
    throw new DatasetError(join(dir, 'chat.json'), 'not found (nor metadata.json): the LLaVA-CC3M-Pretrain-595K annotations');
  }
  return { file: join(dir, found.name), format: found.format };
}

/** The folder holding `cc3m_captions_train.json` (`annotations/`, else the cc3m folder), or undefined. */
function captionsFolder(dir: string): string | undefined {
  return [join(dir, 'annotations'), dir].find((d) => existsSync(join(d, `${CC3M_CAPTIONS_PREFIX}_train.json`)));
}

/** The first `limit` images of a test split (the release's evaluation cap); others unchanged. */
function capTest(s: ImageCaptionSplit, options: Cc3mOptions): ImageCaptionSplit {
  const limit = options.cc3mTestLimit === undefined ? CC3M_TEST_LIMIT : options.cc3mTestLimit;
  if (s.split !== 'test' || limit === null) return s;
  if (!Number.isInteger(limit) || limit <= 0) throw new ConfigError(`data.cc3mTestLimit: expected a positive integer or null, got ${limit}`);
  return s.images.length <= limit ? s : takeImages(s, limit);
}

/**
 * Read one split of CC3M from `dir`: the release's `cc3m_captions_<split>.json` when present, else
 * `chat.json` or `metadata.json` split as `options` says (see the module comment).
 */
export async function readCc3m(dir: string, split: SplitName, options: Cc3mOptions = {}): Promise<ImageCaptionSplit> {
  if (split === 'rest') throw new DatasetError(dir, 'CC3M has no split rest');
  const blip = captionsFolder(dir);
  if (blip !== undefined) {
    return capTest(await readKarpathyJson(CC3M_DATASET, split, join(blip, `${CC3M_CAPTIONS_PREFIX}_${split}.json`), dir), options);
  }
  const mode = options.cc3mSplit ?? '3:1:1';
  if (!CC3M_SPLIT_MODES.includes(mode)) throw new ConfigError(`data.cc3mSplit: expected one of ${CC3M_SPLIT_MODES.join(', ')}, got ${String(mode)}`);
  const { file, format } = annotationFile(dir);
  const records = await readCc3mRecords(file, format);
  const splitsFile = join(dir, CC3M_SPLITS_FILE);
  const chosen = existsSync(splitsFile)
    ? await splitByList(splitsFile, records, basename(file), split)
    : splitByOrder(records, split, mode);
  const captions = new Map(chosen.map((r) => [r.image, [r.caption]]));
  return capTest(splitFromRows(CC3M_DATASET, split, join(dir, 'images'), chosen.map((r) => r.image), captions, file), options);
}
