/**
 * safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets}, __metadata__: {string: string}}`, then the raw
 * little-endian bytes. Python reads these files with `safetensors.numpy.load_file`.
 *
 * No maintained npm package writes this format (the `safetensors` name on npm is a 0.0.1 stub), so it is
 * implemented here, with a strict reader: every inconsistency is a CorruptFileError naming the file.
 * `readSafetensors` validates the header length and the whole header before it reads the data section,
 * so a hostile or damaged file costs at most MAX_HEADER_BYTES of memory before it is rejected.
 *
 * Content digest: the writer adds `__metadata__["ptmst.digest"] = "sha256:<hex>"`, the sha256 of
 * `canonicalJson(header without the digest) + "\n" + data section`, where the header keeps only what it
 * says (tensor entries and `__metadata__`, dropped when the digest was its only key) and
 * `canonicalJson` sorts object keys. Python recomputes it with
 * `json.dumps(h, sort_keys=True, separators=(",", ":"), ensure_ascii=False)` (same order unless a key
 * holds characters beyond U+FFFF). The reader checks the digest whenever present; files from other
 * writers have none and are accepted unless `requireDigest` (which every reader of ptmst's own artefacts
 * sets). The digest is not returned in `metadata`.
 *
 * Finite values: every F32 and F64 tensor read back is checked, and a NaN or ±Infinity is an error naming
 * the file, the tensor and the element (`allowNonFinite` lets a caller that stores them on purpose through).
 * No artefact of this project holds one; a teacher, feature or score that does was damaged, or edited.
 */
import { type Hash, createHash } from 'node:crypto';
import { constants } from 'node:buffer';
import { type FileHandle, open } from 'node:fs/promises';
import { CorruptFileError, MissingFileError } from '../errors';
import { writeAtomic, writeAtomicChunks } from './atomic';

export const DTYPES = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U8: Uint8Array,
} as const;
export type DType = keyof typeof DTYPES;
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

/** Largest accepted header, in bytes: the cap of the reference (Rust) reader. */
export const MAX_HEADER_BYTES = 100_000_000;
/** The metadata key holding the content digest; reserved, never returned to callers. */
export const DIGEST_KEY = 'ptmst.digest';

export interface NamedTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

/** Tensors to write, by name, in insertion order. */
export type TensorRecord = Record<string, { shape: readonly number[]; data: TypedArray }>;

export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, NamedTensor>;
  /** The file's string metadata, without `ptmst.digest`. */
  readonly metadata: Readonly<Record<string, string>>;
}

export interface ReadOptions {
  /** Reject files without a `ptmst.digest` (default: accept them unverified: files from other writers). */
  readonly requireDigest?: boolean;
  /** Accept NaN and infinite values in float tensors (default: an error naming the tensor). */
  readonly allowNonFinite?: boolean;
}

// the error classes live with every other error (src/errors.ts); re-exported for readers of this module
export { CorruptFileError, MissingFileError };

function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

