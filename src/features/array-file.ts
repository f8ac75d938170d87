/**
 * Feature matrices made elsewhere: a 2-D float array in `.npy`, in one member of an `.npz` (stored or
 * deflated; zip64 members beyond 4 GiB), or in one tensor of a `.safetensors` file (F32, F16 or F64, with or
 * without ptmst's digest; the digest is checked when present). Values are converted to float32 as they are
 * read, in chunks, straight into the destination array (files beyond 2 GiB, and beyond Node's 4-GiB Buffer
 * cap, are read without holding their bytes), every value is checked finite, and the source file is hashed
 * (sha256) in the same pass. PyTorch files are refused: loading them unpickles, which runs code.
 */
import { createHash, type Hash } from 'node:crypto';
import { type FileHandle, open } from 'node:fs/promises';
import { endianness } from 'node:os';
import { basename, extname } from 'node:path';
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { ConfigError, CorruptFileError, MissingFileError } from '../errors';
import { DIGEST_KEY, MAX_HEADER_BYTES, canonicalJson } from '../store/safetensors';
import { FLOAT_BYTES, type FloatKind, NPY_PREAMBLE, floatKindOf, halfToFloat, npyHeaderLength, parseNpyHeader } from './npy';

export type ArrayFormat = 'npy' | 'npz' | 'safetensors';

/** A located 2-D float array: what its header says, before any value is read. */
export interface ExternalArray {
  readonly file: string;
  readonly format: ArrayFormat;
  /** the npz member (without `.npy`) or safetensors tensor; absent for `.npy` */
  readonly key?: string;
  readonly dtype: FloatKind;
  readonly rows: number;
  readonly dim: number;
  /** .npy and .safetensors: where the values lie in the file */
  readonly range?: { readonly start: number; readonly end: number };
  /** .safetensors with a ptmst digest: the header part the digest covers, and the data section's start */
  readonly digest?: { readonly expected: string; readonly canonical: string; readonly dataStart: number };
}

export const PYTORCH_MESSAGE =
  'is a PyTorch file: loading it unpickles, which runs code, so ptmst does not read it. Convert it once in Python: ' +
  "`import numpy as np, torch` then `np.save('features.npy', torch.load('FILE', map_location='cpu').float().numpy())`, " +
  'and import features.npy';

const PYTORCH_EXT = new Set(['.pt', '.pth', '.bin', '.ckpt', '.pkl', '.pickle']);
const FORMATS: Record<string, ArrayFormat> = { '.npy': 'npy', '.npz': 'npz', '.safetensors': 'safetensors' };

/** Default read size: large enough to stream at disk speed, small beside any feature set worth streaming. */
export const DEFAULT_CHUNK_BYTES = 64 << 20;

/** The format of a feature file by its extension; PyTorch and unknown ones are refused here. */
export function arrayFormatOf(file: string): ArrayFormat {
  const ext = extname(file).toLowerCase();
  if (PYTORCH_EXT.has(ext)) throw new ConfigError(`${file} ${PYTORCH_MESSAGE.replace('FILE', basename(file))}`);
  const f = FORMATS[ext];
  if (f === undefined) throw new ConfigError(`${file}: unknown feature file type "${ext}"; valid: .npy, .npz, .safetensors`);
  return f;
}

async function openFile(file: string): Promise<FileHandle> {
  try {
    return await open(file, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(file);
    throw new CorruptFileError(file, `cannot read (${(e as Error).message})`);
  }
}

async function readAt(fh: FileHandle, position: number, length: number, file: string): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  const { bytesRead } = await fh.read(buf, 0, length, position);
  if (bytesRead !== length) throw new CorruptFileError(file, `truncated: ends at byte ${position + bytesRead}, expected ${position + length}`);
  return buf;
}

function twoD(shape: readonly number[], file: string, what: string): { rows: number; dim: number } {
  if (shape.length !== 2) {
    throw new CorruptFileError(file, `${what} has shape [${shape.join(', ')}], not 2-D (rows × dim); reshape it: x.reshape(len(x), -1)`);
  }
  if (shape[1] === 0) throw new CorruptFileError(file, `${what} has shape [${shape.join(', ')}]: zero columns`);
  return { rows: shape[0]!, dim: shape[1]! };
}

