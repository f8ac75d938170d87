#!/usr/bin/env node
// Rewrite the generated blocks of README.md and docs/*.md from figures/*.json (src/figures/docs.ts).
// `npm run docs -- --check` writes nothing and exits 1 when a block is stale or was edited by hand.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
const { refreshDocs } = require(join(root, 'dist/src/figures/docs.js'));
const check = process.argv.includes('--check');
const changed = await refreshDocs(root, { check });
if (check && changed.length > 0) {
  console.error(`docs: generated blocks out of date in ${changed.join(', ')}; run npm run docs`);
  process.exit(1);
}
console.log(changed.length ? `docs: rewrote ${changed.join(', ')}` : 'docs: every generated block is current');
