import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { type BackendName, ready, useBackend } from '../src/backend';
import type { FeatureSet } from '../src/features/feature-set';
import { sha256 } from '../src/store/atomic';
import { type TensorRecord, readSafetensors, writeSafetensors } from '../src/store/safetensors';
import { type BufferManifest, expertFileName, manifestPath, writeBufferManifest } from '../src/trajectory/store';
import { rng } from '../src/util/random';

/** Repository root (tests run from dist/test/...). */
export const REPO = resolve(__dirname, '..', '..');

/** Everything a test run writes lives under one folder, removed when the run ends (test/hooks.ts). */
export const TEST_ROOT = join(tmpdir(), `ptmst-test-${process.pid}`);

let warned = false;

/**
 * The real-data root ($PTMST_DATA_ROOT, else ../shared/data beside the repo). When it is absent the calling
 * test (or suite, from a hook) is skipped with one loud line naming the variable to set — unless `CI` or
 * `PTMST_REQUIRE_DATA` is set, where a missing data root fails the test instead.
 */
export function realData(ctx: Mocha.Context): string {
  const root = process.env.PTMST_DATA_ROOT || resolve(REPO, '..', 'shared', 'data');
  if (existsSync(join(root, 'flickr8k', 'captions.txt'))) return root;
  if (process.env.CI || process.env.PTMST_REQUIRE_DATA) {
    throw new Error(`real data not found at ${root}: set PTMST_DATA_ROOT (CI or PTMST_REQUIRE_DATA is set, so this fails)`);
  }
  if (!warned) {
    process.stderr.write(
      `\n[ptmst tests] real data not found at ${root}: tests that need Flickr8k photos are SKIPPED. ` +
        'Set PTMST_DATA_ROOT=DIR (a folder holding flickr8k/, see README "Data") to run them.\n\n',
    );
    warned = true;
  }
  ctx.skip();
}

export function tempDir(prefix = 'ptmst-test-'): string {
  mkdirSync(TEST_ROOT, { recursive: true });
  return mkdtempSync(join(TEST_ROOT, prefix));
}

/** One cache folder shared by the tests of a run (generated shapes and their features are made once). */
export function sharedCache(): string {
  return join(TEST_ROOT, 'shared-cache');
}

/**
 * Run `check` on the suite's backend and, when that is another one and wasm loads, on wasm too (its float32
 * Sum adds one value after another: the case accuracy tests must cover explicitly), named by its argument.
 * The suite's backend is current again afterwards.
 */
export async function onSuiteAndWasm(check: (backend: BackendName) => Promise<void>): Promise<void> {
  const suite = (await ready(() => undefined)).name;
  try {
    await check(suite);
    if (suite !== 'wasm' && (await useBackend('wasm'))) await check('wasm');
  } finally {
    await useBackend(suite);
  }
}

/** Relative L2 error ‖a − b‖ / ‖b‖ (gradient checks). */
export function relErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

/** The largest |v| (Math.max(...v) overflows the stack on long arrays). */
export function maxAbs(v: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < v.length; i++) m = Math.max(m, Math.abs(v[i]!));
  return m;
}

/** The largest |a − b| over two arrays of one length. */
export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

/** A small random feature set: 40 images, 2 captions each; captions a noisy linear view of their image, so heads can learn. */
export function toySet(seed: number): FeatureSet {
  const r = rng(seed);
  const nImg = 40;
  const img = Float32Array.from({ length: nImg * 16 }, () => r.next());
  const captionToImage = Int32Array.from({ length: nImg * 2 }, (_, j) => Math.floor(j / 2));
  const txt = Float32Array.from({ length: nImg * 2 * 8 }, (_, k) => {
    const j = Math.floor(k / 8);
    return img[captionToImage[j]! * 16 + (k % 8)]! + 0.1 * (r.next() - 0.5);
  });
  return {
    dataset: 'toy', split: 'train', imageEncoder: 'toy', textEncoder: 'toy', numImages: nImg, numCaptions: nImg * 2,
    dImg: 16, dTxt: 8, img, txt, captionToImage, imageToCaptions: Array.from({ length: nImg }, (_, i) => [2 * i, 2 * i + 1]), digest: 'toy',
  };
}

