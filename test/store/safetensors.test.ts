import { strict as assert } from 'node:assert';
import { createHash } from 'node:crypto';
import { readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CorruptFileError,
  MAX_HEADER_BYTES,
  MissingFileError,
  canonicalJson,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  readSafetensorsChunked,
  writeSafetensors,
  writeSafetensorsChunked,
} from '../../src/store/safetensors';
import { tempDir } from '../helpers';

/** A file laid out by hand: 8-byte length, the header as given (string or raw bytes), the data. */
function handMade(header: string | Buffer, data: Buffer = Buffer.alloc(0)): Buffer {
  const json = typeof header === 'string' ? Buffer.from(header, 'utf8') : header;
  const head = Buffer.alloc(8);
  head.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([head, json, data]);
}

/** The header JSON and where the data starts. */
function headerOf(buf: Buffer): { json: string; dataStart: number } {
  const n = Number(buf.readBigUInt64LE(0));
  return { json: buf.subarray(8, 8 + n).toString('utf8'), dataStart: 8 + n };
}

/** The exact class, and a message that starts with the file name and matches `reason`. */
const corrupt = (file: string, reason: RegExp) => (e: unknown) =>
  e instanceof CorruptFileError && e.constructor === CorruptFileError && e.file === file &&
  e.message.startsWith(`${file}: `) && reason.test(e.message);

const bytes = (t: ArrayBufferView) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);

