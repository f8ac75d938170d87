/**
 * NumPy's `.npy` format (numpy.lib.format, versions 1.0, 2.0 and 3.0): the magic `\x93NUMPY`, a major and
 * minor version byte, the header length (uint16 LE in 1.0, uint32 LE in 2.0/3.0), then a Python dict literal
 * `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }` (latin-1 in 1.0/2.0, UTF-8 in 3.0), then
 * the raw values. Only what `np.save` writes for plain arrays is read: little-endian numbers in C order.
 * Object arrays are pickles (loading them runs code) and are refused, as are Fortran order and big-endian
 * data; each refusal is one CorruptFileError naming the file.
 */
import { CorruptFileError } from '../errors';

export const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY

/** What a header says: the dtype as numpy spells it (`<f4`), the shape, and where the values start. */
export interface NpyHeader {
  readonly descr: string;
  readonly shape: readonly number[];
  /** bytes before the values (magic, version, length, dict) */
  readonly dataOffset: number;
  readonly version: string;
}

/** Bytes needed to know the header's length: magic (6), version (2), length (2 or 4). */
export const NPY_PREAMBLE = 12;

/** The header's total length from the first bytes (at least 10; 12 for versions 2 and 3). */
export function npyHeaderLength(head: Uint8Array, file: string): number {
  if (head.length < 10 || !Buffer.from(head.subarray(0, 6)).equals(NPY_MAGIC)) {
    throw new CorruptFileError(file, 'not a .npy array (no \\x93NUMPY magic at its start)');
  }
  const major = head[6]!;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (major === 1) return 10 + view.getUint16(8, true);
  if (major === 2 || major === 3) {
    if (head.length < 12) throw new CorruptFileError(file, 'truncated .npy header');
    return 12 + view.getUint32(8, true);
  }
  throw new CorruptFileError(file, `.npy format version ${major}.${head[7]} is not 1.0, 2.0 or 3.0`);
}

/** Parse the whole header (`bytes` holds at least `npyHeaderLength` bytes). */
export function parseNpyHeader(bytes: Uint8Array, file: string): NpyHeader {
  const total = npyHeaderLength(bytes, file);
  if (bytes.length < total) throw new CorruptFileError(file, `truncated .npy header (${bytes.length} of ${total} bytes)`);
  const major = bytes[6]!;
  const start = major === 1 ? 10 : 12;
  const text = Buffer.from(bytes.subarray(start, total)).toString(major === 3 ? 'utf8' : 'latin1');
  const bad = (what: string) => new CorruptFileError(file, `.npy header ${what}: ${JSON.stringify(text.trim().slice(0, 200))}`);
  const descr = /['"]descr['"]\s*:\s*(['"])([^'"]*)\1/.exec(text);
  if (!descr) {
    if (/['"]descr['"]\s*:\s*\[/.test(text)) throw new CorruptFileError(file, 'holds a structured (record) array; save a plain 2-D float array');
    throw bad('has no descr');
  }
  const fortran = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text);
  if (!fortran) throw bad('has no fortran_order');
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text);
  if (!shapeText) throw bad('has no shape');
  const shape = shapeText[1]!
    .split(',')
    .map((s) => s.trim().replace(/L$/, ''))
    .filter((s) => s !== '')
    .map((s) => (/^\d+$/.test(s) ? Number(s) : NaN));
  if (shape.some((d) => !Number.isSafeInteger(d))) throw bad('has a bad shape');
  const d = descr[2]!;
  if (d.includes('O')) {
    throw new CorruptFileError(file, `holds Python objects (dtype ${d}): loading them unpickles, which runs code; save a float array`);
  }
  if (fortran[1] === 'True') {
    throw new CorruptFileError(file, 'is in Fortran (column-major) order; save it in C order: np.save(path, np.ascontiguousarray(x))');
  }
  if (d.startsWith('>')) {
    throw new CorruptFileError(file, `is big-endian (dtype ${d}); save it little-endian: np.save(path, x.astype('<${d.slice(1)}'))`);
  }
  return { descr: d, shape, dataOffset: total, version: `${major}.${bytes[7]}` };
}

/** Float element types an imported feature file may hold, with their byte sizes. */
export const FLOAT_BYTES = { f2: 2, f4: 4, f8: 8 } as const;
export type FloatKind = keyof typeof FLOAT_BYTES;

/** The float kind of a numpy descr (`<f4`, `=f8`, `<f2`), or an error naming the file and the dtype. */
export function floatKindOf(descr: string, file: string): FloatKind {
  const m = /^[<=|]?(f[248])$/.exec(descr);
  if (m) return m[1] as FloatKind;
  throw new CorruptFileError(file, `dtype ${descr} is not float16, float32 or float64 (<f2, <f4, <f8); convert it: x.astype('float32')`);
}

/** float16 bit patterns to their values (all 65,536 of them, built once). */
let halfTable: Float32Array | undefined;
export function halfToFloat(): Float32Array {
  if (halfTable) return halfTable;
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const sign = h & 0x8000 ? -1 : 1;
    const exp = (h >> 10) & 0x1f;
    const frac = h & 0x3ff;
    if (exp === 0) t[h] = sign * frac * 2 ** -24;
    else if (exp === 31) t[h] = frac === 0 ? sign * Infinity : NaN;
    else t[h] = sign * (1 + frac / 1024) * 2 ** (exp - 15);
  }
  halfTable = t;
  return t;
}