/**
 * A fresh read-only tmpfs (needs root and mount rights: as in CI's container); elsewhere the calling test is
 * skipped with one line saying why.
 */
export function readOnlyMount(ctx: Mocha.Context): string {
  const dir = join(tempDir(), 'ro');
  mkdirSync(dir);
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'ro,size=64k', 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    process.stderr.write(`      [skipped: cannot mount a read-only tmpfs here (${(r.stderr || String(r.error)).trim()}); run as root to test EROFS]\n`);
    ctx.skip();
  }
  return dir;
}

type RawManifest = Record<string, unknown> & { experts: Record<string, unknown>[] };

/**
 * Edit a buffer manifest as JSON and write it back through the project's writer, so whatever digest it
 * carries is recomputed: what a careful hand edit (or a tool) leaves, rather than a broken checksum.
 */
export async function editBufferManifest(dir: string, edit: (m: RawManifest) => void): Promise<void> {
  const { sha256: _old, ...m } = JSON.parse(readFileSync(manifestPath(dir), 'utf8')) as RawManifest;
  edit(m as RawManifest);
  await writeBufferManifest(dir, m as unknown as BufferManifest);
}

/**
 * Rewrite expert `index` of a buffer through the project's writer (so its digest is valid) with `edit`
 * applied, and fix up its manifest entry: the file verifies, only its numbers are wrong. Returns its path.
 */
export async function editExpertFile(dir: string, index: number, edit: (t: TensorRecord) => void): Promise<string> {
  const file = join(dir, expertFileName(index));
  const st = await readSafetensors(file);
  const tensors: TensorRecord = Object.fromEntries([...st.tensors].map(([k, t]) => [k, { shape: t.shape, data: t.data }]));
  edit(tensors);
  const buf = await writeSafetensors(file, tensors, st.metadata);
  await editBufferManifest(dir, (m) => {
    const e = m.experts.find((x) => x.index === index)!;
    e.sha256 = sha256(buf);
    e.bytes = buf.length;
  });
  return file;
}

/**
 * Rewrite expert `index` of a buffer as another writer (or an older ptmst) would: the same tensors, no
 * `__metadata__` and so no digest; its manifest entry is fixed up so only the missing digest is wrong. Returns its path.
 */
export async function stripExpertDigest(dir: string, index: number): Promise<string> {
  const file = join(dir, expertFileName(index));
  const st = await readSafetensors(file);
  let offset = 0;
  const header: Record<string, unknown> = {};
  const parts: Buffer[] = [];
  for (const [name, t] of st.tensors) {
    const bytes = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    header[name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    parts.push(bytes);
    offset += bytes.length;
  }
  const json = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(json.length));
  const buf = Buffer.concat([len, json, ...parts]);
  writeFileSync(file, buf);
  await editBufferManifest(dir, (m) => {
    const e = m.experts.find((x) => x.index === index)!;
    e.sha256 = sha256(buf);
    e.bytes = buf.length;
  });
  return file;
}

/**
 * Skip the calling test unless `holds`: a claim that is true in one configuration only (OpenBLAS loaded, the
 * threaded build, the fused kernels on), said as one line on stderr naming where it runs. Where `require` names
 * an environment variable that is set (PTMST_REQUIRE_BLAS in CI), a configuration that does not hold fails instead.
 */
export function onlyWhere(ctx: Mocha.Context, holds: boolean, where: string, require?: string): void {
  if (holds) return;
  if (require !== undefined && process.env[require]) throw new Error(`${require} is set but this does not hold: ${where}`);
  // from a before-all hook the whole suite skips: named by its title
  const runnable = ctx.test as (Mocha.Runnable & { type?: string }) | undefined;
  const title = runnable?.type === 'hook' ? `${runnable.parent?.fullTitle()} (all its tests)` : runnable?.fullTitle();
  process.stderr.write(`[ptmst tests] skipped "${title}": runs only ${where}\n`);
  ctx.skip();
}
