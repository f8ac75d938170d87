#!/usr/bin/env -S node --experimental-websocket --no-warnings
// The committed notebooks in a real browser, untrusted, as a fresh clone shows them; and one notebook run through
// the Jupyter server's own kernel API. Run by `.ci/run` after the quick notebooks.
//
//   npm run notebooks:browser                    every notebooks/NN-*.ipynb, then 00 interactively (quick mode)
//   npm run notebooks:browser -- 03 --no-kernel  only 03, no interactive run
//
// 1. Starts Debian's Jupyter Notebook (the project's tslab kernel through JUPYTER_PATH=.jupyter, as
//    `npm run notebooks:open` does) on 127.0.0.1 with a random token, with fresh data, runtime and config folders
//    in a temporary folder: its notebook signature database is empty, so every notebook opens untrusted.
// 2. Opens each notebook in headless Chromium (Debian's `chromium`, driven over the DevTools protocol with Node's
//    WebSocket) and asserts from the rendered page: the notebook is untrusted; every output shows something; each
//    figure output is an image that loaded with a non-zero rendered size; each table of the outputs is there, with
//    as many cells as the outputs hold. Saves a full-page screenshot per notebook to .ptmst-cache/browser/NN-….png.
// 3. Starts a kernel through the server's REST API (POST /api/sessions), executes the cells of one notebook over
//    its websocket channels (quick mode) and asserts: every reply is ok, no error and no stderr output, and each
//    cell shows the kinds of output the committed notebook holds (figures as SVG + PNG, tables as Markdown + HTML +
//    text, photos as HTML + text).
// The committed notebooks are checked unchanged afterwards; the temporary folder is removed.
import { spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const PY = '/usr/bin/python3';
const CHROMIUM = process.env.PTMST_CHROMIUM ?? '/usr/bin/chromium';
const { values, positionals } = parseArgs({
  options: { kernel: { type: 'boolean', default: true }, 'kernel-notebook': { type: 'string', default: '00' } },
  allowNegative: true,
  allowPositionals: true,
});
const t0 = Date.now();
const seconds = () => ((Date.now() - t0) / 1000).toFixed(0);
const log = (s) => console.log(`[${seconds().padStart(3)} s] ${s}`);
const fail = (msg) => {
  console.error(`notebooks:browser: ${msg}`);
  process.exit(2);
};
if (typeof WebSocket !== 'function') fail('this Node has no WebSocket: run it as `node --experimental-websocket` (Node 20.10+), or `npm run notebooks:browser`');
if (!existsSync(join(ROOT, '.jupyter/kernels/tslab/kernel.json'))) fail('the project kernel is not registered: run `npm run notebooks:setup`');
if (spawnSync(PY, ['-c', 'import notebook']).status !== 0) fail(`${PY} cannot import notebook (Debian's jupyter-notebook): run \`npm run notebooks:setup\``);
if (!existsSync(CHROMIUM)) fail(`${CHROMIUM} is missing (Debian's chromium): run \`npm run notebooks:setup\``);
if (!existsSync(join(ROOT, 'dist/src/index.js'))) fail('the library is not built: run `npm run build`');

const NB_DIR = join(ROOT, 'notebooks');
const notebooks = readdirSync(NB_DIR)
  .filter((f) => /^\d\d-.*\.ipynb$/.test(f))
  .filter((f) => positionals.length === 0 || positionals.some((p) => f.startsWith(p)))
  .sort();
if (notebooks.length === 0) fail(`no notebook matches ${positionals.join(' ')}`);
const SHOTS = join(ROOT, '.ptmst-cache/browser');
mkdirSync(SHOTS, { recursive: true });
const digest = (f) => createHash('sha256').update(readFileSync(join(NB_DIR, f))).digest('hex');
const before = new Map(readdirSync(NB_DIR).filter((f) => f.endsWith('.ipynb')).map((f) => [f, digest(f)]));

const tmp = mkdtempSync(join(tmpdir(), 'ptmst-browser-'));
// the server makes notebooks/.ipynb_checkpoints when it opens a notebook: gone afterwards, unless it was there before
const checkpoints = join(NB_DIR, '.ipynb_checkpoints');
const hadCheckpoints = existsSync(checkpoints);
const children = [];
const cleanup = () => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGTERM');
};
process.on('exit', () => {
  cleanup();
  rmSync(tmp, { recursive: true, force: true });
  if (!hadCheckpoints) rmSync(checkpoints, { recursive: true, force: true });
});
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => process.exit(130));

