/**
 * Figures: a vega-lite spec (data inline) plus a caption, rendered in Node to SVG (vega's headless view,
 * `renderer: 'none'`) and PNG (resvg). `saveFigure` writes `figures/<name>.svg`, `.png` and `.vl.json`, so
 * a figure can be regenerated, restyled or re-plotted from the file alone.
 */
import { join } from 'node:path';
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import { ConfigError } from '../errors';
import { parseConfig } from '../config/parse';
import { SafeName } from '../config/schemas';
import { writeAtomic } from '../store/atomic';

/** A figure before rendering: what it shows (spec with its data) and what produced it (caption). */
/**
 * A vega-lite spec as JSON (the public type stays plain so declaration files do not depend on vega-lite's;
 * the chart builders in charts.ts are typed against vega-lite's `TopLevelSpec`).
 */
export type VegaLiteSpec = Readonly<Record<string, unknown>>;

export interface FigureSpec {
  /** file stem under figures/ */
  readonly name: string;
  /** data, encoders, budget, seeds and selection rule, in one paragraph */
  readonly caption: string;
  readonly spec: VegaLiteSpec;
}

export interface RenderedFigure extends FigureSpec {
  readonly svg: string;
  readonly png: Uint8Array;
  /** PNG size in pixels (the SVG's size times `scale`) */
  readonly width: number;
  readonly height: number;
}

export interface SavedFigure extends RenderedFigure {
  readonly files: { readonly svg: string; readonly png: string; readonly spec: string };
}

/** PNG pixels per SVG unit: 2 keeps text sharp on high-density screens and in papers. */
export const PNG_SCALE = 2;

// vega and vega-lite are ES modules with top-level await: they load with import(), once
type Vega = typeof import('vega', { with: { 'resolution-mode': 'import' } });
type VegaLite = typeof import('vega-lite', { with: { 'resolution-mode': 'import' } });
let modules: Promise<[Vega, VegaLite]> | undefined;
const loadVega = () => (modules ??= Promise.all([import('vega'), import('vega-lite')]));

/** SVG markup of a vega-lite spec (rendered headless; no browser, no canvas). */
export async function renderSvg(spec: VegaLiteSpec): Promise<string> {
  const [vega, vl] = await loadVega();
  // errors only: the compiler's notes ("Maximum optimization runs reached") would land in notebook outputs
  const compiled = vl.compile(spec as unknown as TopLevelSpec, { logger: vega.logger(vega.Error) }).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', logLevel: vega.Error });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterise SVG markup with resvg at `scale` pixels per unit, using the system's fonts. */
export async function svgToPng(svg: string, scale = PNG_SCALE): Promise<{ png: Uint8Array; width: number; height: number }> {
  const { Resvg } = await import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  const image = r.render();
  return { png: new Uint8Array(image.asPng()), width: image.width, height: image.height };
}

/** The spec as saved: the caption travels with it (vega-lite's `description`). */
export const specWithCaption = (f: FigureSpec): VegaLiteSpec => ({ ...f.spec, description: f.caption });

export async function renderFigure(f: FigureSpec): Promise<RenderedFigure> {
  parseConfig(SafeName, f.name, 'figure name');
  let svg: string;
  try {
    svg = await renderSvg(f.spec);
  } catch (e) {
    throw new ConfigError(`figure ${f.name}: the vega-lite spec does not render: ${(e as Error).message}`);
  }
  return { ...f, svg, ...(await svgToPng(svg)) };
}

/** Render and write `<dir>/<name>.svg`, `.png` and `.vl.json` (each atomically). */
export async function saveFigure(f: FigureSpec | RenderedFigure, dir: string): Promise<SavedFigure> {
  const r = 'svg' in f ? f : await renderFigure(f);
  const files = { svg: join(dir, `${r.name}.svg`), png: join(dir, `${r.name}.png`), spec: join(dir, `${r.name}.vl.json`) };
  await writeAtomic(files.spec, `${JSON.stringify(specWithCaption(r), null, 2)}\n`);
  await writeAtomic(files.svg, r.svg);
  await writeAtomic(files.png, r.png);
  return { ...r, files };
}
