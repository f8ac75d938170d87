/**
 * `shapes`: a small image–caption set the project generates itself, so that a fresh clone runs the whole
 * pipeline with no data root. Each 96×96 photo shows 1–3 copies of one coloured shape (and sometimes a
 * second, smaller group) on a textured background; its five captions name the count, colour and shape in
 * different words, so a bag-of-words text encoder can tell captions apart. Laid out like Flickr8k
 * (`captions.txt`, `train.txt`/`val.txt`/`test.txt`, `images/`), written once, deterministic.
 *
 * `shapes-shifted`: a second generated set for cross-dataset checks without a data root (the role coco-mini
 * plays for Flickr8k): 100 test photos of the same shapes, colours and caption templates on a dark background
 * (and "dark" in the captions), drawn from another seed; a captions.txt folder with no split lists (all test).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import jpeg from 'jpeg-js';
import { WriteError, describeSystemError } from '../errors';
import { ensureDir } from '../store/atomic';
import { type Rng, randInt, rng } from '../util/random';

export const SHAPES_DATASET = 'shapes';
export const SHAPES_SPLIT_FILES = { train: 'train.txt', val: 'val.txt', test: 'test.txt' } as const;
export const SHAPES_SIZES = { train: 500, val: 100, test: 100 } as const;
export const SHAPES_SHIFTED_DATASET = 'shapes-shifted';
const SIZE = 96;
const VERSION = 'shapes-v1';

/** How a generated set differs: its seed, its splits (with split lists, or one unlisted test split) and its background. */
interface Variant {
  readonly name: string;
  readonly seed: number;
  readonly splits: Readonly<Record<string, number>>;
  /** write train.txt/val.txt/test.txt (else every image is in the one split, as in coco-mini) */
  readonly lists: boolean;
  readonly background: 'grey' | 'dark';
  readonly version: string;
}

const VARIANTS: Readonly<Record<string, Variant>> = {
  [SHAPES_DATASET]: { name: SHAPES_DATASET, seed: 0, splits: SHAPES_SIZES, lists: true, background: 'grey', version: VERSION },
  [SHAPES_SHIFTED_DATASET]: { name: SHAPES_SHIFTED_DATASET, seed: 1, splits: { test: 100 }, lists: false, background: 'dark', version: 'shapes-shifted-v1' },
};

/** The names of the sets the project generates itself (no data root needed). */
export const GENERATED_DATASETS: readonly string[] = Object.keys(VARIANTS);

const COLOURS = {
  red: [220, 30, 30],
  green: [30, 170, 50],
  blue: [40, 60, 220],
  yellow: [235, 210, 30],
  purple: [140, 40, 170],
} as const;
type Colour = keyof typeof COLOURS;
const SHAPES = ['circle', 'square', 'triangle'] as const;
type Shape = (typeof SHAPES)[number];
const NUMBER_WORDS = ['', 'one', 'two', 'three'] as const;

interface Group {
  readonly colour: Colour;
  readonly shape: Shape;
  readonly count: number;
}

function inside(shape: Shape, dx: number, dy: number, r: number): boolean {
  if (shape === 'circle') return dx * dx + dy * dy <= r * r;
  if (shape === 'square') return Math.abs(dx) <= r * 0.85 && Math.abs(dy) <= r * 0.85;
  return dy <= r * 0.8 && dy >= -r && Math.abs(dx) <= (dy + r) * 0.55; // triangle, apex up
}

function render(groups: readonly Group[], r: Rng, background: Variant['background']): Uint8Array {
  const rgba = new Uint8Array(SIZE * SIZE * 4);
  const base = (background === 'dark' ? 40 : 200) + randInt(r, 40);
  for (let i = 0; i < SIZE * SIZE; i++) {
    const v = base + randInt(r, 16) - 8;
    rgba.set([v, v, v - 10, 255], i * 4);
  }
  const placed: { x: number; y: number; rad: number }[] = [];
  groups.forEach((g, gi) => {
    const rad = gi === 0 ? 11 + randInt(r, 4) : 7 + randInt(r, 3);
    for (let k = 0; k < g.count; k++) {
      let x = 0;
      let y = 0;
      for (let attempt = 0; attempt < 50; attempt++) {
        x = rad + 2 + randInt(r, SIZE - 2 * rad - 4);
        y = rad + 2 + randInt(r, SIZE - 2 * rad - 4);
        if (placed.every((p) => Math.hypot(p.x - x, p.y - y) > p.rad + rad + 2)) break;
      }
      placed.push({ x, y, rad });
      const [cr, cg, cb] = COLOURS[g.colour];
      for (let py = y - rad; py <= y + rad; py++) {
        for (let px = x - rad; px <= x + rad; px++) {
          if (!inside(g.shape, px - x, py - y, rad)) continue;
          rgba.set([cr, cg, cb], (py * SIZE + px) * 4);
        }
      }
    }
  });
  return rgba;
}