describe('store/safetensors', () => {
  const f32 = new Float32Array([1.5, -0, Number.NaN, Infinity, 1e-45, 3.4028234663852886e38, -2.25]);
  const f64 = new Float64Array([Math.PI, -1e-300]);
  const i32 = new Int32Array([0, -1, 2147483647]);
  const u8 = new Uint8Array([0, 255, 7]);

  it('round-trips every dtype bit-exactly, with metadata', async () => {
    const file = join(tempDir(), 'x.safetensors');
    await writeSafetensors(
      file,
      { a: { shape: [7], data: f32 }, b: { shape: [1, 2], data: f64 }, c: { shape: [3], data: i32 }, d: { shape: [3, 1], data: u8 } },
      { note: 'hello' },
    );
    const back = await readSafetensors(file, { requireDigest: true, allowNonFinite: true }); // NaN and Infinity round-trip too
    assert.deepEqual(back.metadata, { note: 'hello' }); // the digest is not handed back
    assert.ok(bytes(back.tensors.get('a')!.data).equals(bytes(f32)));
    assert.ok(bytes(back.tensors.get('b')!.data).equals(bytes(f64)));
    assert.deepEqual([...back.tensors.get('c')!.data], [...i32]);
    assert.deepEqual(back.tensors.get('d')!.shape, [3, 1]);
  });

  it('round-trips zero-size tensors of every dtype, a file with no tensors, and odd names', () => {
    const zeros = encodeSafetensors({
      a: { shape: [0], data: new Float32Array(0) },
      b: { shape: [2, 0], data: new Float64Array(0) },
      mid: { shape: [1], data: Int32Array.of(-7) },
      c: { shape: [0, 5], data: new Int32Array(0) },
      d: { shape: [0], data: new Uint8Array(0) },
    });
    const st = decodeSafetensors(zeros, 'z', { requireDigest: true });
    assert.deepEqual([...st.tensors.keys()].sort(), ['a', 'b', 'c', 'd', 'mid']);
    assert.deepEqual(st.tensors.get('b')!.shape, [2, 0]);
    assert.equal(st.tensors.get('c')!.dtype, 'I32');
    assert.deepEqual([...st.tensors.get('mid')!.data], [-7]);
    for (const meta of [{}, { k: 'v' }] as Record<string, string>[]) {
      const empty = decodeSafetensors(encodeSafetensors({}, meta), 'e', { requireDigest: true });
      assert.equal(empty.tensors.size, 0);
      assert.deepEqual(empty.metadata, meta);
    }
    // `__proto__` is a plain name in a file; the old writer set the header's prototype and lost the tensor
    const odd = decodeSafetensors(encodeSafetensors({ ['__proto__']: { shape: [1], data: Uint8Array.of(9) } }, { ['__proto__']: 'm' }), 'o');
    assert.deepEqual([...odd.tensors.get('__proto__')!.data], [9]);
    assert.equal(Object.getOwnPropertyDescriptor(odd.metadata, '__proto__')?.value, 'm');
  });

  it('follows the published layout: u64 LE header size, JSON header, 8-byte aligned data', () => {
    const buf = encodeSafetensors({ w: { shape: [2], data: new Float32Array([1, 2]) } });
    const n = Number(buf.readBigUInt64LE(0));
    assert.equal((8 + n) % 8, 0);
    const header = JSON.parse(buf.subarray(8, 8 + n).toString());
    assert.deepEqual(header.w, { dtype: 'F32', shape: [2], data_offsets: [0, 8] });
    assert.equal(buf.readFloatLE(8 + n + 4), 2);
  });

  it('reports truncated, trailing and malformed files by name', () => {
    const good = encodeSafetensors({ w: { shape: [4], data: new Float32Array([1, 2, 3, 4]) } });
    assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 3), 'f.st'), corrupt('f.st', /^f\.st: truncated: tensor w ends at byte 16, data has 13/));
    assert.throws(() => decodeSafetensors(Buffer.concat([good, Buffer.from([0])]), 'f.st'), corrupt('f.st', /f\.st: 1 trailing bytes/));
    assert.throws(() => decodeSafetensors(good.subarray(0, 5), 'f.st'), corrupt('f.st', /f\.st: truncated: 5 bytes, no header/));
    const bad = Buffer.from(good);
    bad[9] = 0x7b; // '{' inside the JSON header
    assert.throws(() => decodeSafetensors(bad, 'f.st'), corrupt('f.st', /f\.st: header is not valid JSON/));
  });

  it('reads a file written by hand the way Python writes it', () => {
    const data = Buffer.alloc(8);
    data.writeInt32LE(-5, 0);
    data.writeInt32LE(9, 4);
    const dir = tempDir();
    writeFileSync(join(dir, 'p.safetensors'), handMade('{"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}', data));
    const st = decodeSafetensors(readFileSync(join(dir, 'p.safetensors')), 'p');
    assert.deepEqual([...st.tensors.get('x')!.data], [-5, 9]);
  });

  it('names the file and the tensor when an entry is not an object', () => {
    for (const entry of ['null', '5', '"F32"', '[]']) {
      assert.throws(() => decodeSafetensors(handMade(`{"x":${entry}}`), 'h.st'), corrupt('h.st', /^h\.st: tensor x: entry is .*, not an object$/));
    }
  });

  it('rejects dtype names that are only on the prototype chain', () => {
    for (const dtype of ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf']) {
      const file = handMade(`{"x":{"dtype":"${dtype}","shape":[0],"data_offsets":[0,0]}}`);
      assert.throws(() => decodeSafetensors(file, 'h.st'), corrupt('h.st', new RegExp(`^h\\.st: tensor x: unsupported dtype ${dtype}$`)));
    }
  });

  it('checks the header length against the cap before the file size, without a lossy conversion', () => {
    assert.equal(MAX_HEADER_BYTES, 100_000_000);
    for (const claim of [BigInt(MAX_HEADER_BYTES) + 1n, 2n ** 53n + 1n, 2n ** 64n - 1n]) {
      const buf = Buffer.alloc(16, 0x20);
      buf.writeBigUInt64LE(claim);
      assert.throws(() => decodeSafetensors(buf, 'h.st'),
        corrupt('h.st', new RegExp(`^h\\.st: header length ${claim} is impossible: above the 100000000-byte cap$`)));
    }
    const small = Buffer.alloc(16, 0x20);
    small.writeBigUInt64LE(9n);
    assert.throws(() => decodeSafetensors(small, 'h.st'), corrupt('h.st', /^h\.st: truncated: header length 9 is impossible, the file has 8 bytes after it$/));
  });

  // Sparse 3 GiB files (no disk used): the old reader loaded the whole file first and failed with a RangeError.
  it('reads a 3 GiB file claiming a 2^60-byte header only as far as the length', async () => {
    const file = join(tempDir(), 'huge.safetensors');
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(2n ** 60n);
    writeFileSync(file, head);
    truncateSync(file, 3 * 2 ** 30);
    try {
      await assert.rejects(readSafetensors(file), corrupt(file, /header length 1152921504606846976 is impossible/));
    } finally {
      rmSync(file);
    }
  });

  it('validates the whole header of a 3 GiB file before reading its data section', async () => {
    const file = join(tempDir(), 'huge.safetensors');
    writeFileSync(file, handMade('{"x":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}'));
    truncateSync(file, 3 * 2 ** 30);
    try {
      await assert.rejects(readSafetensors(file), corrupt(file, /trailing bytes after the last tensor$/));
    } finally {
      rmSync(file);
    }
  });

  it('rejects a header that is not valid UTF-8, or starts with a byte-order mark', () => {
    const meta = (b: number[]) => Buffer.concat([Buffer.from('{"__metadata__":{"k":"'), Buffer.from(b), Buffer.from('"}}')]);
    for (const b of [[0xff], [0xc0, 0xaf] /* overlong '/' */, [0xed, 0xa0, 0x80] /* lone surrogate */]) {
      assert.throws(() => decodeSafetensors(handMade(meta(b)), 'u.st'), corrupt('u.st', /^u\.st: header is not valid UTF-8$/));
    }
    assert.ok(decodeSafetensors(handMade(meta([0xc3, 0xa9])), 'u.st').metadata.k === 'é');
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]);
    assert.throws(() => decodeSafetensors(handMade(bom), 'u.st'), corrupt('u.st', /^u\.st: header is not valid JSON$/));
  });

  it('rejects metadata that is not an object of strings, naming the key', () => {
    for (const m of ['null', '[]', '"x"', '7']) {
      assert.throws(() => decodeSafetensors(handMade(`{"__metadata__":${m}}`), 'm.st'), corrupt('m.st', /^m\.st: __metadata__ is .*, not an object of strings$/));
    }
    for (const v of ['1', 'null', 'true', '["a"]', '{"dtype":"F32"}']) {
      assert.throws(() => decodeSafetensors(handMade(`{"__metadata__":{"ok":"s","seed":${v}}}`), 'm.st'),
        corrupt('m.st', /^m\.st: __metadata__ key "seed": value is .*, not a string$/));
    }
  });

  it('rejects shapes whose dims or element count are not safe integers', () => {
    for (const shape of ['[1e300,0]', '[0,1e300]', '[-1]', '[1.5]', '["2"]', '[null]', '[9007199254740992,0]', '[4294967296,4294967296,0]', '{}', '"4"']) {
      const file = handMade(`{"x":{"dtype":"U8","shape":${shape},"data_offsets":[0,0]}}`);
      assert.throws(() => decodeSafetensors(file, 's.st'), corrupt('s.st', /^s\.st: tensor x: bad shape/));
    }
    for (const off of ['[-1,0]', '[0,1.5]', '[0]', '[0,0,0]', '[0,1e300]', '"0,0"']) {
      const file = handMade(`{"x":{"dtype":"U8","shape":[0],"data_offsets":${off}}}`);
      assert.throws(() => decodeSafetensors(file, 's.st'), corrupt('s.st', /^s\.st: tensor x: bad data_offsets$/));
    }
    assert.throws(() => encodeSafetensors({ x: { shape: [1e300, 0], data: new Uint8Array(0) } }), /tensor x: shape/);
  });

  it('rejects overlapping or duplicate ranges, but lets a zero-size tensor share an offset', () => {
    const data = Buffer.alloc(8);
    const two = (a: string, b: string) => handMade(`{"a":{"dtype":"F32","shape":[1],"data_offsets":${a}},"b":{"dtype":"F32","shape":[1],"data_offsets":${b}}}`, data);
    assert.throws(() => decodeSafetensors(two('[0,4]', '[0,4]'), 'o.st'), corrupt('o.st', /^o\.st: tensor b: data_offsets \[0, 4\] are not contiguous$/));
    assert.throws(() => decodeSafetensors(two('[0,4]', '[2,6]'), 'o.st'), corrupt('o.st', /not contiguous/));
    // the non-empty tensor listed first at the shared offset: the old reader sorted by start only and refused it
    const shared = handMade(
      '{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]},"z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}}',
      data,
    );
    assert.deepEqual([...decodeSafetensors(shared, 'o.st').tensors.keys()], ['a', 'z', 'b']);
  });

  it('reserves the name __metadata__ for metadata and ptmst.digest for the digest', () => {
    assert.throws(() => encodeSafetensors({ ['__metadata__']: { shape: [0], data: new Uint8Array(0) } }), /tensor name "__metadata__" is reserved/);
    assert.throws(() => encodeSafetensors({}, { 'ptmst.digest': 'sha256:00' }), /metadata key "ptmst.digest" is reserved/);
    // a tensor entry in the __metadata__ slot is metadata with non-string values
    const fake = handMade('{"__metadata__":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}');
    assert.throws(() => decodeSafetensors(fake, 'r.st'), corrupt('r.st', /__metadata__ key "shape": value is an array/));
  });

  it('writes a digest over the key-sorted header without the digest, a newline and the data', () => {
    const buf = encodeSafetensors({ w: { shape: [2], data: new Float32Array([0.15, 2]) }, a: { shape: [1], data: Uint8Array.of(1) } }, { z: '1', b: '2' });
    const { json, dataStart } = headerOf(buf);
    const header = JSON.parse(json) as { __metadata__: Record<string, string> };
    const stored = header.__metadata__['ptmst.digest']!;
    assert.match(stored, /^sha256:[0-9a-f]{64}$/);
    delete header.__metadata__['ptmst.digest'];
    // written out by hand: keys sorted at every level, no spaces
    const canonical =
      '{"__metadata__":{"b":"2","z":"1"},"a":{"data_offsets":[8,9],"dtype":"U8","shape":[1]},' +
      '"w":{"data_offsets":[0,8],"dtype":"F32","shape":[2]}}';
    assert.equal(canonicalJson(header), canonical);
    const expected = createHash('sha256').update(canonical + '\n').update(buf.subarray(dataStart)).digest('hex');
    assert.equal(stored, `sha256:${expected}`);
    assert.equal(canonicalJson({ b: [3, { y: 1, x: null }], a: 'é' }), '{"a":"é","b":[3,{"x":null,"y":1}]}');
  });

  it('still verifies after the header is re-serialised with other key order and spacing', () => {
    const buf = encodeSafetensors({ w: { shape: [1], data: Float32Array.of(3) } }, { k: 'v' });
    const { json, dataStart } = headerOf(buf);
    const h = JSON.parse(json) as Record<string, unknown>;
    const reordered = JSON.stringify({ w: h.w, __metadata__: h.__metadata__ }, null, 2);
    const st = decodeSafetensors(handMade(reordered, buf.subarray(dataStart)), 'r.st', { requireDigest: true });
    assert.deepEqual(st.metadata, { k: 'v' });
  });

  it('catches a flipped byte in the data section (0.15 becomes 5.1e37)', async () => {
    const file = join(tempDir(), 'd.safetensors');
    const buf = await writeSafetensors(file, { w: { shape: [3], data: new Float32Array([1, 0.15, -2]) } });
    const { dataStart } = headerOf(buf);
    const bad = Buffer.from(buf);
    bad[dataStart + 7] ^= 0x40; // the exponent byte of w[1], little-endian
    assert.ok(Math.abs(bad.readFloatLE(dataStart + 4) / 5.1e37 - 1) < 0.01);
    const mismatch = /^.*: content digest mismatch: the file is corrupted or was edited$/;
    assert.throws(() => decodeSafetensors(bad, 'd.st'), corrupt('d.st', mismatch));
    writeFileSync(file, bad);
    await assert.rejects(readSafetensors(file), corrupt(file, mismatch));
  });

  it('catches a same-length edit of a metadata value or a dtype', () => {
    const buf = encodeSafetensors({ w: { shape: [2], data: new Int32Array([1, 2]) } }, { key: 'lr=0.01' });
    const edit = (from: string, to: string) => {
      const { json, dataStart } = headerOf(buf);
      assert.ok(json.includes(from));
      return Buffer.concat([buf.subarray(0, 8), Buffer.from(json.replace(from, to)), buf.subarray(dataStart)]);
    };
    const mismatch = /^e\.st: content digest mismatch/;
    assert.throws(() => decodeSafetensors(edit('lr=0.01', 'lr=0.02'), 'e.st'), corrupt('e.st', mismatch));
    assert.throws(() => decodeSafetensors(edit('"I32"', '"F32"'), 'e.st'), corrupt('e.st', mismatch));
    assert.throws(() => decodeSafetensors(edit('"key"', '"kex"'), 'e.st'), corrupt('e.st', mismatch));
  });

  it('accepts files without a digest unless requireDigest', async () => {
    const file = join(tempDir(), 'py.safetensors');
    writeFileSync(file, handMade('{"__metadata__":{"format":"pt"},"x":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', Buffer.from([4, 5])));
    assert.deepEqual((await readSafetensors(file)).metadata, { format: 'pt' });
    assert.deepEqual([...decodeSafetensors(readFileSync(file), 'py', { requireDigest: false }).tensors.get('x')!.data], [4, 5]);
    const absent = /: has no ptmst\.digest \(not written by ptmst, or an older version\)$/;
    await assert.rejects(readSafetensors(file, { requireDigest: true }), corrupt(file, absent));
    assert.throws(() => decodeSafetensors(readFileSync(file), 'py', { requireDigest: true }), corrupt('py', absent));
  });

  it('refuses NaN and infinite values in float tensors, naming the file, the tensor and the element', async () => {
    const file = join(tempDir(), 'nan.safetensors');
    for (const [dtype, data] of [['F32', new Float32Array([1, 2, Number.NaN])], ['F64', new Float64Array([0, -Infinity])]] as const) {
      await writeSafetensors(file, { ok: { shape: [2], data: new Int32Array([-1, 7]) }, w: { shape: [data.length], data } });
      const at = dtype === 'F32' ? 2 : 1;
      const reason = new RegExp(`^.*: w holds NaN or infinite values \\(${data[at]} at element ${at}\\)$`);
      await assert.rejects(readSafetensors(file), corrupt(file, reason), dtype);
      assert.throws(() => decodeSafetensors(readFileSync(file), 'n.st'), corrupt('n.st', reason), dtype);
      // a caller that stores non-finite values on purpose says so
      assert.equal(Number.isFinite((await readSafetensors(file, { allowNonFinite: true })).tensors.get('w')!.data[at]), false);
    }
  });

  it('reports a missing file as MissingFileError, still a CorruptFileError', async () => {
    const file = join(tempDir(), 'nope.safetensors');
    await assert.rejects(readSafetensors(file), (e: unknown) =>
      e instanceof MissingFileError && e instanceof CorruptFileError && e.file === file && e.message === `${file}: not found`);
    const dir = tempDir();
    await assert.rejects(readSafetensors(dir), corrupt(dir, /^.*: not a regular file$/));
  });
});

