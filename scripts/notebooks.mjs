#!/usr/bin/env node
// Execute every notebook headless, in order, with Debian's Jupyter and the project's tslab kernel.
//   npm run notebooks                 full mode: regenerates the committed outputs and figures in place
//   npm run notebooks -- --quick      quick mode: small counts, scratch workspace, outputs to .ptmst-cache/
//   npm run notebooks -- 03           only the notebooks whose file name starts with 03
// A cell that errors stops that notebook and makes the exit code non-zero (after the others have run).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PY = '/usr/bin/python3';
const { values, positionals } = parseArgs({
  options: { quick: { type: 'boolean', default: false }, timeout: { type: 'string', default: '3600' } },
  allowPositionals: true,
});
const mode = values.quick ? 'quick' : 'full';

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
const outDir = join(ROOT, '.ptmst-cache/notebooks-quick/executed');
if (mode === 'quick') mkdirSync(outDir, { recursive: true });

const env = { ...process.env, JUPYTER_PATH: join(ROOT, '.jupyter'), PTMST_NOTEBOOK_MODE: mode, PYDEVD_DISABLE_FILE_VALIDATION: '1' };
const failed = [];
const t0 = Date.now();
for (const nb of notebooks) {
  const t = Date.now();
  console.log(`▶ ${nb} (${mode})`);
  const where = mode === 'quick' ? ['--output-dir', outDir] : ['--inplace'];
  const r = spawnSync(
    PY,
    ['-m', 'nbconvert', '--to', 'notebook', '--execute', ...where, `--ExecutePreprocessor.timeout=${values.timeout}`, '--ExecutePreprocessor.kernel_name=tslab', join(dir, nb)],
    { cwd: dir, env, stdio: ['ignore', 'inherit', 'pipe'], encoding: 'utf8' },
  );
  const seconds = ((Date.now() - t) / 1000).toFixed(0);
  const written = mode === 'quick' ? join(outDir, nb) : join(dir, nb);
  const errors = r.status === 0 ? cellErrors(written) : [];
  if (r.status !== 0 || errors.length > 0) {
    failed.push(nb);
    console.error(r.stderr.split('\n').filter((l) => !l.startsWith('[NbConvertApp]')).slice(-40).join('\n'));
    for (const e of errors) console.error(e);
    console.error(`✗ ${nb} failed after ${seconds} s`);
  } else {
    console.log(`✓ ${nb} in ${seconds} s${mode === 'quick' ? ` → ${written}` : ''}`);
  }
}
console.log(`notebooks: ${notebooks.length - failed.length}/${notebooks.length} ran without an error in ${((Date.now() - t0) / 1000).toFixed(0)} s (${mode} mode)`);
process.exit(failed.length ? 1 : 0);

/** Error outputs and stderr lines tslab prints for a cell that fails to compile. */
function cellErrors(file) {
  const nb = JSON.parse(readFileSync(file, 'utf8'));
  return nb.cells.flatMap((c, i) =>
    (c.outputs ?? []).filter((o) => o.output_type === 'error').map((o) => `cell ${i}: ${o.ename}: ${o.evalue}`),
  );
}
