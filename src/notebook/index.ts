/**
 * What a notebook needs beside the library verbs: where it works (`notebookContext`: quick or full mode,
 * workspace, figures folder), how it shows things inline in tslab (`show`, `showTable`, `showPhotos`) and
 * progress as a compact line per stage (`notebookProgress`). Notebooks hold no algorithm: they call the
 * verbs, these helpers display the results.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { ready, setBackendLog } from '../backend';
import { ConfigError } from '../errors';
import type { RenderedFigure } from '../figures/render';
import type { Table } from '../figures/tables';
import { type ProgressSink, formatInfo } from '../util/progress';
import { formatDuration } from '../util/progress-lines';
import { type MimeBundle, figureBundle, markdownBundle } from './bundles';
import { escapeHtml } from './markdown';

/** Where a helper's outputs go: one call per output, a MIME bundle (rich forms with their fallbacks). */
export interface Display {
  output(bundle: MimeBundle): void;
}

/** tslab's `writeDisplayData` while its kernel executes a cell (tslab 1.0.22, `dist/jupyter.js`). */
type WriteDisplayData = (msg: { data: Record<string, string>; metadata: Record<string, unknown>; transient: { display_id?: string } }, update: boolean) => void;

/**
 * The kernel's display channel, when this process is a tslab kernel: the module tslab itself loaded. tslab's
 * public `display` sends one MIME type per output; a bundle (SVG and PNG, Markdown and HTML and text) goes
 * through the function it calls underneath. Looked up among loaded modules, so scripts and tests load nothing.
 */
function kernelWriter(): (() => WriteDisplayData | null) | undefined {
  for (const [file, mod] of Object.entries(require.cache)) {
    if (/[\/]tslab[\/]dist[\/]jupyter\.js$/.test(file) && mod?.exports && 'lastWriteDisplayData' in mod.exports) {
      const jupyter = mod.exports as { lastWriteDisplayData: WriteDisplayData | null };
      return () => jupyter.lastWriteDisplayData;
    }
  }
  return undefined;
}

/**
 * A display: in a tslab kernel each output goes to the cell (with `id`, every output replaces the previous
 * one in place: tslab's `newDisplay`); elsewhere (scripts, tests) its `text/plain` form goes to stdout.
 */
export function notebookDisplay(id?: string): Display {
  let updated = false;
  return {
    output(bundle) {
      const write = kernelWriter()?.();
      if (!write) {
        console.log(bundle.data['text/plain'] ?? Object.keys(bundle.data).map((k) => `[${k}]`).join(' '));
        return;
      }
      write({ data: { ...bundle.data }, metadata: { ...bundle.metadata }, transient: id === undefined ? {} : { display_id: id } }, updated);
      if (id !== undefined) updated = true;
    },
  };
}

export type NotebookMode = 'quick' | 'full';

export interface NotebookContext {
  /** `quick`: the same code paths on small counts, in a scratch workspace; `full`: the committed results */
  readonly mode: NotebookMode;
  readonly quick: boolean;
  /** where stages read and write (features, buffers, runs, figures): the project in full mode */
  readonly workspace: string;
  /** where figures go: `<workspace>/figures` */
  readonly figures: string;
}

/** The nearest folder at or above `from` holding a package.json (the project a notebook belongs to). */
export function projectRoot(from = process.cwd()): string {
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    if (dirname(dir) === dir) throw new ConfigError(`no package.json at or above ${from}: set PTMST_WORKSPACE`);
  }
}

/**
 * The notebook's mode and folders. Mode: `PTMST_NOTEBOOK_MODE` (`quick` or `full`, default `full`; set by
 * `npm run notebooks`). Workspace: `PTMST_WORKSPACE`, else the project; quick mode works in
 * `<project>/.ptmst-cache/notebooks-quick` so it never touches committed figures or cached runs.
 *
 * It also starts the tfjs backend with its one-line banner on stdout: Jupyter shows a cell's stderr as a red
 * box, and the first `ready()` call decides where the banner goes, so the notebook's own `await ready()`
 * gets the same backend without a stderr line.
 */