const freePort = () =>
  new Promise((ok, no) => {
    const s = createServer();
    s.on('error', no);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => ok(port));
    });
  });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(what, check, timeoutMs) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`);
    await sleep(250);
  }
}

// ---- the Jupyter server --------------------------------------------------------------------------------------
const token = randomBytes(24).toString('hex');
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
for (const d of ['data', 'runtime', 'config', 'chromium']) mkdirSync(join(tmp, d));
const serverLog = [];
const server = spawn(
  PY,
  ['-m', 'notebook', '--no-browser', '--ip=127.0.0.1', `--port=${port}`, '--port-retries=0', `--notebook-dir=${NB_DIR}`, `--NotebookApp.token=${token}`, '--NotebookApp.password=', ...(process.getuid?.() === 0 ? ['--allow-root'] : [])],
  {
    cwd: ROOT,
    env: {
      ...process.env,
      JUPYTER_PATH: join(ROOT, '.jupyter'),
      // fresh: no trusted-notebook signatures, no user config, no other server's runtime files
      JUPYTER_DATA_DIR: join(tmp, 'data'),
      JUPYTER_RUNTIME_DIR: join(tmp, 'runtime'),
      JUPYTER_CONFIG_DIR: join(tmp, 'config'),
      // the interactive run works in quick mode's scratch workspace (never on committed figures or runs)
      PTMST_NOTEBOOK_MODE: 'quick',
      PYDEVD_DISABLE_FILE_VALIDATION: '1',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  },
);
children.push(server);
for (const s of [server.stdout, server.stderr]) s.on('data', (b) => serverLog.push(b.toString()));
server.on('exit', (code) => {
  if (!stopping) {
    console.error(serverLog.join('').slice(-4000));
    fail(`the Jupyter server exited (${code})`);
  }
});
let stopping = false;
const api = async (path, init = {}) => {
  const r = await fetch(`${base}${path}`, { ...init, headers: { Authorization: `token ${token}`, 'Content-Type': 'application/json', ...(init.headers ?? {}) } });
  if (!r.ok) throw new Error(`${init.method ?? 'GET'} ${path}: HTTP ${r.status} ${await r.text()}`);
  return r.status === 204 ? null : r.json();
};
const status = await until('the Jupyter server', () => api('/api/status'), 60000);
const specs = await api('/api/kernelspecs');
if (!specs.kernelspecs.tslab) fail(`the server does not find the tslab kernel (kernelspecs: ${Object.keys(specs.kernelspecs).join(', ')})`);
log(`Jupyter Notebook ${(await api('/api')).version} on ${base} (started ${status.started}); kernel "${specs.kernelspecs.tslab.spec.display_name}"`);
const stopSessions = async () => {
  for (const s of await api('/api/sessions')) await api(`/api/sessions/${s.id}`, { method: 'DELETE' });
};

// ---- Chromium over the DevTools protocol ----------------------------------------------------------------------
const chrome = spawn(
  CHROMIUM,
  ['--headless=new', '--remote-debugging-port=0', `--user-data-dir=${join(tmp, 'chromium')}`, '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--no-default-browser-check', '--hide-scrollbars', 'about:blank'],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
children.push(chrome);
let chromeErr = '';
const wsUrl = await new Promise((ok, no) => {
  chrome.stderr.on('data', (b) => {
    chromeErr += b.toString();
    const m = /DevTools listening on (ws:\/\/\S+)/.exec(chromeErr);
    if (m) ok(m[1]);
  });
  chrome.on('exit', (code) => no(new Error(`chromium exited (${code}): ${chromeErr.slice(-2000)}`)));
  setTimeout(() => no(new Error(`chromium did not start in 60 s: ${chromeErr.slice(-2000)}`)), 60000);
});
const cdp = new WebSocket(wsUrl);
await new Promise((ok, no) => {
  cdp.onopen = ok;
  cdp.onerror = () => no(new Error(`cannot connect to ${wsUrl}`));
});
let nextId = 1;
const pending = new Map();
cdp.onmessage = (ev) => {
  const msg = JSON.parse(ev.data);
  const p = msg.id !== undefined && pending.get(msg.id);
  if (!p) return;
  pending.delete(msg.id);
  if (msg.error) p.no(new Error(`${p.method}: ${msg.error.message}`));
  else p.ok(msg.result);
};
const send = (method, params = {}, sessionId) =>
  new Promise((ok, no) => {
    const id = nextId++;
    pending.set(id, { ok, no, method });
    cdp.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
  });
const version = await send('Browser.getVersion');
const { targetId } = await send('Target.createTarget', { url: 'about:blank' });
const { sessionId } = await send('Target.attachToTarget', { targetId, flatten: true });
const page = (method, params) => send(method, params, sessionId);
await page('Page.enable');
await page('Runtime.enable');
const WIDTH = 1280;
await page('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: 900, deviceScaleFactor: 1, mobile: false });
const evaluate = async (expression) => {
  const r = await page('Runtime.evaluate', { expression, returnByValue: true, awaitPromise: true });
  if (r.exceptionDetails) throw new Error(`in the page: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value;
};
log(`${version.product} (headless) at ${CHROMIUM}`);