/** Read the header of a feature file and locate its array (`key`: the npz member or safetensors tensor). */
export async function probeArray(file: string, key?: string): Promise<ExternalArray> {
  const format = arrayFormatOf(file);
  if (format === 'npz') return probeNpz(file, key);
  const fh = await openFile(file);
  try {
    const size = (await fh.stat()).size;
    if (format === 'npy') {
      if (key !== undefined) throw new ConfigError(`--key ${key}: ${file} is a .npy file, which holds one array (key is for .npz and .safetensors)`);
      const pre = await readAt(fh, 0, Math.min(NPY_PREAMBLE, size), file);
      if (size >= 4 && pre.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))) {
        throw new CorruptFileError(file, 'is a zip archive, not a .npy array (an .npz, or a PyTorch file?)');
      }
      const h = parseNpyHeader(await readAt(fh, 0, Math.min(npyHeaderLength(pre, file), size), file), file);
      const kind = floatKindOf(h.descr, file);
      const { rows, dim } = twoD(h.shape, file, 'the array');
      const end = h.dataOffset + rows * dim * FLOAT_BYTES[kind];
      if (end > size) throw new CorruptFileError(file, `truncated: ${size} bytes, the header promises ${end}`);
      if (end < size) throw new CorruptFileError(file, `${size - end} bytes after the array's ${rows * dim} values`);
      return { file, format, dtype: kind, rows, dim, range: { start: h.dataOffset, end } };
    }
    return await probeSafetensors(fh, size, file, key);
  } finally {
    await fh.close();
  }
}

const ST_KINDS: Record<string, FloatKind> = { F16: 'f2', F32: 'f4', F64: 'f8' };

async function probeSafetensors(fh: FileHandle, size: number, file: string, key?: string): Promise<ExternalArray> {
  if (size < 8) throw new CorruptFileError(file, `truncated: ${size} bytes, no header`);
  const n = (await readAt(fh, 0, 8, file)).readBigUInt64LE(0);
  if (n > BigInt(Math.min(MAX_HEADER_BYTES, size - 8))) throw new CorruptFileError(file, `header length ${n} is impossible for a ${size}-byte file`);
  const headerLen = Number(n);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse((await readAt(fh, 8, headerLen, file)).toString('utf8')) as Record<string, unknown>;
  } catch (e) {
    if (e instanceof CorruptFileError) throw e;
    throw new CorruptFileError(file, 'header is not valid JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) throw new CorruptFileError(file, 'header is not a JSON object');
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  const name = key ?? (names.length === 1 ? names[0]! : names.includes('features') ? 'features' : undefined);
  if (name === undefined) throw new ConfigError(`${file} holds ${names.length} tensors (${names.slice(0, 10).join(', ')}): pass --key NAME`);
  if (!names.includes(name)) throw new ConfigError(`--key ${name}: ${file} has no such tensor; it has ${names.slice(0, 10).join(', ') || 'none'}`);
  const e = header[name] as { dtype?: unknown; shape?: unknown; data_offsets?: unknown } | null;
  const dtype = typeof e?.dtype === 'string' ? ST_KINDS[e.dtype] : undefined;
  if (dtype === undefined) throw new CorruptFileError(file, `tensor ${name}: dtype ${String(e?.dtype)} is not F16, F32 or F64`);
  const shape = Array.isArray(e!.shape) && e!.shape.every((d) => Number.isSafeInteger(d) && d >= 0) ? (e!.shape as number[]) : undefined;
  if (!shape) throw new CorruptFileError(file, `tensor ${name}: bad shape`);
  const { rows, dim } = twoD(shape, file, `tensor ${name}`);
  const off = e!.data_offsets;
  const dataStart = 8 + headerLen;
  if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new CorruptFileError(file, `tensor ${name}: bad data_offsets`);
  const [b, end] = off as [number, number];
  if (end - b !== rows * dim * FLOAT_BYTES[dtype]) throw new CorruptFileError(file, `tensor ${name}: ${end - b} bytes do not match shape [${shape}]`);
  if (dataStart + end > size) throw new CorruptFileError(file, `truncated: tensor ${name} ends at byte ${dataStart + end}, the file has ${size}`);
  const meta = header.__metadata__ as Record<string, unknown> | undefined;
  const expected = meta && typeof meta[DIGEST_KEY] === 'string' ? (meta[DIGEST_KEY] as string) : undefined;
  let digest: ExternalArray['digest'];
  if (expected !== undefined) {
    // the digest's header: every tensor entry, and the metadata without the digest (dropped when that was all)
    const rest = Object.fromEntries(Object.entries(meta!).filter(([k]) => k !== DIGEST_KEY));
    const entries: [string, unknown][] = Object.entries(header).filter(([k]) => k !== '__metadata__');
    if (Object.keys(rest).length > 0) entries.push(['__metadata__', rest]);
    digest = { expected, canonical: canonicalJson(Object.fromEntries(entries)), dataStart };
  }
  return {
    file,
    format: 'safetensors',
    key: name,
    dtype,
    rows,
    dim,
    range: { start: dataStart + b, end: dataStart + end },
    ...(digest ? { digest } : {}),
  };
}

// ---- npz (yauzl) ----

async function openZip(file: string): Promise<yauzl.ZipFile> {
  try {
    return await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, strictFileNames: false });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(file);
    throw new CorruptFileError(file, `not a readable .npz (zip) archive (${(e as Error).message})`);
  }
}