describe('store/safetensors: hostile headers beyond the format', () => {
  it('rejects fields other than dtype, shape and data_offsets (a deeply nested one cannot exhaust the stack)', () => {
    let deep = '0';
    for (let i = 0; i < 100000; i++) deep = `[${deep}]`;
    const json = `{"__metadata__":{"ptmst.digest":"sha256:00"},"x":{"dtype":"F32","shape":[0],"data_offsets":[0,0],"junk":${deep}}}`;
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    assert.throws(
      () => decodeSafetensors(Buffer.concat([head, Buffer.from(json)]), 'deep.safetensors'),
      (e: unknown) => e instanceof CorruptFileError && /^deep\.safetensors: (tensor x: unexpected field\(s\) "junk"|header is not valid JSON)/.test(e.message),
    );
  });
});

describe('store/safetensors: chunked reader and writer (files beyond one Buffer)', () => {
  const tensors = () => ({
    a: { shape: [3, 5], data: Float32Array.from({ length: 15 }, (_, i) => i / 7 - 1) },
    b: { shape: [4], data: Int32Array.from([1, -2, 3, 1 << 30]) },
  });

  it('writes the same bytes as encodeSafetensors in 3-byte chunks, and its checksum is the sha256 of the file', async () => {
    const f = join(tempDir(), 'c.safetensors');
    const sum = await writeSafetensorsChunked(f, tensors(), { note: 'x' }, { chunkBytes: 3 });
    const whole = encodeSafetensors(tensors(), { note: 'x' });
    assert.ok(readFileSync(f).equals(whole));
    assert.equal(sum.bytes, whole.length);
    assert.equal(sum.sha256, createHash('sha256').update(whole).digest('hex'));
  });

  it('reads back in 5-byte chunks into SharedArrayBuffers, digest verified, checksum returned', async () => {
    const f = join(tempDir(), 'c.safetensors');
    const sum = await writeSafetensorsChunked(f, tensors(), {}, { chunkBytes: 7 });
    let seen: { sha256: string; bytes: number } | undefined;
    const st = await readSafetensorsChunked(f, { chunkBytes: 5, shared: true, requireDigest: true, verifyFile: (s) => (seen = s) });
    assert.deepEqual(seen, sum);
    assert.equal(st.sha256, sum.sha256);
    const a = st.tensors.get('a')!;
    assert.ok(a.data.buffer instanceof SharedArrayBuffer);
    assert.deepEqual(Array.from(a.data), Array.from(tensors().a.data));
    assert.deepEqual(Array.from(st.tensors.get('b')!.data), [1, -2, 3, 1 << 30]);
    const plain = await readSafetensorsChunked(f, { chunkBytes: 5 });
    assert.ok(plain.tensors.get('a')!.data.buffer instanceof ArrayBuffer);
  });

  it('tensors beyond one byte view (4 GiB in Node 20) go in spans: 12-byte spans, 5-byte chunks, the same bytes and values', async () => {
    // a byte view of more than 2^32 − 1 bytes cannot be made (a 600k × 2304 float32 matrix is 5.5 GB): both sides
    // cut each tensor into spans; here spans of three floats, chunks that straddle nothing but a span's end
    const f = join(tempDir(), 's.safetensors');
    const sum = await writeSafetensorsChunked(f, tensors(), { note: 'x' }, { chunkBytes: 5, spanBytes: 12 });
    const whole = encodeSafetensors(tensors(), { note: 'x' });
    assert.ok(readFileSync(f).equals(whole));
    assert.equal(sum.sha256, createHash('sha256').update(whole).digest('hex'));
    const st = await readSafetensorsChunked(f, { chunkBytes: 5, spanBytes: 12, shared: true, requireDigest: true });
    assert.deepEqual(Array.from(st.tensors.get('a')!.data), Array.from(tensors().a.data));
    assert.deepEqual(Array.from(st.tensors.get('b')!.data), [1, -2, 3, 1 << 30]);
    assert.equal(st.sha256, sum.sha256);
  });

  it('a flipped data byte fails the digest; the file-level check is heard first, also for a broken header', async () => {
    const f = join(tempDir(), 'c.safetensors');
    await writeSafetensorsChunked(f, tensors(), {}, { chunkBytes: 4 });
    const buf = readFileSync(f);
    buf[buf.length - 20] ^= 0x40;
    writeFileSync(f, buf);
    await assert.rejects(readSafetensorsChunked(f, { chunkBytes: 5 }), /content digest mismatch/);
    const refuse = () => {
      throw new CorruptFileError(f, 'checksum mismatch (test)');
    };
    await assert.rejects(readSafetensorsChunked(f, { chunkBytes: 5, verifyFile: refuse }), /checksum mismatch \(test\)/);
    buf[9] = 0xff; // the header is no longer valid UTF-8
    writeFileSync(f, buf);
    await assert.rejects(readSafetensorsChunked(f, { chunkBytes: 5 }), /header is not valid UTF-8/);
    await assert.rejects(readSafetensorsChunked(f, { chunkBytes: 5, verifyFile: refuse }), /checksum mismatch \(test\)/);
    await writeSafetensorsChunked(f, tensors(), {}, { chunkBytes: 4 });
    truncateSync(f, buf.length - 3);
    await assert.rejects(readSafetensorsChunked(f, { chunkBytes: 5 }), /truncated/);
    await assert.rejects(readSafetensorsChunked(join(tempDir(), 'none.safetensors')), MissingFileError);
  });

  it('reads what readSafetensors reads, including a file without a digest (refused when requireDigest)', async () => {
    const f = join(tempDir(), 'c.safetensors');
    await writeSafetensors(f, tensors());
    const a = await readSafetensors(f, { requireDigest: true });
    const b = await readSafetensorsChunked(f, { chunkBytes: 2, requireDigest: true });
    assert.deepEqual(Array.from(b.tensors.get('a')!.data), Array.from(a.tensors.get('a')!.data));
    const bare = handMade('{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', Buffer.from(new Float32Array([1.5, -2]).buffer));
    writeFileSync(f, bare);
    assert.deepEqual(Array.from((await readSafetensorsChunked(f, { chunkBytes: 3 })).tensors.get('x')!.data), [1.5, -2]);
    await assert.rejects(readSafetensorsChunked(f, { requireDigest: true }), /has no ptmst.digest/);
  });
});
