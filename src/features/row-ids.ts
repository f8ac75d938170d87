/**
 * A sidecar list of row ids for imported features (`import-features --ids FILE`): a text file (one id a
 * line) or a 1-D `.npy` of strings or integers, one id per row of the feature file. For images an id is an
 * image name; for captions it is the image name of the caption's row (the k-th row naming an image is that
 * image's k-th caption). A name matches as the annotation writes it, or by its base name, or by its base name
 * without extension, whichever rule places every id; when no id is a name and all are integers, they are
 * 0-based row indices into the split's order. The result places each file row at its split row; unknown,
 * duplicate and missing ids are one ConfigError naming the ids file and a few of each.
 */
import { readFile } from 'node:fs/promises';
import { basename, extname } from 'node:path';
import type { ImageCaptionSplit } from '../data/dataset';
import { ConfigError, CorruptFileError, MissingFileError } from '../errors';
import type { Modality } from './cache';
import { NPY_MAGIC, parseNpyHeader } from './npy';

export type RowId = string | number;

const INT_DESCR = /^[<=|]?([iu])([1248])$/;

/** The ids in a text file or a 1-D .npy (unicode `<U`, bytes `|S`, or integer dtypes). */
export async function readIds(file: string): Promise<RowId[]> {
  let buf: Buffer;
  try {
    buf = await readFile(file);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(file);
    throw new CorruptFileError(file, `cannot read (${(e as Error).message})`);
  }
  if (!buf.subarray(0, 6).equals(NPY_MAGIC)) {
    const lines = buf.toString('utf8').replace(/^\uFEFF/, '').split(/\r?\n/).map((l) => l.trim());
    while (lines.length > 0 && lines[lines.length - 1] === '') lines.pop();
    const empty = lines.indexOf('');
    if (empty >= 0) throw new CorruptFileError(file, `line ${empty + 1} is empty (one id a line, one line per feature row)`);
    return lines;
  }
  const h = parseNpyHeader(buf, file);
  if (h.shape.length !== 1) throw new CorruptFileError(file, `ids array has shape [${h.shape.join(', ')}], not 1-D`);
  const n = h.shape[0]!;
  const data = buf.subarray(h.dataOffset);
  const int = INT_DESCR.exec(h.descr);
  const str = /^[<=|]?([US])(\d+)$/.exec(h.descr);
  if (int) {
    const size = Number(int[2]);
    if (data.length !== n * size) throw new CorruptFileError(file, `${data.length} value bytes, the header promises ${n * size}`);
    const signed = int[1] === 'i';
    return Array.from({ length: n }, (_, k) => {
      const o = k * size;
      if (size === 8) return Number(signed ? data.readBigInt64LE(o) : data.readBigUInt64LE(o));
      if (size === 4) return signed ? data.readInt32LE(o) : data.readUInt32LE(o);
      if (size === 2) return signed ? data.readInt16LE(o) : data.readUInt16LE(o);
      return signed ? data.readInt8(o) : data.readUInt8(o);
    });
  }
  if (str) {
    const chars = Number(str[2]);
    const size = str[1] === 'U' ? 4 * chars : chars;
    if (data.length !== n * size) throw new CorruptFileError(file, `${data.length} value bytes, the header promises ${n * size}`);
    return Array.from({ length: n }, (_, k) => {
      const cell = data.subarray(k * size, (k + 1) * size);
      if (str[1] === 'S') return cell.toString('utf8').replace(/\0+$/, '');
      let s = '';
      for (let c = 0; c < chars; c++) {
        const cp = cell.readUInt32LE(4 * c);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      return s;
    });
  }
  throw new CorruptFileError(file, `ids dtype ${h.descr} is neither strings (<U, |S) nor integers`);
}

const RULES: readonly [string, (name: string) => string][] = [
  ['as written', (s) => s],
  ['by base name', (s) => basename(s)],
  ['by base name without extension', (s) => basename(s, extname(s))],
];

const few = (xs: readonly unknown[]) => xs.slice(0, 5).map((x) => JSON.stringify(x)).join(', ') + (xs.length > 5 ? `, … (${xs.length})` : '');

/** Split row of each file row (`rowOf[fileRow]`), or one error naming the ids file and what is wrong. */
export function orderByIds(ids: readonly RowId[], split: ImageCaptionSplit, modality: Modality, idsFile: string): Int32Array {
  const rows = modality === 'image' ? split.images.length : split.captions.length;
  const what = modality === 'image' ? 'images' : 'captions';
  if (ids.length !== rows) {
    throw new ConfigError(`${idsFile}: ${ids.length} ids, the ${split.dataset} ${split.split} split has ${rows} ${what}`);
  }
  const rowOf = new Int32Array(ids.length).fill(-1);
  const unknown: RowId[] = [];
  const duplicate: RowId[] = [];
  const allInts = ids.every((id) => typeof id === 'number' || /^\d+$/.test(id));
  // the first naming rule that places every id (a rule under which two images share a key is skipped)
  let best: { index: Map<string, number>; placed: number } | undefined;
  for (const [, key] of RULES) {
    const index = new Map<string, number>();
    let clash = false;
    split.images.forEach((name, i) => {
      const k = key(name);
      if (index.has(k)) clash = true;
      index.set(k, i);
    });
    if (clash) continue;
    const placed = ids.filter((id) => index.has(String(id))).length;
    if (best === undefined || placed > best.placed) best = { index, placed };
    if (placed === ids.length) break;
  }
  const byIndex = allInts && (best === undefined || best.placed === 0);
  const used = new Uint8Array(rows);
  const nextCaption = new Int32Array(split.images.length);
  ids.forEach((id, r) => {
    let target: number;
    if (byIndex) {
      target = Number(id);
      if (!(target >= 0 && target < rows)) {
        unknown.push(id);
        return;
      }
    } else {
      const image = best?.index.get(String(id));
      if (image === undefined) {
        unknown.push(id);
        return;
      }
      if (modality === 'image') target = image;
      else {
        const caps = split.imageToCaptions[image]!;
        const k = nextCaption[image]!++;
        if (k >= caps.length) {
          duplicate.push(id);
          return;
        }
        target = caps[k]!;
      }
    }
    if (used[target]) {
      duplicate.push(id);
      return;
    }
    used[target] = 1;
    rowOf[r] = target;
  });
  if (unknown.length + duplicate.length > 0) {
    const missing: string[] = [];
    for (let t = 0; t < rows; t++) {
      if (!used[t]) missing.push(modality === 'image' ? split.images[t]! : `caption ${t} (${split.images[split.captionToImage[t]!]})`);
    }
    const parts = [
      unknown.length > 0 ? `${unknown.length} unknown id(s) ${few(unknown)}${byIndex ? ` (row indices must be 0 to ${rows - 1})` : ''}` : '',
      duplicate.length > 0 ? `${duplicate.length} duplicate id(s) ${few(duplicate)}${modality === 'text' && !byIndex ? ' (an image named more often than it has captions)' : ''}` : '',
      `split rows without an id: ${few(missing)}`,
    ].filter((p) => p !== '');
    throw new ConfigError(`${idsFile}: ${parts.join('; ')} (ids are ${byIndex ? 'row indices' : `image names of the ${split.dataset} ${split.split} split`})`);
  }
  return rowOf;
}