/** The member holding `key` (default: the only array), its npy header, and the zip to read it from. */
async function npzMember(file: string, key?: string): Promise<{ zip: yauzl.ZipFile; entry: yauzl.Entry; keys: string[] }> {
  const zip = await openZip(file);
  try {
    const arrays: yauzl.Entry[] = [];
    let pickle = false;
    for await (const entry of zip.eachEntry()) {
      if (entry.fileName.endsWith('.npy')) arrays.push(entry);
      if (entry.fileName.endsWith('data.pkl')) pickle = true;
    }
    const keys = arrays.map((e) => e.fileName.slice(0, -4));
    if (arrays.length === 0) {
      if (pickle) throw new ConfigError(`${file} ${PYTORCH_MESSAGE.replace('FILE', basename(file))}`);
      throw new CorruptFileError(file, 'holds no .npy member (not an .npz of arrays)');
    }
    const name = key ?? (keys.length === 1 ? keys[0]! : undefined);
    if (name === undefined) throw new ConfigError(`${file} holds ${keys.length} arrays (${keys.slice(0, 10).join(', ')}): pass --key NAME`);
    const entry = arrays.find((_, i) => keys[i] === name || keys[i] === name.replace(/\.npy$/, ''));
    if (!entry) throw new ConfigError(`--key ${name}: ${file} has no such array; it has ${keys.slice(0, 10).join(', ')}`);
    if (entry.isEncrypted()) throw new CorruptFileError(file, `member ${entry.fileName} is encrypted`);
    if (!entry.canDecodeFileData()) throw new CorruptFileError(file, `member ${entry.fileName}: compression method ${entry.compressionMethod} (only stored and deflated are read)`);
    return { zip, entry, keys };
  } catch (e) {
    zip.close();
    throw e;
  }
}

async function memberStream(zip: yauzl.ZipFile, entry: yauzl.Entry, file: string): Promise<Readable> {
  try {
    return await zip.openReadStreamPromise(entry);
  } catch (e) {
    throw new CorruptFileError(file, `member ${entry.fileName}: ${(e as Error).message}`);
  }
}

