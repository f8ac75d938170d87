#!/usr/bin/env node
// Execute every notebook headless, in order, with Debian's Jupyter and the project's tslab kernel.
//   npm run notebooks                 full mode: regenerates the committed outputs and figures in place
//   npm run notebooks -- --quick      quick mode: small counts, scratch workspace, outputs to .ptmst-cache/
//   npm run notebooks -- 03           only the notebooks whose file name starts with 03
//   npm run notebooks -- --cells findings 01 03
//                                     full mode, only the code cells tagged `findings` (the "what the full run
//                                     shows" cells, which read committed results files), in one fresh kernel; the
//                                     other cells keep their committed outputs
// A cell that errors stops that notebook and makes the exit code non-zero (after the others have run).
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PY = '/usr/bin/python3';
const { values, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, timeout: { type: 'string', default: '3600' }, cells: { type: 'string' } },
  allowPositionals: true,
});
const mode = values.quick ? 'quick' : 'full';
const tag = values.cells;

const fail = (msg) => {
  console.error(`notebooks: ${msg}`);
  process.exit(2);
};
if (!existsSync(join(ROOT, '.jupyter/kernels/tslab/kernel.json'))) fail('the project kernel is not registered: run `npm run notebooks:setup`');
if (spawnSync(PY, ['-c', 'import nbclient, nbconvert']).status !== 0) fail(`${PY} cannot import nbconvert: run \`npm run notebooks:setup\``);
if (!existsSync(join(ROOT, 'dist/src/index.js'))) fail('the library is not built: run `npm run build`');
// notebooks import the package by its name: node_modules/ptmst → the project (npm ci removes the link)
const link = join(ROOT, 'node_modules/ptmst');
let target;
try {
  target = readlinkSync(link);
} catch {}
if (target !== '..') {
  rmSync(link, { recursive: true, force: true });
  symlinkSync('..', link);
}

const dir = join(ROOT, 'notebooks');
const notebooks = readdirSync(dir)
  .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
  .filter((f) => positionals.length === 0 || positionals.some((p) => f.startsWith(p)))
  .sort();
if (notebooks.length === 0) fail(`no notebook matches ${positionals.join(' ')}`);
if (tag !== undefined && values.quick) fail('--cells runs tagged cells in full mode, to refresh committed outputs; drop --quick');
// executed copies go to a scratch folder first; in full mode a clean run then replaces the committed notebook
const outDir = join(ROOT, `.ptmst-cache/notebooks-${mode}/executed`);
mkdirSync(outDir, { recursive: true });

const env = { ...process.env, JUPYTER_PATH: join(ROOT, '.jupyter'), PTMST_NOTEBOOK_MODE: mode, PYDEVD_DISABLE_FILE_VALIDATION: '1' };
const failed = [];
const skipped = [];
const t0 = Date.now();
for (const nb of notebooks) {
  const t = Date.now();
  if (tag !== undefined && !JSON.parse(readFileSync(join(dir, nb), 'utf8')).cells.some((c) => c.cell_type === 'code' && c.metadata?.tags?.includes(tag))) {
    console.log(`- ${nb}: no cell tagged ${tag}`);
    skipped.push(nb);
    continue;
  }
  console.log(`▶ ${nb} (${mode}${tag === undefined ? '' : `, cells tagged ${tag}`})`);
  const written = join(outDir, nb);
  rmSync(written, { force: true });
  const r = spawnSync(PY, [join(ROOT, 'scripts/execute-notebook.py'), join(dir, nb), written, values.timeout, ...(tag === undefined ? [] : [tag])], {
    cwd: dir,
    env,
    stdio: 'inherit',
  });
  const seconds = ((Date.now() - t) / 1000).toFixed(0);
  if (r.status !== 0) {
    failed.push(nb);
    console.error(`✗ ${nb} failed after ${seconds} s (executed copy: ${written})`);
  } else {
    if (mode === 'full') copyFileSync(written, join(dir, nb));
    console.log(`✓ ${nb} in ${seconds} s${mode === 'full' ? ' (outputs saved in notebooks/)' : ` → ${written}`}`);
  }
}
const ran = notebooks.length - skipped.length;
console.log(`notebooks: ${ran - failed.length}/${ran} ran without an error in ${((Date.now() - t0) / 1000).toFixed(0)} s (${mode} mode)`);
process.exit(failed.length ? 1 : 0);
