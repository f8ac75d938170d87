/** Hand-written .npy and .npz bytes for the import tests (no numpy needed). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { crc32, deflateRawSync } from 'node:zlib';

/** A .npy header (versions 1, 2, 3) for a C-order array, padded as numpy pads it (to 64 bytes). */
export function npyHeader(descr: string, shape: readonly number[], version: 1 | 2 | 3 = 1, fortran = false): Buffer {
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': ${fortran ? 'True' : 'False'}, 'shape': ${shapeText}, }`;
  const pre = version === 1 ? 10 : 12;
  dict += ' '.repeat((64 - ((pre + dict.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.alloc(pre);
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head);
  if (version === 1) head.writeUInt16LE(dict.length, 8);
  else head.writeUInt32LE(dict.length, 8);
  return Buffer.concat([head, Buffer.from(dict, 'latin1')]);
}

/** float32 → float16 bits, for values float16 holds exactly (normal numbers, zero, ±Infinity, NaN). */
export function toHalf(v: number): number {
  const u = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  const sign = (u >>> 16) & 0x8000;
  const e = (u >>> 23) & 0xff;
  const frac = u & 0x7fffff;
  if (e === 0xff) return sign | 0x7c00 | (frac ? 0x200 : 0);
  if (e === 0 && frac === 0) return sign;
  const exp = e - 127 + 15;
  if (exp <= 0 || exp >= 31 || (frac & 0x1fff) !== 0) throw new Error(`${v} is not exactly a normal float16`);
  return sign | (exp << 10) | (frac >>> 13);
}

/** The bytes of a .npy holding `values` (row-major) as `descr` (`<f4`, `<f2`, `<f8`, or anything for the header only). */
export function npyBytes(values: readonly number[], shape: readonly number[], descr = '<f4', version: 1 | 2 | 3 = 1): Buffer {
  let data: Buffer;
  if (descr.endsWith('f4')) data = Buffer.from(new Float32Array(values).buffer);
  else if (descr.endsWith('f8')) data = Buffer.from(new Float64Array(values).buffer);
  else if (descr.endsWith('f2')) data = Buffer.from(new Uint16Array(values.map(toHalf)).buffer);
  else data = Buffer.alloc(values.length * 4);
  if (descr.startsWith('>')) {
    const size = Number(descr.slice(2));
    for (let o = 0; o < data.length; o += size) data.subarray(o, o + size).reverse();
  }
  return Buffer.concat([npyHeader(descr, shape, version), data]);
}

/**
 * A zip of members, each stored or deflated (what np.savez and np.savez_compressed write); `zip64` writes
 * every size and offset in zip64 extra fields and records, as a writer does for members beyond 4 GiB.
 */
export function zipBytes(members: readonly { name: string; data: Buffer; deflate?: boolean }[], zip64 = false): Buffer {
  const FULL = 0xffffffff;
  const locals: Buffer[] = [];
  const centrals: Buffer[] = [];
  let offset = 0;
  for (const m of members) {
    const body = m.deflate ? deflateRawSync(m.data) : m.data;
    const name = Buffer.from(m.name, 'utf8');
    const crc = crc32(m.data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(m.deflate ? 8 : 0, 8);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(zip64 ? FULL : body.length, 18);
    local.writeUInt32LE(zip64 ? FULL : m.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    const localExtra = Buffer.alloc(zip64 ? 20 : 0);
    const centralExtra = Buffer.alloc(zip64 ? 28 : 0);
    if (zip64) {
      localExtra.writeUInt16LE(1, 0);
      localExtra.writeUInt16LE(16, 2);
      localExtra.writeBigUInt64LE(BigInt(m.data.length), 4);
      localExtra.writeBigUInt64LE(BigInt(body.length), 12);
      local.writeUInt16LE(20, 28);
      centralExtra.writeUInt16LE(1, 0);
      centralExtra.writeUInt16LE(24, 2);
      centralExtra.writeBigUInt64LE(BigInt(m.data.length), 4);
      centralExtra.writeBigUInt64LE(BigInt(body.length), 12);
      centralExtra.writeBigUInt64LE(BigInt(offset), 20);
    }
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE(20, 4);
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(m.deflate ? 8 : 0, 10);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(zip64 ? FULL : body.length, 20);
    central.writeUInt32LE(zip64 ? FULL : m.data.length, 24);
    central.writeUInt16LE(name.length, 28);
    central.writeUInt16LE(centralExtra.length, 30);
    central.writeUInt32LE(zip64 ? FULL : offset, 42);
    locals.push(local, name, localExtra, body);
    centrals.push(central, name, centralExtra);
    offset += 30 + name.length + localExtra.length + body.length;
  }
  const cd = Buffer.concat(centrals);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(zip64 ? 0xffff : members.length, 8);
  end.writeUInt16LE(zip64 ? 0xffff : members.length, 10);
  end.writeUInt32LE(zip64 ? FULL : cd.length, 12);
  end.writeUInt32LE(zip64 ? FULL : offset, 16);
  if (!zip64) return Buffer.concat([...locals, cd, end]);
  const record = Buffer.alloc(56);
  record.writeUInt32LE(0x06064b50, 0);
  record.writeBigUInt64LE(44n, 4);
  record.writeUInt16LE(45, 12);
  record.writeUInt16LE(45, 14);
  record.writeBigUInt64LE(BigInt(members.length), 24);
  record.writeBigUInt64LE(BigInt(members.length), 32);
  record.writeBigUInt64LE(BigInt(cd.length), 40);
  record.writeBigUInt64LE(BigInt(offset), 48);
  const locator = Buffer.alloc(20);
  locator.writeUInt32LE(0x07064b50, 0);
  locator.writeBigUInt64LE(BigInt(offset + cd.length), 8);
  locator.writeUInt32LE(1, 16);
  return Buffer.concat([...locals, cd, record, locator, end]);
}

export function writeBytes(path: string, bytes: Uint8Array): string {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, bytes);
  return path;
}

/** A Flickr30k-shaped data root with BLIP annotation JSONs only (no image files): `images` per split, 2 captions each. */
export function karpathyFixture(root: string, images: Record<'train' | 'val' | 'test', number>): void {
  for (const split of ['train', 'val', 'test'] as const) {
    const entries: unknown[] = [];
    for (let i = 0; i < images[split]; i++) {
      const image = `flickr30k-images/${split}${i}.jpg`;
      if (split === 'train') for (let c = 0; c < 2; c++) entries.push({ image, caption: `a ${split} photo ${i} caption ${c}`, image_id: `${i}` });
      else entries.push({ image, caption: [`a ${split} photo ${i} caption 0`, `a ${split} photo ${i} caption 1`] });
    }
    writeBytes(`${root}/flickr30k/annotations/flickr30k_${split}.json`, Buffer.from(JSON.stringify(entries)));
  }
}