// ---- what each notebook's outputs hold, and what the page shows ------------------------------------------------
const joined = (v) => (Array.isArray(v) ? v.join('') : (v ?? ''));
const count = (s, re) => (s.match(re) ?? []).length;
/** What untrusted Jupyter Notebook renders of one output (its display order, unsafe types skipped, HTML sanitised). */
function expected(file) {
  const nb = JSON.parse(readFileSync(join(NB_DIR, file), 'utf8'));
  const cells = nb.cells.filter((c) => c.cell_type === 'code');
  const outs = cells.flatMap((c) => c.outputs ?? []);
  // the page shows consecutive stream outputs of one name (stdout, stderr) in one output area
  const areas = cells.map((c) => (c.outputs ?? []).filter((o, i, a) => !(o.output_type === 'stream' && i > 0 && a[i - 1].output_type === 'stream' && a[i - 1].name === o.name)).length);
  const e = { outputs: areas.reduce((a, b) => a + b, 0), figures: 0, photos: 0, tables: 0, cells: 0, unsafeOnly: 0 };
  for (const o of outs) {
    if (o.output_type === 'stream' || o.output_type === 'error') continue;
    const d = o.data ?? {};
    if (d['text/html'] !== undefined) {
      const html = joined(d['text/html']);
      e.tables += count(html, /<table\b/g);
      e.cells += count(html, /<t[dh]\b/g);
      e.photos += count(html, /<img\b/g);
    } else if (d['image/png'] !== undefined) e.figures++;
    else if (d['text/plain'] === undefined) e.unsafeOnly++;
  }
  return e;
}
const PROBE = `(() => {
  const areas = [...document.querySelectorAll('#notebook-container .output_area')];
  const box = (el) => { const r = el.getBoundingClientRect(); return { w: Math.round(r.width), h: Math.round(r.height) }; };
  const imgs = (sel) => [...document.querySelectorAll(sel)].map((i) => ({ complete: i.complete, nw: i.naturalWidth, nh: i.naturalHeight, ...box(i) }));
  return {
    trusted: Jupyter.notebook.trusted,
    outputs: areas.length,
    empty: areas.filter((a) => { const s = a.querySelector('.output_subarea'); return !s || (s.innerText.trim() === '' && !s.querySelector('img')); }).length,
    figures: imgs('.output_png img'),
    photos: imgs('.output_html img'),
    svgShown: document.querySelectorAll('.output_svg').length,
    tables: document.querySelectorAll('.output_html table').length,
    cells: document.querySelectorAll('.output_html table td, .output_html table th').length,
    stderr: document.querySelectorAll('.output_stderr').length,
    height: Math.ceil(document.getElementById('notebook').getBoundingClientRect().bottom + 40),
  };
})()`;
const problems = [];
const check = (ok, what) => {
  if (!ok) problems.push(what);
  return ok;
};
for (const file of notebooks) {
  const want = expected(file);
  await page('Page.navigate', { url: `${base}/notebooks/${encodeURIComponent(file)}?token=${token}` });
  await until(`${file} to load`, () => evaluate(`!!(window.Jupyter && Jupyter.notebook && Jupyter.notebook._fully_loaded)`), 60000);
  // every image decoded (or failed): complete
  await until(`${file}'s images`, () => evaluate(`[...document.querySelectorAll('#notebook-container img')].every((i) => i.complete)`), 30000);
  const got = await evaluate(PROBE);
  const name = file.replace(/\.ipynb$/, '');
  const sized = (xs) => xs.filter((i) => i.complete && i.nw > 0 && i.nh > 0 && i.w > 0 && i.h > 0).length;
  check(got.trusted === false, `${name}: the notebook opened trusted (the signature database should be empty)`);
  check(got.outputs === want.outputs, `${name}: ${got.outputs} output areas on the page, ${want.outputs} in the file (consecutive streams of one name share an area)`);
  check(got.empty === 0 && want.unsafeOnly === 0, `${name}: ${got.empty} outputs show nothing (${want.unsafeOnly} outputs have no safe MIME type)`);
  check(got.figures.length === want.figures && sized(got.figures) === want.figures, `${name}: ${sized(got.figures)} of ${want.figures} figures shown as images with a size (${JSON.stringify(got.figures)})`);
  check(sized(got.photos) === want.photos, `${name}: ${sized(got.photos)} of ${want.photos} photos shown`);
  check(got.tables === want.tables, `${name}: ${got.tables} tables on the page, ${want.tables} in the outputs`);
  check(got.cells === want.cells, `${name}: ${got.cells} table cells on the page, ${want.cells} in the outputs`);
  check(got.stderr === 0, `${name}: ${got.stderr} stderr boxes`);
  // a full-page screenshot: the notebook scrolls inside #site, so let the page grow to its content first
  await evaluate(`(() => { const s = document.getElementById('site'); s.style.height = 'auto'; s.style.overflow = 'visible'; document.body.style.overflow = 'visible'; })()`);
  const height = Math.min(await evaluate(`Math.ceil(document.documentElement.scrollHeight)`), 30000);
  await page('Emulation.setDeviceMetricsOverride', { width: WIDTH, height, deviceScaleFactor: 1, mobile: false });
  await sleep(300);
  const shot = await page('Page.captureScreenshot', { format: 'png', captureBeyondViewport: true, clip: { x: 0, y: 0, width: WIDTH, height, scale: 1 } });
  const out = join(SHOTS, `${name}.png`);
  writeFileSync(out, Buffer.from(shot.data, 'base64'));
  await page('Emulation.setDeviceMetricsOverride', { width: WIDTH, height: 900, deviceScaleFactor: 1, mobile: false });
  const figs = got.figures.map((i) => `${i.w}×${i.h}`).join(', ');
  log(
    `${name}: untrusted=${!got.trusted}; ${got.outputs - got.empty}/${want.outputs} outputs shown; figures ${sized(got.figures)}/${want.figures} as PNG${figs ? ` (${figs} px)` : ''}; ` +
      `photos ${sized(got.photos)}/${want.photos}; tables ${got.tables}/${want.tables} (${got.cells}/${want.cells} cells); SVG shown ${got.svgShown}; screenshot ${out.slice(ROOT.length + 1)} (${WIDTH}×${height})`,
  );
  await page('Page.navigate', { url: 'about:blank' });
  await stopSessions(); // the page started a kernel for the notebook
}
await send('Target.closeTarget', { targetId });
cdp.close();
chrome.kill('SIGTERM');

