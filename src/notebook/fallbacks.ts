/**
 * The safe fallbacks for outputs committed before the helpers wrote them: a PNG beside each `image/svg+xml`
 * output and HTML and text beside each `text/markdown` output, made by the functions a fresh run uses
 * (`figureBundle`, `markdownBundle`), so a converted notebook equals a re-executed one. One more change a fresh
 * run makes: the backend's one-line banner, which older runs wrote to stderr (a red box in Jupyter), is on stdout
 * (`notebookContext`). Nothing else in the file changes. The file is written as nbformat writes it (keys sorted, one-space indent, text split into
 * lines), so an unchanged notebook comes out byte for byte as it went in.
 */
import { isDeepStrictEqual } from 'node:util';
import { figureBundle, figureImages, markdownBundle } from './bundles';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
interface Output {
  output_type: string;
  data?: Record<string, string | string[]>;
  metadata?: Record<string, Json>;
  [key: string]: Json | undefined;
}
interface Notebook {
  cells: { cell_type: string; outputs?: Output[]; [key: string]: unknown }[];
  [key: string]: unknown;
}

/** What one conversion added, by MIME type (`image/png`, `text/html`, `text/plain`), and banners moved to stdout. */
export type FallbackCounts = Readonly<Record<string, number>>;

const joined = (v: string | string[]) => (Array.isArray(v) ? v.join('') : v);
/** The backend's banner (src/backend `ready`) as the one line of a stream output. */
const BANNER = /^\[ptmst\] tfjs backend: [^\n]*\n?$/;
export const MOVED_BANNER = 'stdout (backend banner)';

/** Python's `str.splitlines(True)`: the line breaks it knows, each kept at the end of its line. */
export function splitLines(s: string): string[] {
  const out: string[] = [];
  const re = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/g;
  let start = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    out.push(s.slice(start, m.index + m[0].length));
    start = m.index + m[0].length;
  }
  if (start < s.length) out.push(s.slice(start));
  return out;
}

/** nbformat stores these as lists of lines (`_split_mimebundle`); the rest (base64 images, JSON) as they are. */
const splitMime = (mime: string) => mime.startsWith('text/') || mime === 'application/javascript' || mime === 'image/svg+xml';

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** A notebook as nbformat 4 writes it: `json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False)` and a newline. */
export const formatNotebook = (nb: unknown): string => `${JSON.stringify(sortKeys(nb), null, 1)}\n`;

/** The name a figure output's caption gives it (the next output: "**Figure NAME.** …"). */
function captionName(next: Output | undefined): string | undefined {
  const md = next?.data?.['text/markdown'];
  return md === undefined ? undefined : /^\*\*Figure ([^*\s]+)\.\*\*/.exec(joined(md))?.[1];
}

/**
 * Add the missing fallbacks to every output of `text` (a notebook file's contents). Returns the new text and what
 * was added; an output that has its fallbacks already is left alone, so a second run adds nothing.
 */
export async function addFallbacks(text: string): Promise<{ readonly text: string; readonly added: FallbackCounts }> {
  const nb = JSON.parse(text) as Notebook;
  const before = JSON.parse(text) as unknown;
  const added: Record<string, number> = {};
  const put = (o: Output, mime: string, value: string) => {
    o.data![mime] = splitMime(mime) ? splitLines(value) : value;
    added[mime] = (added[mime] ?? 0) + 1;
  };
  for (const cell of nb.cells) {
    const outputs = cell.outputs ?? [];
    for (const [i, o] of outputs.entries()) {
      if (o.output_type === 'stream' && o.name === 'stderr' && typeof o.text !== 'undefined' && BANNER.test(joined(o.text as string | string[]))) {
        o.name = 'stdout';
        added[MOVED_BANNER] = (added[MOVED_BANNER] ?? 0) + 1;
      }
      if ((o.output_type !== 'display_data' && o.output_type !== 'execute_result') || !o.data) continue;
      const svg = o.data['image/svg+xml'];
      if (svg !== undefined && o.data['image/png'] === undefined) {
        const bundle = figureBundle(await figureImages(captionName(outputs[i + 1]) ?? 'figure', joined(svg)));
        put(o, 'image/png', bundle.data['image/png']!);
        if (o.data['text/plain'] === undefined) put(o, 'text/plain', bundle.data['text/plain']!);
        o.metadata = { ...(o.metadata ?? {}), ...(bundle.metadata as Record<string, Json>) };
      }
      const md = o.data['text/markdown'];
      if (md !== undefined) {
        const bundle = markdownBundle(joined(md));
        for (const mime of ['text/html', 'text/plain'] as const) if (o.data[mime] === undefined) put(o, mime, bundle.data[mime]!);
      }
    }
  }
  // nothing but the added fallbacks differs: take them out again and compare with the file as read
  const check = JSON.parse(JSON.stringify(nb)) as Notebook;
  const orig = before as Notebook;
  check.cells.forEach((cell, ci) =>
    (cell.outputs ?? []).forEach((o, oi) => {
      const was = orig.cells[ci]!.outputs![oi]!;
      if (o.output_type === 'stream' && was.name === 'stderr' && o.name === 'stdout') o.name = 'stderr';
      for (const mime of Object.keys(o.data ?? {})) if (!(mime in (was.data ?? {}))) delete o.data![mime];
      if (o.metadata && was.metadata) for (const k of Object.keys(o.metadata)) if (!(k in was.metadata)) delete o.metadata[k];
    }),
  );
  if (!isDeepStrictEqual(check, before)) throw new Error('addFallbacks: the notebook changed beyond the added fallbacks (a bug)');
  return { text: Object.keys(added).length === 0 ? text : formatNotebook(nb), added };
}