/** Split a member's byte stream into its npy header and an iterator of the value bytes after it. */
async function npyFromStream(stream: AsyncIterable<Buffer>, where: string): Promise<{ header: ReturnType<typeof parseNpyHeader>; rest: AsyncIterator<Buffer>; first: Buffer }> {
  const it = stream[Symbol.asyncIterator]();
  let head = Buffer.alloc(0);
  let need = NPY_PREAMBLE;
  for (;;) {
    if (head.length >= need) {
      if (need === NPY_PREAMBLE || head.length < 10) need = npyHeaderLength(head, where);
      if (head.length >= need) break;
      continue;
    }
    const r = await it.next();
    if (r.done) {
      if (head.length >= 10 && need === NPY_PREAMBLE) need = npyHeaderLength(head, where);
      if (head.length >= need) break;
      throw new CorruptFileError(where, `truncated .npy header (${head.length} bytes)`);
    }
    head = Buffer.concat([head, r.value]);
  }
  const header = parseNpyHeader(head, where);
  return { header, rest: it, first: head.subarray(header.dataOffset) };
}

async function probeNpz(file: string, key?: string): Promise<ExternalArray> {
  const { zip, entry } = await npzMember(file, key);
  try {
    const where = `${file} (member ${entry.fileName})`;
    const stream = await memberStream(zip, entry, file);
    try {
      const { header } = await npyFromStream(stream, where);
      const kind = floatKindOf(header.descr, where);
      const { rows, dim } = twoD(header.shape, where, 'the array');
      const want = header.dataOffset + rows * dim * FLOAT_BYTES[kind];
      if (want !== entry.uncompressedSize) {
        throw new CorruptFileError(where, `${entry.uncompressedSize} bytes, the header promises ${want}`);
      }
      return { file, format: 'npz', key: entry.fileName.slice(0, -4), dtype: kind, rows, dim };
    } finally {
      stream.destroy();
    }
  } finally {
    zip.close();
  }
}

// ---- values into float32 ----

export interface ReadArrayOptions {
  /** destination row of each source row (default: the same row) */
  readonly rowOf?: Int32Array;
  /** bytes per read (default 64 MiB) */
  readonly chunkBytes?: number;
}

export interface ReadArrayResult {
  /** rows × dim, float32, rows in destination order */
  readonly data: Float32Array;
  /** sha256 of the whole source file */
  readonly sha256: string;
  /** the source file's size */
  readonly bytes: number;
}

/** Converts a stream of little-endian values into a float32 matrix, checking each value finite. */
class RowFiller {
  readonly data: Float32Array;
  private readonly size: number;
  private readonly total: number;
  private carry = Buffer.alloc(0);
  private element = 0;
  private row = 0;
  private col = 0;
  private scratch = new ArrayBuffer(0);

  constructor(
    private readonly a: ExternalArray,
    private readonly rowOf: Int32Array | undefined,
  ) {
    this.size = FLOAT_BYTES[a.dtype];
    this.total = a.rows * a.dim;
    this.data = new Float32Array(this.total);
  }

  push(bytes: Uint8Array): void {
    let src = bytes;
    if (this.carry.length > 0) {
      src = Buffer.concat([this.carry, bytes]);
      this.carry = Buffer.alloc(0);
    }
    const whole = Math.floor(src.length / this.size);
    if (whole * this.size < src.length) this.carry = Buffer.from(src.subarray(whole * this.size));
    if (whole === 0) return;
    if (this.element + whole > this.total) throw new CorruptFileError(this.where(), `more values than its shape [${this.a.rows}, ${this.a.dim}] holds`);
    // copy into an aligned buffer: a typed view needs an offset that is a multiple of the element size
    if (this.scratch.byteLength < whole * this.size) this.scratch = new ArrayBuffer(whole * this.size);
    new Uint8Array(this.scratch, 0, whole * this.size).set(src.subarray(0, whole * this.size));
    const values =
      this.a.dtype === 'f4'
        ? new Float32Array(this.scratch, 0, whole)
        : this.a.dtype === 'f8'
          ? new Float64Array(this.scratch, 0, whole)
          : new Uint16Array(this.scratch, 0, whole);
    const half = this.a.dtype === 'f2' ? halfToFloat() : undefined;
    const { dim } = this.a;
    const out = this.data;
    let { row, col } = this;
    let base = (this.rowOf ? this.rowOf[row]! : row) * dim;
    for (let k = 0; k < whole; k++) {
      const v = half ? half[values[k]!]! : values[k]!;
      const f = Math.fround(v);
      if (f - f !== 0) this.nonFinite(row, col, v);
      out[base + col] = f;
      if (++col === dim) {
        col = 0;
        row++;
        if (row < this.a.rows) base = (this.rowOf ? this.rowOf[row]! : row) * dim;
      }
    }
    this.row = row;
    this.col = col;
    this.element += whole;
  }

