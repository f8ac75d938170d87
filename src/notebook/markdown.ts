/**
 * The Markdown the notebook helpers emit, as HTML and as plain text: the safe fallbacks of a `text/markdown`
 * output. An untrusted notebook (every freshly cloned one) shows no `text/markdown` in Jupyter Notebook, but
 * it shows `text/html` (sanitised) and `text/plain`. Only the subset the helpers write is understood: `#`
 * headings, `- ` bullets, pipe tables with an alignment row, paragraphs, and inline `**bold**`, `*italic*`
 * and `` `code` ``; anything else passes through as text (escaped in HTML).
 */

type Block =
  | { readonly kind: 'heading'; readonly level: number; readonly text: string }
  | { readonly kind: 'list'; readonly items: readonly string[] }
  | { readonly kind: 'table'; readonly head: readonly string[]; readonly align: readonly Align[]; readonly rows: readonly (readonly string[])[] }
  | { readonly kind: 'paragraph'; readonly lines: readonly string[] };

type Align = 'left' | 'right' | 'center' | undefined;

const ALIGN_ROW = /^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?\s*$/;

/** The cells of a pipe-table row (`\|` is a literal bar inside a cell, as arquero writes it). */
function cells(line: string): string[] {
  let s = line.trim();
  if (s.startsWith('|')) s = s.slice(1);
  if (s.endsWith('|') && !s.endsWith('\\|')) s = s.slice(0, -1);
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] === '\\' && s[i + 1] === '|') {
      cur += '|';
      i++;
    } else if (s[i] === '|') {
      out.push(cur.trim());
      cur = '';
    } else cur += s[i];
  }
  out.push(cur.trim());
  return out;
}

function alignOf(spec: string): Align {
  const s = spec.trim();
  const l = s.startsWith(':');
  const r = s.endsWith(':');
  return l && r ? 'center' : r ? 'right' : l ? 'left' : undefined;
}

function blocks(md: string): Block[] {
  const lines = md.replace(/\r\n?/g, '\n').split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; ) {
    const line = lines[i]!;
    if (line.trim() === '') {
      i++;
      continue;
    }
    const heading = /^(#{1,6})\s+(.*)$/.exec(line);
    if (heading) {
      out.push({ kind: 'heading', level: heading[1]!.length, text: heading[2]!.trim() });
      i++;
      continue;
    }
    if (line.trimStart().startsWith('|') && i + 1 < lines.length && ALIGN_ROW.test(lines[i + 1]!)) {
      const head = cells(line);
      const align = cells(lines[i + 1]!).map(alignOf);
      const rows: string[][] = [];
      for (i += 2; i < lines.length && lines[i]!.trimStart().startsWith('|'); i++) rows.push(cells(lines[i]!));
      out.push({ kind: 'table', head, align, rows });
      continue;
    }
    if (/^\s*[-*]\s+/.test(line)) {
      const items: string[] = [];
      for (; i < lines.length && lines[i]!.trim() !== ''; i++) {
        const item = /^\s*[-*]\s+(.*)$/.exec(lines[i]!);
        if (item) items.push(item[1]!);
        else if (items.length) items[items.length - 1] += ` ${lines[i]!.trim()}`; // a continuation line
      }
      out.push({ kind: 'list', items });
      continue;
    }
    const para: string[] = [];
    for (; i < lines.length && lines[i]!.trim() !== '' && !/^#{1,6}\s/.test(lines[i]!) && !/^\s*[-*]\s+/.test(lines[i]!) && !lines[i]!.trimStart().startsWith('|'); i++) {
      para.push(lines[i]!.trim());
    }
    if (para.length === 0) {
      // a lone table-like line without an alignment row: plain text
      para.push(line.trim());
      i++;
    }
    out.push({ kind: 'paragraph', lines: para });
  }
  return out;
}

export const escapeHtml = (s: string): string => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);

const BOLD = /\*\*(.+?)\*\*/g;
const ITALIC = /(^|[^*\w])\*(?!\s)(.+?)(?<!\s)\*(?!\w)/g;

/**
 * Inline Markdown: code spans stay literal (set aside as placeholders, so emphasis may span them), then bold,
 * then italic. `text` escapes the plain parts, `code` renders a code span, `bold`/`italic` wrap emphasis.
 */
function inline(s: string, r: { text: (s: string) => string; code: (s: string) => string; bold: string; italic: string }): string {
  const codes: string[] = [];
  const held = s.replace(/`([^`]+)`/g, (_, c: string) => `\u0000${codes.push(c) - 1}\u0000`);
  return r
    .text(held)
    .replace(BOLD, r.bold)
    .replace(ITALIC, r.italic)
    .replace(/\u0000(\d+)\u0000/g, (_, i: string) => r.code(codes[Number(i)]!));
}

const inlineHtml = (s: string) => inline(s, { text: escapeHtml, code: (c) => `<code>${escapeHtml(c)}</code>`, bold: '<strong>$1</strong>', italic: '$1<em>$2</em>' });
const inlineText = (s: string) => inline(s, { text: (t) => t, code: (c) => c, bold: '$1', italic: '$1$2' });

/** HTML for the Markdown subset above (no scripts, no raw HTML passes: everything is escaped). */
export function markdownToHtml(md: string): string {
  return blocks(md)
    .map((b) => {
      if (b.kind === 'heading') return `<h${b.level}>${inlineHtml(b.text)}</h${b.level}>`;
      if (b.kind === 'list') return `<ul>${b.items.map((it) => `<li>${inlineHtml(it)}</li>`).join('')}</ul>`;
      if (b.kind === 'paragraph') return `<p>${inlineHtml(b.lines.join(' '))}</p>`;
      const style = (i: number) => (b.align[i] ? ` style="text-align: ${b.align[i]}"` : '');
      const head = `<thead><tr>${b.head.map((h, i) => `<th${style(i)}>${inlineHtml(h)}</th>`).join('')}</tr></thead>`;
      const body = `<tbody>${b.rows.map((r) => `<tr>${r.map((c, i) => `<td${style(i)}>${inlineHtml(c)}</td>`).join('')}</tr>`).join('')}</tbody>`;
      return `<table>${head}${body}</table>`;
    })
    .join('\n');
}

/** Display width of a string in a monospaced font (one column per code point). */
const width = (s: string) => [...s].length;

function pad(s: string, w: number, align: Align): string {
  const gap = w - width(s);
  if (align === 'right') return ' '.repeat(gap) + s;
  if (align === 'center') return ' '.repeat(Math.floor(gap / 2)) + s + ' '.repeat(gap - Math.floor(gap / 2));
  return s + ' '.repeat(gap);
}

/** Plain text for the Markdown subset above: tables with aligned columns, bullets as "- ", no inline markers. */
export function markdownToText(md: string): string {
  return blocks(md)
    .map((b) => {
      if (b.kind === 'heading') return inlineText(b.text);
      if (b.kind === 'list') return b.items.map((it) => `- ${inlineText(it)}`).join('\n');
      if (b.kind === 'paragraph') return inlineText(b.lines.join(' '));
      const rows = [b.head, ...b.rows].map((r) => r.map(inlineText));
      const n = Math.max(...rows.map((r) => r.length));
      const widths = Array.from({ length: n }, (_, i) => Math.max(...rows.map((r) => width(r[i] ?? ''))));
      const line = (r: readonly string[]) => r.map((c, i) => pad(c, widths[i]!, b.align[i])).join('  ').trimEnd();
      return [line(rows[0]!), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.slice(1).map(line)].join('\n');
    })
    .join('\n\n');
}
