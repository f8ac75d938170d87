/**
 * What a notebook needs beside the library verbs: where it works (`notebookContext`: quick or full mode,
 * workspace, figures folder), how it shows things inline in tslab (`show`, `showTable`, `showPhotos`) and
 * progress as a compact line per stage (`notebookProgress`). Notebooks hold no algorithm: they call the
 * verbs, these helpers display the results.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { setBackendLog } from '../backend';
import { ConfigError } from '../errors';
import type { RenderedFigure } from '../figures/render';
import type { Table } from '../figures/tables';
import { type ProgressSink, formatInfo } from '../util/progress';
import { formatDuration } from '../util/progress-lines';

/** The display functions of tslab (the kernel's `tslab.display`); any object with these methods works. */
export interface Display {
  html(s: string): void;
  markdown(s: string): void;
  svg(s: string): void;
  text(s: string): void;
}

interface Tslab {
  readonly display: Display;
  newDisplay(): Display;
}

/** tslab's displays when running in its kernel; elsewhere (scripts, tests) plain text on stdout. */
function tslab(): Tslab {
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return require('tslab') as Tslab;
  } catch {
    const out: Display = {
      html: (s) => console.log(s),
      markdown: (s) => console.log(s),
      svg: () => console.log('[svg figure]'),
      text: (s) => console.log(s),
    };
    return { display: out, newDisplay: () => out };
  }
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
 * `<project>/.ptmst-cache/notebooks-quick` so it never touches committed figures or cached runs. It also sends the
 * backend's banner (`ready()`) to stdout.
 */
export function notebookContext(env: NodeJS.ProcessEnv = process.env): NotebookContext {
  // every notebook calls this before `ready()`: its backend banner goes to stdout, not a red stderr box
  setBackendLog((line) => console.log(line));
  const mode = env.PTMST_NOTEBOOK_MODE ?? 'full';
  if (mode !== 'quick' && mode !== 'full') throw new ConfigError(`PTMST_NOTEBOOK_MODE: "${mode}" is neither quick nor full`);
  const project = env.PTMST_WORKSPACE ? resolve(env.PTMST_WORKSPACE) : projectRoot();
  const workspace = mode === 'quick' ? join(project, '.ptmst-cache', 'notebooks-quick') : project;
  return { mode, quick: mode === 'quick', workspace, figures: join(workspace, 'figures') };
}

const escapeHtml = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

/** A figure inline (SVG) with its caption and the files it was saved to. */
export function show(figure: RenderedFigure & { readonly files?: { readonly png: string } }, display: Display = tslab().display): void {
  display.svg(figure.svg);
  const saved = figure.files ? ` (saved: \`figures/${figure.name}.svg\`, \`.png\`, \`.vl.json\`)` : '';
  display.markdown(`**Figure ${figure.name}.** ${figure.caption}${saved}`);
}

/** A table inline: an arquero table or Markdown text. */
export function showTable(table: Table | string, display: Display = tslab().display): void {
  display.markdown(typeof table === 'string' ? table : table.toMarkdown());
}

/**
 * Photos (JPEG or PNG) as a row of thumbnails with a caption under each (HTML with the bytes inline, so the output
 * needs no file beside the notebook). Only for data you may publish: committed notebook outputs carry them.
 */
export function showPhotos(photos: readonly { readonly file: string; readonly caption: string }[], width = 96, display: Display = tslab().display): void {
  const cells = photos.map((p) => {
    const b64 = readFileSync(p.file).toString('base64');
    const type = /\.png$/i.test(p.file) ? 'png' : 'jpeg';
    return `<figure style="display:inline-block;margin:4px;width:${width + 40}px;vertical-align:top"><img src="data:image/${type};base64,${b64}" width="${width}"/><figcaption style="font-size:11px">${escapeHtml(p.caption)}</figcaption></figure>`;
  });
  display.html(`<div>${cells.join('')}</div>`);
}

/**
 * Progress as one compact block that updates in place (tslab's `newDisplay`): one line per stage, the
 * current count, rate and ETA while it runs, its duration when done. Updates at most once a second.
 */
export function notebookProgress(options: { readonly display?: Display; readonly now?: () => number } = {}): ProgressSink & { flush(): void } {
  const display = options.display ?? tslab().newDisplay();
  const now = options.now ?? (() => performance.now());
  const stages = new Map<string, { start: number; startDone: number; line: string }>();
  let shown = -Infinity;
  const render = () => {
    shown = now();
    display.text([...stages.values()].map((s) => s.line).join('\n'));
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