export function notebookContext(env: NodeJS.ProcessEnv = process.env): NotebookContext {
  // every notebook calls this before its own `ready()`: the backend banner goes to stdout, not a red stderr box
  setBackendLog((line) => console.log(line));
  const mode = env.PTMST_NOTEBOOK_MODE ?? 'full';
  if (mode !== 'quick' && mode !== 'full') throw new ConfigError(`PTMST_NOTEBOOK_MODE: "${mode}" is neither quick nor full`);
  const project = env.PTMST_WORKSPACE ? resolve(env.PTMST_WORKSPACE) : projectRoot();
  const workspace = mode === 'quick' ? join(project, '.ptmst-cache', 'notebooks-quick') : project;
  ready().catch(() => undefined); // a failure reaches the notebook's own `await ready()`
  return { mode, quick: mode === 'quick', workspace, figures: join(workspace, 'figures') };
}

/**
 * A figure inline with its caption and the files it was saved to: the SVG with its PNG (the one untrusted
 * Jupyter shows), then the caption as Markdown with HTML and text.
 */
export function show(figure: RenderedFigure & { readonly files?: { readonly png: string } }, display: Display = notebookDisplay()): void {
  display.output(figureBundle(figure));
  const saved = figure.files ? ` (saved: \`figures/${figure.name}.svg\`, \`.png\`, \`.vl.json\`)` : '';
  display.output(markdownBundle(`**Figure ${figure.name}.** ${figure.caption}${saved}`));
}

/** A table inline: an arquero table or Markdown text, with HTML and aligned plain text beside the Markdown. */
export function showTable(table: Table | string, display: Display = notebookDisplay()): void {
  display.output(markdownBundle(typeof table === 'string' ? table : table.toMarkdown()));
}

/**
 * Photos (JPEG or PNG) as a row of thumbnails with a caption under each (HTML with the bytes inline, so the output
 * needs no file beside the notebook). Only for data you may publish: committed notebook outputs carry them.
 */
export function showPhotos(photos: readonly { readonly file: string; readonly caption: string }[], width = 96, display: Display = notebookDisplay()): void {
  const cells = photos.map((p) => {
    const b64 = readFileSync(p.file).toString('base64');
    const type = /\.png$/i.test(p.file) ? 'png' : 'jpeg';
    return `<div style="display:inline-block;margin:4px;width:${width + 40}px;vertical-align:top"><img src="data:image/${type};base64,${b64}" width="${width}" alt="${escapeHtml(p.caption)}"/><div style="font-size:11px">${escapeHtml(p.caption)}</div></div>`;
  });
  const text = `[${photos.length} photo${photos.length === 1 ? '' : 's'}: ${photos.map((p) => `${basename(p.file)} (${p.caption})`).join(', ')}]`;
  display.output({ data: { 'text/html': `<div>${cells.join('')}</div>`, 'text/plain': text }, metadata: {} });
}

/**
 * Progress as one compact block that updates in place (tslab's `newDisplay`): one line per stage, the
 * current count, rate and ETA while it runs, its duration when done. Updates at most once a second.
 */
export function notebookProgress(options: { readonly display?: Display; readonly now?: () => number } = {}): ProgressSink & { flush(): void } {
  const display = options.display ?? notebookDisplay(randomBytes(8).toString('hex'));
  const now = options.now ?? (() => performance.now());
  const stages = new Map<string, { start: number; startDone: number; line: string }>();
  let shown = -Infinity;
  const render = () => {
    shown = now();
    display.output({ data: { 'text/plain': [...stages.values()].map((s) => s.line).join('\n') }, metadata: {} });
  };
  const sink = (e: Parameters<ProgressSink>[0]) => {
    const t = now();
    let s = stages.get(e.label);
    if (!s || e.done < s.startDone) {
      s = { start: t, startDone: e.done, line: '' };
      stages.delete(e.label); // a restarted stage moves to the end
      stages.set(e.label, s);
    }
    const info = e.info ? ` ${formatInfo(e.info)}` : '';
    const elapsed = (t - s.start) / 1000;
    if (e.done >= e.total) {
      s.line = `✓ ${e.label} ${e.done}/${e.total} in ${formatDuration(elapsed)}${info}`;
      render();
      return;
    }
    const rate = elapsed > 0 ? (e.done - s.startDone) / elapsed : 0;
    const eta = rate > 0 ? `, eta ${formatDuration((e.total - e.done) / rate)}` : '';
    s.line = `… ${e.label} ${e.done}/${e.total}${eta}${info}`;
    if (t - shown >= 1000) render();
  };
  return Object.assign(sink, { flush: render });
}