// Own properties only: `constructor`, `__proto__`, `toString` are "in" DTYPES through the prototype.
const isDType = (v: unknown): v is DType => typeof v === 'string' && Object.hasOwn(DTYPES, v);
const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);
const kindOf = (v: unknown): string => (v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`);

/** Element count of a shape, or undefined unless every dim is a safe integer >= 0 and no partial product overflows. */
function elementCount(shape: unknown): number | undefined {
  if (!Array.isArray(shape)) return undefined;
  let n = 1;
  for (const d of shape as unknown[]) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) return undefined;
    n *= d;
    if (n > Number.MAX_SAFE_INTEGER) return undefined;
  }
  return n;
}

/** JSON with object keys sorted recursively (by UTF-16 code units); arrays keep their order. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (isObject(v)) {
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(v[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** A sha256 fed the canonical header (entries as [key, value], no digest) and "\n": the data section follows. */
function contentHasher(headerEntries: [string, unknown][], metadata: Readonly<Record<string, string>>): Hash {
  const entries = Object.keys(metadata).length > 0 ? [...headerEntries, ['__metadata__', metadata]] : headerEntries;
  // fromEntries defines own properties, so a tensor named `__proto__` stays a key
  const canonical = canonicalJson(Object.fromEntries(entries));
  return createHash('sha256').update(canonical, 'utf8').update('\n');
}

/** The `ptmst.digest` value for a header (entries as [key, value], no digest) and a data section (in parts). */
function contentDigest(headerEntries: [string, unknown][], metadata: Readonly<Record<string, string>>, data: TypedArray[]): string {
  const hash = contentHasher(headerEntries, metadata);
  for (const part of data) for (const c of chunksOf(part, CHUNK_BYTES)) hash.update(c);
  return `sha256:${hash.digest('hex')}`;
}

/** Bytes one read or write of the chunked reader and writer moves (64 MiB): files may exceed any one Buffer. */
export const CHUNK_BYTES = 64 << 20;

/** Bytes of one span: a byte view may hold at most 2^32 − 1 elements (Node 20), a float32 tensor four times that. */
const SPAN_BYTES = 2 ** 30;

/** Byte views of at most `size` bytes over `a`, in order (no copies; spans of SPAN_BYTES, chunks within them). */
function* chunksOf(a: TypedArray, size: number, spanBytes = SPAN_BYTES): Generator<Uint8Array> {
  const per = Math.max(1, Math.floor(spanBytes / a.BYTES_PER_ELEMENT));
  for (let from = 0; from < a.length; from += per) {
    const span = bytesOf(a.subarray(from, Math.min(a.length, from + per)));
    for (let at = 0; at < span.length; at += size) yield span.subarray(at, Math.min(span.length, at + size));
  }
}

/** A byte view of a typed array (shares its memory, also a SharedArrayBuffer's); under 4 GiB (see SPAN_BYTES). */
const bytesOf = (d: TypedArray): Uint8Array => new Uint8Array(d.buffer, d.byteOffset, d.byteLength);

/** The 8-byte length and JSON header, and the tensors' bytes (views), as the file lays them out. */
function layout(tensors: Readonly<TensorRecord>, metadata: Readonly<Record<string, string>>): { head: Buffer; parts: TypedArray[] } {
  for (const [k, v] of Object.entries(metadata)) {
    if (k === DIGEST_KEY) throw new Error(`metadata key "${DIGEST_KEY}" is reserved`);
    if (typeof v !== 'string') throw new Error(`metadata key ${JSON.stringify(k)}: value is ${kindOf(v)}, not a string`);
  }
  let offset = 0;
  const entries: [string, unknown][] = [];
  const parts: TypedArray[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error('tensor name "__metadata__" is reserved');
    const count = elementCount(t.shape);
    if (count !== t.data.length) {
      throw new Error(`tensor ${name}: shape [${t.shape}] holds ${count ?? 'no valid number of'} values, data has ${t.data.length}`);
    }
    entries.push([name, { dtype: dtypeOf(t.data), shape: [...t.shape], data_offsets: [offset, offset + t.data.byteLength] }]);
    parts.push(t.data);
    offset += t.data.byteLength;
  }
  const meta = { ...metadata, [DIGEST_KEY]: contentDigest(entries, metadata, parts) };
  let json = JSON.stringify(Object.fromEntries([['__metadata__', meta], ...entries]));
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return { head: Buffer.concat([len, Buffer.from(json, 'utf8')]), parts };
}

/** Serialise tensors (in the given order) and string metadata, plus the content digest, into one buffer. */
export function encodeSafetensors(
  tensors: Readonly<TensorRecord>,
  metadata: Readonly<Record<string, string>> = {},
): Buffer {
  const { head, parts } = layout(tensors, metadata);
  return Buffer.concat([head, ...parts.map(bytesOf)]);
}

interface Entry {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: number[];
  readonly count: number;
  readonly begin: number;
  readonly end: number;
}

/** A fully validated header: the tensors' layout matches a data section of the given length. */
interface Header {
  readonly entries: Entry[];
  /** every key but `__metadata__`, as parsed: what the digest covers besides the metadata */
  readonly raw: [string, unknown][];
  readonly metadata: Record<string, string>;
  readonly digest: string | undefined;
}

const noHeader = (file: string, size: number) => new CorruptFileError(file, `truncated: ${size} bytes, no header`);

/** The header length from the first 8 bytes, checked (as a BigInt, before any lossy conversion) against the cap and the file size. */
function headerLength(raw: bigint, size: number, file: string): number {
  if (raw > BigInt(MAX_HEADER_BYTES)) {
    throw new CorruptFileError(file, `header length ${raw} is impossible: above the ${MAX_HEADER_BYTES}-byte cap`);
  }
  const n = Number(raw); // exact: below the cap
  if (n > size - 8) {
    throw new CorruptFileError(file, `truncated: header length ${n} is impossible, the file has ${size - 8} bytes after it`);
  }
  return n;
}

/** Decode and validate the header bytes against a data section of `dataLen` bytes. */
function parseHeader(bytes: Uint8Array, dataLen: number, file: string): Header {
  let text: string;
  try {
    // fatal: invalid UTF-8 is an error, not U+FFFD; ignoreBOM: a BOM stays in the text and fails JSON.parse
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    throw new CorruptFileError(file, 'header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch {
    throw new CorruptFileError(file, 'header is not valid JSON');
  }
  if (!isObject(header)) throw new CorruptFileError(file, 'header is not a JSON object');

  const rawMeta = Object.hasOwn(header, '__metadata__') ? header.__metadata__ : {};
  if (!isObject(rawMeta)) throw new CorruptFileError(file, `__metadata__ is ${kindOf(rawMeta)}, not an object of strings`);
  const metaEntries: [string, string][] = [];
  let digest: string | undefined;
  for (const [k, v] of Object.entries(rawMeta)) {
    if (typeof v !== 'string') throw new CorruptFileError(file, `__metadata__ key ${JSON.stringify(k)}: value is ${kindOf(v)}, not a string`);
    if (k === DIGEST_KEY) digest = v;
    else metaEntries.push([k, v]);
  }

  const raw = Object.entries(header).filter(([k]) => k !== '__metadata__');
  const entries = raw
    .map(([name, e]): Entry => {
      const bad = (what: string) => new CorruptFileError(file, `tensor ${name}: ${what}`);
      if (!isObject(e)) throw bad(`entry is ${kindOf(e)}, not an object`);
      const extra = Object.keys(e).filter((k) => k !== 'dtype' && k !== 'shape' && k !== 'data_offsets');
      if (extra.length > 0) throw bad(`unexpected field(s) ${extra.slice(0, 3).map((k) => JSON.stringify(k)).join(', ')}`);
      if (!isDType(e.dtype)) throw bad(`unsupported dtype ${String(e.dtype)}`);
      const count = elementCount(e.shape);
      if (count === undefined) throw bad('bad shape: dims must be safe integers >= 0 with a safe-integer product');
      const off: unknown = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !(off as unknown[]).every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
        throw bad('bad data_offsets');
      }
      return { name, dtype: e.dtype, shape: e.shape as number[], count, begin: off[0] as number, end: off[1] as number };
    })
    // by begin, then end: a zero-size tensor may share its offset with the next one
    .sort((a, b) => a.begin - b.begin || a.end - b.end);

  // the tensors must tile the data section exactly: no gap, no overlap, nothing after the last
  let expected = 0;
  for (const e of entries) {
    if (e.begin !== expected || e.end < e.begin) {
      throw new CorruptFileError(file, `tensor ${e.name}: data_offsets [${e.begin}, ${e.end}] are not contiguous`);
    }
    if (e.end > dataLen) {
      throw new CorruptFileError(file, `truncated: tensor ${e.name} ends at byte ${e.end}, data has ${dataLen}`);
    }
    if (e.end - e.begin !== e.count * DTYPES[e.dtype].BYTES_PER_ELEMENT) {
      throw new CorruptFileError(file, `tensor ${e.name}: ${e.end - e.begin} bytes do not match shape [${e.shape}]`);
    }
    expected = e.end;
  }
  if (expected !== dataLen) {
    throw new CorruptFileError(file, `${dataLen - expected} trailing bytes after the last tensor`);
  }
  return { entries, raw, metadata: Object.fromEntries(metaEntries), digest };
}

function digestOrFail(h: Header, data: Uint8Array, file: string): string {
  try {
    return contentDigest(h.raw, h.metadata, [data]);
  } catch (e) {
    throw new CorruptFileError(file, `header cannot be digested (${(e as Error).message})`);
  }
}

/** Check the digest of a validated header and its data section, then copy the tensors into aligned arrays. */
function assemble(h: Header, data: Uint8Array, file: string, opts: ReadOptions): SafetensorsFile {
  if (h.digest === undefined) {
    if (opts.requireDigest) throw new CorruptFileError(file, `has no ${DIGEST_KEY} (not written by ptmst, or an older version)`);
  } else if (h.digest !== digestOrFail(h, data, file)) {
    throw new CorruptFileError(file, 'content digest mismatch: the file is corrupted or was edited');
  }
  const tensors = new Map<string, NamedTensor>();
  for (const e of h.entries) {
    const bytes = new Uint8Array(e.end - e.begin);
    bytes.set(data.subarray(e.begin, e.end));
    const values = new DTYPES[e.dtype](bytes.buffer);
    if (!opts.allowNonFinite && (e.dtype === 'F32' || e.dtype === 'F64')) {
      const at = firstNonFinite(values);
      if (at >= 0) throw new CorruptFileError(file, `${e.name} holds NaN or infinite values (${values[at]} at element ${at})`);
    }
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: values });
  }
  return { tensors, metadata: h.metadata };
}

/** The index of the first NaN or ±Infinity, or -1 (a plain loop: `findIndex` with a callback is several times slower). */
function firstNonFinite(a: ArrayLike<number>): number {
  for (let k = 0; k < a.length; k++) if (!Number.isFinite(a[k])) return k;
  return -1;
}

/** Parse a safetensors buffer; `file` names the source in every error. Copies data into aligned arrays. */
export function decodeSafetensors(buf: Buffer, file: string, opts: ReadOptions = {}): SafetensorsFile {
  if (buf.length < 8) throw noHeader(file, buf.length);
  const n = headerLength(buf.readBigUInt64LE(0), buf.length, file);
  const header = parseHeader(buf.subarray(8, 8 + n), buf.length - 8 - n, file);
  return assemble(header, buf.subarray(8 + n), file, opts);
}

export async function writeSafetensors(
  path: string,
  tensors: Readonly<TensorRecord>,
  metadata: Readonly<Record<string, string>> = {},
): Promise<Buffer> {
  const buf = encodeSafetensors(tensors, metadata);
  await writeAtomic(path, buf);
  return buf;
}

/** `length` bytes at `position`, or an error naming the file (read in chunks: one read() is capped near 2 GiB). */
async function readExactly(fh: FileHandle, position: number, length: number, file: string): Promise<Buffer> {
  if (length > constants.MAX_LENGTH) throw new CorruptFileError(file, `cannot read: ${length} bytes exceed the largest buffer`);
  const buf = Buffer.alloc(length);
  for (let done = 0; done < length; ) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(buf, done, Math.min(length - done, 1 << 30), position + done));
    } catch (e) {
      throw new CorruptFileError(file, `cannot read (${(e as Error).message})`);
    }
    if (bytesRead === 0) throw new CorruptFileError(file, `truncated while reading: ends at byte ${position + done}`);
    done += bytesRead;
  }
  return buf;
}

/** Open a file to read, a missing one a MissingFileError and any other failure a CorruptFileError naming it. */
async function openForReading(path: string): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new MissingFileError(path);
    throw new CorruptFileError(path, `cannot read (${(e as Error).message})`);
  }
}

/**
 * Read a safetensors file: the header length is checked against the file size and the cap before the
 * header is read, and the header is validated in full before the data section is read.
 */
export async function readSafetensors(path: string, opts: ReadOptions = {}): Promise<SafetensorsFile> {
  const fh = await openForReading(path);
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new CorruptFileError(path, 'not a regular file');
    if (stat.size < 8) throw noHeader(path, stat.size);
    const n = headerLength((await readExactly(fh, 0, 8, path)).readBigUInt64LE(0), stat.size, path);
    const dataLen = stat.size - 8 - n;
    const header = parseHeader(await readExactly(fh, 8, n, path), dataLen, path);
    return assemble(header, await readExactly(fh, 8 + n, dataLen, path), path, opts);
  } finally {
    await fh.close();
  }
}

/** What a file-level checksum covers: the sha256 (hex) of every byte of the file, and their count. */
export interface FileChecksum {
  readonly sha256: string;
  readonly bytes: number;
}

export interface ChunkOptions {
  /** bytes per read or write (default CHUNK_BYTES; tests use a few bytes) */
  readonly chunkBytes?: number;
  /** bytes per byte view of one tensor (default SPAN_BYTES, under the 4 GiB a view may hold; tests use a few) */
  readonly spanBytes?: number;
}

/**
 * `writeSafetensors` for data of any size: the same bytes, written atomically in chunks straight from the
 * tensors' memory (never joined into one buffer), hashed as they go. Returns the file's checksum.
 */
export async function writeSafetensorsChunked(
  path: string,
  tensors: Readonly<TensorRecord>,
  metadata: Readonly<Record<string, string>> = {},
  opts: ChunkOptions = {},
): Promise<FileChecksum> {
  const size = opts.chunkBytes ?? CHUNK_BYTES;
  const { head, parts } = layout(tensors, metadata);
  const hash = createHash('sha256');
  let bytes = 0;
  function* chunks(): Generator<Uint8Array> {
    for (const part of [head, ...parts]) {
      for (const c of chunksOf(part, size, opts.spanBytes)) {
        hash.update(c);
        bytes += c.length;
        yield c;
      }
    }
  }
  await writeAtomicChunks(path, chunks());
  return { sha256: hash.digest('hex'), bytes };
}

export interface ChunkedReadOptions extends ReadOptions, ChunkOptions {
  /** back every tensor with a SharedArrayBuffer: worker threads given it (workerData, postMessage) share it, uncopied */
  readonly shared?: boolean;
  /**
   * Called with the file's checksum once every byte is read, before the header's or the digest's verdict: a
   * file-level check (a manifest's sha256) is reported first, as when the whole file was hashed up front.
   */
  readonly verifyFile?: (sum: FileChecksum) => void;
}

/** `length` bytes at `position` into `dest` (in chunks), or an error naming the file. */
async function readInto(fh: FileHandle, dest: Uint8Array, position: number, file: string, size: number, onChunk: (c: Uint8Array) => void): Promise<void> {
  for (let done = 0; done < dest.length; ) {
    let bytesRead: number;
    try {
      ({ bytesRead } = await fh.read(dest, done, Math.min(dest.length - done, size), position + done));
    } catch (e) {
      throw new CorruptFileError(file, `cannot read (${(e as Error).message})`);
    }
    if (bytesRead === 0) throw new CorruptFileError(file, `truncated while reading: ends at byte ${position + done}`);
    onChunk(dest.subarray(done, done + bytesRead));
    done += bytesRead;
  }
}

/**
 * `readSafetensors` for files of any size (beyond 2 GiB, beyond one Buffer): each tensor is read in chunks
 * straight into its own (optionally shared) array, with the file's sha256 and the content digest computed as
 * the bytes arrive. Same validation and errors as `readSafetensors`; also returns the file's checksum.
 */
export async function readSafetensorsChunked(path: string, opts: ChunkedReadOptions = {}): Promise<SafetensorsFile & FileChecksum> {
  const size = opts.chunkBytes ?? CHUNK_BYTES;
  const fh = await openForReading(path);
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new CorruptFileError(path, 'not a regular file');
    const fileHash = createHash('sha256');
    let sum: FileChecksum | undefined;
    const finish = (): FileChecksum => {
      sum ??= { sha256: fileHash.digest('hex'), bytes: stat.size };
      opts.verifyFile?.(sum);
      return sum;
    };
    /** hash what is left of the file from `at`, then give the file-level check its say before `e` */
    const failAfterHashing = async (at: number, e: unknown): Promise<never> => {
      if (opts.verifyFile !== undefined) {
        const scratch = new Uint8Array(Math.min(size, Math.max(0, stat.size - at)));
        for (let p = at; p < stat.size; ) {
          const { bytesRead } = await fh.read(scratch, 0, Math.min(scratch.length, stat.size - p), p);
          if (bytesRead === 0) break;
          fileHash.update(scratch.subarray(0, bytesRead));
          p += bytesRead;
        }
        finish();
      }
      throw e;
    };
    if (stat.size < 8) return await failAfterHashing(0, noHeader(path, stat.size));
    const first = await readExactly(fh, 0, 8, path);
    fileHash.update(first);
    let n: number;
    try {
      n = headerLength(first.readBigUInt64LE(0), stat.size, path);
    } catch (e) {
      return await failAfterHashing(8, e);
    }
    const headerBytes = await readExactly(fh, 8, n, path);
    fileHash.update(headerBytes);
    let header: Header;
    let content: Hash | undefined;
    try {
      header = parseHeader(headerBytes, stat.size - 8 - n, path);
      if (header.digest !== undefined) content = contentHasher(header.raw, header.metadata);
    } catch (e) {
      return await failAfterHashing(8 + n, e instanceof CorruptFileError ? e : new CorruptFileError(path, `header cannot be digested (${(e as Error).message})`));
    }
    const arrays: { e: Entry; buffer: ArrayBuffer | SharedArrayBuffer }[] = [];
    for (const e of header.entries) {
      const len = e.end - e.begin;
      const buffer = opts.shared ? new SharedArrayBuffer(len) : new ArrayBuffer(len);
      // span by span: one byte view holds under 4 GiB
      const span = opts.spanBytes ?? SPAN_BYTES;
      for (let at = 0; at < len; at += span) {
        await readInto(fh, new Uint8Array(buffer, at, Math.min(span, len - at)), 8 + n + e.begin + at, path, size, (c) => {
          fileHash.update(c);
          content?.update(c);
        });
      }
      arrays.push({ e, buffer });
    }
    const checksum = finish();
    if (header.digest === undefined) {
      if (opts.requireDigest) throw new CorruptFileError(path, `has no ${DIGEST_KEY} (not written by ptmst, or an older version)`);
    } else if (header.digest !== `sha256:${content!.digest('hex')}`) {
      throw new CorruptFileError(path, 'content digest mismatch: the file is corrupted or was edited');
    }
    const tensors = new Map<string, NamedTensor>();
    for (const { e, buffer } of arrays) {
      // a SharedArrayBuffer when opts.shared (the typed-array constructors take one; the lib typing says ArrayBuffer)
      const values = new DTYPES[e.dtype](buffer as ArrayBuffer);
      if (!opts.allowNonFinite && (e.dtype === 'F32' || e.dtype === 'F64')) {
        const at = firstNonFinite(values);
        if (at >= 0) throw new CorruptFileError(path, `${e.name} holds NaN or infinite values (${values[at]} at element ${at})`);
      }
      tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: values });
    }
    return { tensors, metadata: header.metadata, ...checksum };
  } finally {
    await fh.close();
  }
}

/** The named tensor, or an error naming the file and the tensor. */
export function tensorOf(f: SafetensorsFile, name: string, file: string): NamedTensor {
  const t = f.tensors.get(name);
  if (t === undefined) throw new CorruptFileError(file, `missing tensor ${name}`);
  return t;
}
