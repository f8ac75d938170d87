/**
 * safetensors (https://huggingface.co/docs/safetensors): an 8-byte little-endian header length, a JSON
 * header `{name: {dtype, shape, data_offsets}, __metadata__: {string: string}}`, then the raw
 * little-endian bytes. Python reads these files with `safetensors.numpy.load_file`.
 *
 * No maintained npm package writes this format (the `safetensors` name on npm is a 0.0.1 stub), so it is
 * implemented here, with a strict reader: every inconsistency is an error naming the file.
 */
import { readFile } from 'node:fs/promises';
import { writeAtomic } from './atomic';

export const DTYPES = {
  F32: Float32Array,
  F64: Float64Array,
  I32: Int32Array,
  U8: Uint8Array,
} as const;
export type DType = keyof typeof DTYPES;
export type TypedArray = Float32Array | Float64Array | Int32Array | Uint8Array;

export interface NamedTensor {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

/** Tensors to write, by name, in insertion order. */
export type TensorRecord = Record<string, { shape: readonly number[]; data: TypedArray }>;

export interface SafetensorsFile {
  readonly tensors: ReadonlyMap<string, NamedTensor>;
  readonly metadata: Readonly<Record<string, string>>;
}

/** A file that is not a valid safetensors file, or not the one expected. */
export class CorruptFileError extends Error {
  constructor(
    readonly file: string,
    reason: string,
  ) {
    super(`${file}: ${reason}`);
    this.name = 'CorruptFileError';
  }
}

function dtypeOf(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Float64Array) return 'F64';
  if (data instanceof Int32Array) return 'I32';
  return 'U8';
}

const product = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

/** Serialise tensors (in the given order) and string metadata into one buffer. */
export function encodeSafetensors(
  tensors: Readonly<TensorRecord>,
  metadata: Readonly<Record<string, string>> = {},
): Buffer {
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  let offset = 0;
  const parts: Buffer[] = [];
  for (const [name, t] of Object.entries(tensors)) {
    if (name === '__metadata__') throw new Error('tensor name "__metadata__" is reserved');
    if (product(t.shape) !== t.data.length) {
      throw new Error(`tensor ${name}: shape [${t.shape}] holds ${product(t.shape)} values, data has ${t.data.length}`);
    }
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: dtypeOf(t.data), shape: [...t.shape], data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8); // align the data to 8 bytes
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
  return Buffer.concat([head, Buffer.from(json, 'utf8'), ...parts]);
}

/** Parse a safetensors buffer; `file` names the source in every error. Copies data into aligned arrays. */
export function decodeSafetensors(buf: Buffer, file: string): SafetensorsFile {
  if (buf.length < 8) throw new CorruptFileError(file, `truncated: ${buf.length} bytes, no header`);
  const headerLen = Number(buf.readBigUInt64LE(0));
  if (headerLen > buf.length - 8) {
    throw new CorruptFileError(file, `truncated: header claims ${headerLen} bytes, file has ${buf.length - 8}`);
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<string, unknown>;
  } catch {
    throw new CorruptFileError(file, 'header is not valid JSON');
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header)) {
    throw new CorruptFileError(file, 'header is not a JSON object');
  }
  const dataStart = 8 + headerLen;
  const dataLen = buf.length - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  const entries = Object.entries(header)
    .filter(([k]) => k !== '__metadata__')
    .map(([name, v]) => {
      const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
      if (typeof e.dtype !== 'string' || !(e.dtype in DTYPES)) {
        throw new CorruptFileError(file, `tensor ${name}: unsupported dtype ${String(e.dtype)}`);
      }
      if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isInteger(d) && d >= 0)) {
        throw new CorruptFileError(file, `tensor ${name}: bad shape`);
      }
      const off = e.data_offsets;
      if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isInteger(d))) {
        throw new CorruptFileError(file, `tensor ${name}: bad data_offsets`);
      }
      return { name, dtype: e.dtype as DType, shape: e.shape as number[], begin: off[0] as number, end: off[1] as number };
    })
    .sort((a, b) => a.begin - b.begin);
  let expected = 0;
  const tensors = new Map<string, NamedTensor>();
  for (const e of entries) {
    const Ctor = DTYPES[e.dtype];
    if (e.begin !== expected || e.end < e.begin) {
      throw new CorruptFileError(file, `tensor ${e.name}: data_offsets [${e.begin}, ${e.end}] are not contiguous`);
    }
    if (e.end > dataLen) {
      throw new CorruptFileError(file, `truncated: tensor ${e.name} ends at byte ${e.end}, data has ${dataLen}`);
    }
    if ((e.end - e.begin) !== product(e.shape) * Ctor.BYTES_PER_ELEMENT) {
      throw new CorruptFileError(file, `tensor ${e.name}: ${e.end - e.begin} bytes do not match shape [${e.shape}]`);
    }
    const bytes = new Uint8Array(e.end - e.begin);
    bytes.set(buf.subarray(dataStart + e.begin, dataStart + e.end));
    tensors.set(e.name, { dtype: e.dtype, shape: e.shape, data: new Ctor(bytes.buffer) });
    expected = e.end;
  }
  if (expected !== dataLen) {
    throw new CorruptFileError(file, `${dataLen - expected} trailing bytes after the last tensor`);
  }
  return { tensors, metadata };
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

export async function readSafetensors(path: string): Promise<SafetensorsFile> {
  return decodeSafetensors(await readFile(path), path);
}

/** The named tensor, or an error naming the file and the tensor. */
export function tensorOf(f: SafetensorsFile, name: string, file: string): NamedTensor {
  const t = f.tensors.get(name);
  if (t === undefined) throw new CorruptFileError(file, `missing tensor ${name}`);
  return t;
}
