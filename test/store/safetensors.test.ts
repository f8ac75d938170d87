import { strict as assert } from 'node:assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  CorruptFileError,
  decodeSafetensors,
  encodeSafetensors,
  readSafetensors,
  writeSafetensors,
} from '../../src/store/safetensors';
import { tempDir } from '../helpers';

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
    const back = await readSafetensors(file);
    assert.deepEqual(back.metadata, { note: 'hello' });
    const bytes = (t: ArrayBufferView) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);
    assert.ok(bytes(back.tensors.get('a')!.data).equals(bytes(f32)));
    assert.ok(bytes(back.tensors.get('b')!.data).equals(bytes(f64)));
    assert.deepEqual([...back.tensors.get('c')!.data], [...i32]);
    assert.deepEqual(back.tensors.get('d')!.shape, [3, 1]);
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
    assert.throws(() => decodeSafetensors(good.subarray(0, good.length - 3), 'f.st'), (e: unknown) =>
      e instanceof CorruptFileError && /^f\.st: truncated: tensor w ends at byte 16, data has 13/.test(e.message));
    assert.throws(() => decodeSafetensors(Buffer.concat([good, Buffer.from([0])]), 'f.st'), /f\.st: 1 trailing bytes/);
    assert.throws(() => decodeSafetensors(good.subarray(0, 5), 'f.st'), /f\.st: truncated: 5 bytes, no header/);
    const bad = Buffer.from(good);
    bad[9] = 0x7b; // '{' inside the JSON header
    assert.throws(() => decodeSafetensors(bad, 'f.st'), /f\.st: header is not valid JSON/);
  });

  it('reads a file written by hand the way Python writes it', () => {
    const header = '{"x":{"dtype":"I32","shape":[2],"data_offsets":[0,8]}}';
    const head = Buffer.alloc(8);
    head.writeBigUInt64LE(BigInt(header.length));
    const data = Buffer.alloc(8);
    data.writeInt32LE(-5, 0);
    data.writeInt32LE(9, 4);
    const dir = tempDir();
    writeFileSync(join(dir, 'p.safetensors'), Buffer.concat([head, Buffer.from(header), data]));
    const st = decodeSafetensors(readFileSync(join(dir, 'p.safetensors')), 'p');
    assert.deepEqual([...st.tensors.get('x')!.data], [-5, 9]);
  });
});
