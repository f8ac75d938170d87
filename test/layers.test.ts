/**
 * The layers of src/, lowest first: a module may import from its own layer and the ones below, never
 * from above (README "Layout"). A new upward import fails this test, naming the file and the import.
 */
import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { REPO } from './helpers';

export const LAYERS: readonly (readonly string[])[] = [
  ['errors', 'util', 'backend', 'store'],
  ['model'],
  ['data', 'encoders'],
  ['config'],
  ['features'],
  ['trajectory'],
  ['coreset', 'distill', 'evaluate'],
  ['control'],
  ['analysis', 'figures'],
  ['pipeline'],
  ['notebook', 'cli'],
  ['index'],
];

const SRC = join(REPO, 'src');
const rankOf = (path: string): number => {
  const top = relative(SRC, path).split('/')[0]!.replace(/\.ts$/, '');
  const r = LAYERS.findIndex((names) => names.includes(top));
  if (r < 0) throw new Error(`src/${top} is in no layer: add it to LAYERS in test/layers.test.ts`);
  return r;
};

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? files(p) : p.endsWith('.ts') ? [p] : [];
  });
}

describe('layers: no import from a lower layer to a higher one', () => {
  it('holds for every relative import and require in src/', () => {
    const violations: string[] = [];
    for (const file of files(SRC)) {
      const text = readFileSync(file, 'utf8');
      for (const m of text.matchAll(/(?:from|require\()\s*'(\.{1,2}\/[^']+)'/g)) {
        const target = normalize(join(dirname(file), m[1]!));
        if (rankOf(target) > rankOf(file)) violations.push(`${relative(REPO, file)} imports ${m[1]}`);
      }
    }
    assert.deepEqual(violations, []);
  });
});
