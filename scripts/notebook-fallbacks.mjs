#!/usr/bin/env node
// Add the safe fallbacks to committed notebook outputs, in place: a PNG beside each image/svg+xml output, HTML and
// plain text beside each text/markdown output (src/notebook/fallbacks.ts; the same functions a fresh run uses).
// Nothing else in a file changes; a second run changes nothing.
//   npm run notebooks:fallbacks                  every notebooks/NN-*.ipynb
//   npm run notebooks:fallbacks -- FILE...       these files
//   npm run notebooks:fallbacks -- --check       change nothing; exit 1 naming each notebook that lacks fallbacks
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const lib = join(ROOT, 'dist/src/notebook/fallbacks.js');
if (!existsSync(lib)) {
  console.error('notebooks:fallbacks: the library is not built: run `npm run build`');
  process.exit(2);
}
const { addFallbacks } = createRequire(import.meta.url)(lib);
const { values, positionals } = parseArgs({ options: { check: { type: 'boolean', default: false } }, allowPositionals: true });
const files = positionals.length
  ? positionals.map((f) => resolve(f))
  : readdirSync(join(ROOT, 'notebooks'))
      .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
      .sort()
      .map((f) => join(ROOT, 'notebooks', f));
let lacking = 0;
for (const file of files) {
  const { text, added } = await addFallbacks(readFileSync(file, 'utf8'));
  const what = Object.entries(added).map(([mime, n]) => `${n} × ${mime}`).join(', ');
  const name = relative(process.cwd(), file);
  if (!what) {
    console.log(`${name}: every output has its fallbacks`);
    continue;
  }
  lacking++;
  if (values.check) {
    console.log(`${name}: lacks ${what}`);
    continue;
  }
  writeFileSync(`${file}.tmp`, text);
  renameSync(`${file}.tmp`, file);
  console.log(`${name}: added ${what}`);
}
if (values.check && lacking) {
  console.error(`notebooks:fallbacks: ${lacking} notebook(s) lack fallbacks: run \`npm run notebooks:fallbacks\``);
  process.exit(1);
}