function phrase(g: Group): string {
  const noun = g.count === 1 ? g.shape : `${g.shape}s`;
  return `${g.count === 1 ? 'a' : NUMBER_WORDS[g.count]} ${g.colour} ${noun}`;
}

function captions(groups: readonly Group[], background: Variant['background']): string[] {
  const [a, b] = groups as [Group, Group | undefined];
  const extra = b ? ` and ${phrase(b)}` : '';
  const count = a.count === 1 ? 'one' : NUMBER_WORDS[a.count];
  return [
    `${phrase(a)}${extra} on a ${background} background.`,
    `A picture of ${phrase(a)}${extra}.`,
    `There ${a.count === 1 ? 'is' : 'are'} ${count} ${a.shape}${a.count === 1 ? '' : 's'} , coloured ${a.colour}${b ? `, next to ${phrase(b)}` : ''}.`,
    `${a.colour} ${a.shape}${a.count === 1 ? '' : 's'}${b ? ` with ${b.colour} ${b.shape}${b.count === 1 ? '' : 's'}` : ''}, ${count} of them`,
    `An image showing ${phrase(a)}${extra}`,
  ];
}

function scene(r: Rng): Group[] {
  const colours = Object.keys(COLOURS) as Colour[];
  const first: Group = { colour: colours[randInt(r, colours.length)]!, shape: SHAPES[randInt(r, 3)]!, count: 1 + randInt(r, 3) };
  if (r.next() < 0.5) return [first];
  let colour = colours[randInt(r, colours.length)]!;
  if (colour === first.colour) colour = colours[(colours.indexOf(colour) + 1) % colours.length]!;
  return [first, { colour, shape: SHAPES[randInt(r, 3)]!, count: 1 + randInt(r, 2) }];
}


/**
 * Generate the set under `<root>/shapes/` unless a complete copy is there. Safe under concurrent runs:
 * each run generates into its own temporary folder and renames it into place in one step; a run that
 * finds the folder already there (another run finished first) discards its copy — the sets are identical.
 */
export async function ensureShapes(root: string, seed = 0): Promise<string> {
  return ensureGenerated(root, { ...VARIANTS[SHAPES_DATASET]!, seed });
}

/** `ensureShapes` for any generated set by name (`GENERATED_DATASETS`): `<root>/<name>/`. */
export async function ensureGeneratedDataset(root: string, name: string): Promise<string> {
  const variant = VARIANTS[name];
  if (variant === undefined || !Object.hasOwn(VARIANTS, name)) throw new Error(`${name} is not a generated dataset (${GENERATED_DATASETS.join(', ')})`);
  return ensureGenerated(root, variant);
}

async function ensureGenerated(root: string, variant: Variant): Promise<string> {
  const dir = join(root, variant.name);
  const stamp = join(dir, 'VERSION');
  if (existsSync(stamp)) return dir;
  await ensureDir(root);
  const tmp = await mkdtemp(join(root, `.${variant.name}-`));
  try {
    await generate(tmp, variant);
    if (existsSync(dir) && !existsSync(stamp)) await rm(dir, { recursive: true, force: true }); // an old, unstamped copy
    await rename(tmp, dir);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    const code = (e as NodeJS.ErrnoException).code;
    if ((code === 'ENOTEMPTY' || code === 'EEXIST') && existsSync(stamp)) return dir; // another run finished first
    throw e instanceof WriteError ? e : new WriteError(dir, describeSystemError(e));
  }
  return dir;
}

/** Write the set into `tmp` (plain writes: the folder becomes visible only by the rename above). */
async function generate(tmp: string, variant: Variant): Promise<void> {
  await mkdir(join(tmp, 'images'));
  const r = rng(variant.seed);
  const rows: [string, string][] = [['image', 'caption']];
  for (const [split, n] of Object.entries(variant.splits)) {
    const names: string[] = [];
    for (let i = 0; i < n; i++) {
      const name = `${split}-${String(i).padStart(4, '0')}.jpg`;
      const groups = scene(r);
      const data = render(groups, r, variant.background);
      await writeFile(join(tmp, 'images', name), jpeg.encode({ data, width: SIZE, height: SIZE }, 90).data);
      names.push(name);
      for (const c of captions(groups, variant.background)) rows.push([name, c]);
    }
    if (variant.lists) await writeFile(join(tmp, SHAPES_SPLIT_FILES[split as keyof typeof SHAPES_SPLIT_FILES]), names.join('\n') + '\n');
  }
  await writeFile(join(tmp, 'captions.txt'), stringify(rows));
  await writeFile(join(tmp, 'VERSION'), `${variant.version} seed ${variant.seed}\n`);
}