  finish(): Float32Array {
    if (this.element !== this.total || this.carry.length > 0) {
      throw new CorruptFileError(this.where(), `truncated: ${this.element} of ${this.total} values`);
    }
    return this.data;
  }

  private where(): string {
    return this.a.format === 'npz' ? `${this.a.file} (member ${this.a.key}.npy)` : this.a.file;
  }

  private nonFinite(row: number, col: number, v: number): never {
    const what = Number.isFinite(v) ? `${v} overflows float32` : `${v}`;
    throw new CorruptFileError(this.where(), `row ${row} (0-based, as stored) holds a value that is not finite: ${what} at column ${col}`);
  }
}

/** Read `[from, to)` of a file in chunks, feeding every byte of the file to `hash` and the range to `sink`. */
async function scanFile(file: string, chunkBytes: number, hash: Hash, range?: { start: number; end: number }, sink?: (b: Buffer, pos: number) => void): Promise<number> {
  const fh = await openFile(file);
  try {
    const size = (await fh.stat()).size;
    const buf = Buffer.alloc(Math.max(1, Math.min(chunkBytes, size)));
    for (let pos = 0; pos < size; ) {
      const { bytesRead } = await fh.read(buf, 0, Math.min(buf.length, size - pos), pos);
      if (bytesRead === 0) throw new CorruptFileError(file, `truncated while reading: ends at byte ${pos}`);
      const piece = buf.subarray(0, bytesRead);
      hash.update(piece);
      if (range && sink) {
        const a = Math.max(pos, range.start);
        const b = Math.min(pos + bytesRead, range.end);
        if (a < b) sink(piece.subarray(a - pos, b - pos), a);
      }
      pos += bytesRead;
    }
    return size;
  } finally {
    await fh.close();
  }
}

/** Read a located array into float32 (rows placed by `rowOf`), checked finite; hash its file. */
export async function readArray(a: ExternalArray, opts: ReadArrayOptions = {}): Promise<ReadArrayResult> {
  if (endianness() !== 'LE') throw new Error('reading feature files needs a little-endian machine');
  const chunkBytes = opts.chunkBytes ?? DEFAULT_CHUNK_BYTES;
  const filler = new RowFiller(a, opts.rowOf);
  const hash = createHash('sha256');
  let bytes: number;
  if (a.format === 'npz') {
    const { zip, entry } = await npzMember(a.file, a.key);
    try {
      const where = `${a.file} (member ${entry.fileName})`;
      const stream = await memberStream(zip, entry, a.file);
      try {
        const { rest, first } = await npyFromStream(stream, where);
        filler.push(first);
        for (let r = await rest.next(); !r.done; r = await rest.next()) filler.push(r.value);
      } catch (e) {
        stream.destroy();
        if (e instanceof CorruptFileError) throw e;
        throw new CorruptFileError(where, `cannot be read (${(e as Error).message})`);
      }
    } finally {
      zip.close();
    }
    bytes = await scanFile(a.file, chunkBytes, hash);
  } else {
    const d = a.digest;
    const digest = d ? createHash('sha256').update(d.canonical, 'utf8').update('\n') : undefined;
    const all = d ? { start: d.dataStart, end: Number.MAX_SAFE_INTEGER } : a.range!;
    bytes = await scanFile(a.file, chunkBytes, hash, all, (piece, pos) => {
      digest?.update(piece);
      const s = Math.max(pos, a.range!.start);
      const t = Math.min(pos + piece.length, a.range!.end);
      if (s < t) filler.push(piece.subarray(s - pos, t - pos));
    });
    if (digest && `sha256:${digest.digest('hex')}` !== d!.expected) {
      throw new CorruptFileError(a.file, `${DIGEST_KEY} mismatch: the file is corrupted or was edited`);
    }
  }
  return { data: filler.finish(), sha256: hash.digest('hex'), bytes };
}