// ---- one notebook through the server's kernel API --------------------------------------------------------------
if (values.kernel) {
  const file = readdirSync(NB_DIR).find((f) => /^\d\d-.*\.ipynb$/.test(f) && f.startsWith(values['kernel-notebook']));
  if (!file) fail(`no notebook starts with ${values['kernel-notebook']}`);
  const nb = JSON.parse(readFileSync(join(NB_DIR, file), 'utf8'));
  const session = await api('/api/sessions', { method: 'POST', body: JSON.stringify({ path: file, type: 'notebook', name: file, kernel: { name: 'tslab' } }) });
  const kernelId = session.kernel.id;
  const clientSession = randomBytes(16).toString('hex');
  const ch = new WebSocket(`ws://127.0.0.1:${port}/api/kernels/${kernelId}/channels?session_id=${clientSession}&token=${token}`);
  await new Promise((ok, no) => {
    ch.onopen = ok;
    ch.onerror = () => no(new Error('cannot open the kernel channels'));
  });
  const waiting = new Map();
  ch.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    const w = waiting.get(msg.parent_header?.msg_id);
    if (!w) return;
    if (msg.channel === 'shell' && msg.msg_type === 'execute_reply') w.reply = msg.content;
    else if (msg.channel === 'iopub') {
      const t = msg.msg_type;
      if (t === 'status' && msg.content.execution_state === 'idle') w.idle = true;
      else if (t === 'stream' || t === 'display_data' || t === 'execute_result' || t === 'error') w.outputs.push({ type: t, content: msg.content });
      else if (t === 'update_display_data') {
        const i = w.outputs.findIndex((o) => o.content.transient?.display_id === msg.content.transient?.display_id);
        if (i >= 0) w.outputs[i] = { type: 'display_data', content: msg.content };
      }
    }
    if (w.reply && w.idle) w.done();
  };
  const execute = (code) =>
    new Promise((done) => {
      const msgId = randomBytes(16).toString('hex');
      const w = { outputs: [], reply: null, idle: false, done: () => { waiting.delete(msgId); done(w); } };
      waiting.set(msgId, w);
      ch.send(
        JSON.stringify({
          header: { msg_id: msgId, username: 'ptmst', session: clientSession, msg_type: 'execute_request', version: '5.3', date: new Date().toISOString() },
          parent_header: {},
          metadata: {},
          content: { code, silent: false, store_history: true, user_expressions: {}, allow_stdin: false, stop_on_error: true },
          channel: 'shell',
          buffers: [],
        }),
      );
    });
  const kinds = (outs) => {
    const k = { figures: 0, tables: 0, photos: 0 };
    for (const o of outs) {
      const mimes = Object.keys(o.data ?? o.content?.data ?? {}).sort().join(' ');
      if (mimes === 'image/png image/svg+xml text/plain') k.figures++;
      else if (mimes === 'text/html text/markdown text/plain') k.tables++;
      else if (mimes === 'text/html text/plain') k.photos++;
    }
    return k;
  };
  const pngOk = (b64) => {
    const b = Buffer.from(b64, 'base64');
    return b.subarray(1, 4).toString() === 'PNG' && b.readUInt32BE(16) > 0 && b.readUInt32BE(20) > 0;
  };
  const cells = nb.cells.filter((c) => c.cell_type === 'code');
  log(`${file}: kernel ${kernelId} started through POST /api/sessions; executing ${cells.length} cells over its websocket channels (quick mode)`);
  let firstOutput;
  for (const [i, cell] of cells.entries()) {
    const started = Date.now();
    const w = await execute(joined(cell.source));
    firstOutput ??= w.outputs[0];
    const name = `${file} cell ${i + 1}`;
    const errors = w.outputs.filter((o) => o.type === 'error' || (o.type === 'stream' && o.content.name === 'stderr'));
    check(w.reply.status === 'ok', `${name}: execute_reply ${w.reply.status} ${w.reply.ename ?? ''} ${w.reply.evalue ?? ''}`);
    check(errors.length === 0, `${name}: ${errors.map((o) => o.content.text ?? `${o.content.ename}: ${o.content.evalue}`).join(' | ').slice(0, 2000)}`);
    const got = kinds(w.outputs.map((o) => o.content));
    const want = kinds(cell.outputs ?? []);
    check(JSON.stringify(got) === JSON.stringify(want), `${name}: outputs ${JSON.stringify(got)}, the committed notebook ${JSON.stringify(want)}`);
    const pngs = w.outputs.filter((o) => o.content.data?.['image/png'] !== undefined);
    check(pngs.every((o) => pngOk(o.content.data['image/png'])), `${name}: a PNG output does not decode`);
    log(`  cell ${i + 1}/${cells.length} ok in ${((Date.now() - started) / 1000).toFixed(1)} s: ${w.outputs.length} outputs (${got.figures} figures, ${got.tables} tables, ${got.photos} photo rows)`);
  }
  check(firstOutput?.type === 'stream' && firstOutput.content.name === 'stdout' && /tfjs backend/.test(firstOutput.content.text), `${file}: the first output is not the backend banner on stdout (${JSON.stringify(firstOutput)?.slice(0, 300)})`);
  ch.close();
  await api(`/api/sessions/${session.id}`, { method: 'DELETE' });
}

stopping = true;
server.kill('SIGTERM');
await new Promise((r) => (server.exitCode !== null ? r() : server.on('exit', r)));
for (const [f, d] of before) check(existsSync(join(NB_DIR, f)) && digest(f) === d, `notebooks/${f} changed during the run`);
if (problems.length) {
  console.error(`notebooks:browser: ${problems.length} problem(s):\n- ${problems.join('\n- ')}`);
  process.exit(1);
}
log(`notebooks:browser: ${notebooks.length} notebook(s) render untrusted with every figure and table${values.kernel ? `; ${values['kernel-notebook']} ran through the server's kernel` : ''} (${seconds()} s)`);
