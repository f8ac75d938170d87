/**
 * The MIME bundles a notebook output carries: each rich form with a safe fallback, so a committed notebook
 * shows its figures and tables in any viewer, trusted or not. Jupyter Notebook hides `text/markdown` and
 * `image/svg+xml` in an untrusted notebook (every freshly cloned one) but shows `image/png`, `text/plain`
 * and sanitised `text/html`; JupyterLab, VS Code and static viewers pick the richest form they render.
 * The same functions fill in the fallbacks of outputs committed before they existed
 * (`scripts/notebook-fallbacks.mjs`), so a converted output equals a freshly executed one.
 */
import { PNG_SCALE, svgToPng } from '../figures/render';
import { markdownToHtml, markdownToText } from './markdown';

/** One output's `data` (MIME type → content; binary types base64) and `metadata` (per MIME type). */
export interface MimeBundle {
  readonly data: Readonly<Record<string, string>>;
  readonly metadata: Readonly<Record<string, unknown>>;
}

/** Markdown (a table, a caption) with its HTML and plain-text fallbacks. */
export function markdownBundle(md: string): MimeBundle {
  return { data: { 'text/markdown': md, 'text/html': markdownToHtml(md), 'text/plain': markdownToText(md) }, metadata: {} };
}

/** What a figure output needs: its name, its SVG and the PNG rendered from it (`RenderedFigure` has these). */
export interface FigureImages {
  readonly name: string;
  readonly svg: string;
  readonly png: Uint8Array;
  /** the PNG's size in pixels: the SVG's size times `PNG_SCALE` */
  readonly width: number;
  readonly height: number;
}

/** Rasterise an SVG figure as `saveFigure` does for figures/*.png (resvg at `PNG_SCALE`). */
export async function figureImages(name: string, svg: string): Promise<FigureImages> {
  return { name, svg, ...(await svgToPng(svg, PNG_SCALE)) };
}

/** A figure: the SVG, its PNG (shown at the SVG's size, sharp on dense screens) and a line of text naming it. */
export function figureBundle(f: FigureImages): MimeBundle {
  const width = Math.round(f.width / PNG_SCALE);
  const height = Math.round(f.height / PNG_SCALE);
  return {
    data: { 'image/svg+xml': f.svg, 'image/png': Buffer.from(f.png).toString('base64'), 'text/plain': `[figure ${f.name}, ${width}×${height}]` },
    metadata: { 'image/png': { width, height } },
  };
}
