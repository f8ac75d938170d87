/**
 * Numbers in the documentation come from the results files, never from a keyboard.
 *
 * A Markdown document (README.md, docs/*.md) holds generated blocks between two HTML comments, which Markdown
 * viewers hide:
 *
 *     <!-- ptmst:budget flickr8k-main families=full,random,ptm-st -->
 *     …the table, rewritten by `npm run docs`…
 *     <!-- /ptmst -->
 *
 * `renderBlocks` rewrites every block from the committed `figures/<name>.json` files; `npm run docs -- --check`
 * (and test/docs/numbers.test.ts) fails when a block is not what its results file says, so a number that was
 * typed by hand or went stale cannot land. Directives (arguments are `key=value`, lists comma-separated):
 *
 * - `budget FILE [families=a,b] [rules=final,val]`: the paper's layout, one row per method family, one column per
 *   budget, each cell test r_mean "mean ± std" under each rule (joined by " / "), runs in brackets.
 * - `rows FILE [methods=a,b] [rules=final,val] [label=text]`: one row per method, one column per rule, two decimals.
 * - `grid FILES [families=a,b] [budget=N] [rules=final,val]`: one column per results file (`FILES` is a comma list),
 *   one row per family at one budget; for a training-set size study.
 * - `orderings FILE`: the paper's comparative claims checked (`orderingTable(paperOrderings(...))`).
 * - `gains FILE`: each row's gain over the random coreset of its size under its protocol (`gainTable`).
 * - `cell FILE METHOD RULE [metric=rMean] [digits=2]`: one "mean ± std", inline.
 * - `about FILE`: the file's description and setting lines, as bullets.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { writeAtomic } from '../store/atomic';
import { SELECTION_LABELS, SELECTIONS, METRIC_KEYS, type MeanStd, type Selection } from '../evaluate/summary';
import { familyLabel, methodBudget, methodFamily } from './charts';
import { gainTable, orderingTable, paperOrderings } from './tables';

type MetricKey = (typeof METRIC_KEYS)[number];

/** What a block needs of a results file: its name, setting lines and rows (any format version). */
export interface DocResults {
  readonly name: string;
  readonly provenance: readonly string[] | unknown;
  readonly methods: readonly {
    readonly name: string;
    readonly kind: string;
    readonly pairs: number;
    readonly runs: number;
    readonly selections: Readonly<Record<Selection, Readonly<Record<MetricKey, MeanStd>>>>;
  }[];
}

/** One generated block found in a document. */
export interface Block {
  /** the directive after `ptmst:`, e.g. `budget flickr8k-main families=full,random` */
  readonly directive: string;
  /** the text between the opening and the closing comment */
  readonly body: string;
  /** its line in the document (1-based), for messages */
  readonly line: number;
}

const BLOCK = /<!-- ptmst:([^>]*?) -->([\s\S]*?)<!-- \/ptmst -->/g;

export function findBlocks(doc: string): Block[] {
  return [...doc.matchAll(BLOCK)].map((m) => ({ directive: m[1]!.trim(), body: m[2]!, line: doc.slice(0, m.index).split('\n').length }));
}

export class DocBlockError extends Error {
  constructor(where: string, message: string) {
    super(`${where}: ${message}`);
    this.name = 'DocBlockError';
  }
}

export const meanStdText = (m: MeanStd, digits: number) => `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}`;

const RULE_NAMES: Readonly<Record<Selection, string>> = { final: 'final epoch', val: 'best on validation', test: 'best on test (test split)' };

interface Parsed {
  readonly kind: string;
  readonly positional: readonly string[];
  readonly options: ReadonlyMap<string, string>;
}

function parseDirective(directive: string): Parsed {
  const [kind = '', ...rest] = directive.split(/\s+/).filter(Boolean);
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (const word of rest) {
    const eq = word.indexOf('=');
    if (eq > 0) options.set(word.slice(0, eq), word.slice(eq + 1));
    else positional.push(word);
  }
  return { kind, positional, options };
}

const list = (v: string | undefined) => (v === undefined || v === '' ? undefined : v.split(','));

function rulesOf(p: Parsed, where: string): Selection[] {
  const rules = (list(p.options.get('rules')) ?? ['final', 'val']) as Selection[];
  for (const r of rules) if (!(SELECTIONS as readonly string[]).includes(r)) throw new DocBlockError(where, `unknown rule "${r}"; valid: ${SELECTIONS.join(', ')}`);
  return rules;
}

const tableText = (head: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map((_, i) => ((align?.[i] ?? 'l') === 'r' ? '---:' : '---')).join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n');

const budgetOf = (m: { readonly name: string; readonly pairs: number }) => (m.pairs < 0 ? 'all' : String(methodBudget(m)));

/** The text one directive stands for. `load` returns a results file by name (figures/<name>.json). */
export function renderDirective(directive: string, load: (name: string) => DocResults, where = directive): string {
  const p = parseDirective(directive);
  const file = (i: number) => {
    const name = p.positional[i];
    if (name === undefined) throw new DocBlockError(where, `"${p.kind}" needs a results file name`);
    return load(name);
  };
  const methodOf = (r: DocResults, name: string) => {
    const m = r.methods.find((x) => x.name === name);
    if (!m) throw new DocBlockError(where, `figures/${r.name}.json has no row "${name}"; rows: ${r.methods.map((x) => x.name).join(', ')}`);
    return m;
  };
  switch (p.kind) {
    case 'budget': {
      const r = file(0);
      const rules = rulesOf(p, where);
      const wanted = list(p.options.get('families'));
      const families = wanted ?? [...new Set(r.methods.map((m) => methodFamily(m.name)))];
      const budgets = [...new Set(r.methods.filter((m) => families.includes(methodFamily(m.name))).map(budgetOf))].sort((a, b) =>
        a === 'all' ? 1 : b === 'all' ? -1 : Number(a) - Number(b),
      );
      const rows = families.map((family) => {
        const ms = r.methods.filter((m) => methodFamily(m.name) === family);
        if (ms.length === 0) throw new DocBlockError(where, `figures/${r.name}.json has no row of family "${family}"`);
        return [
          familyLabel(family),
          ...budgets.map((b) => {
            const m = ms.find((x) => budgetOf(x) === b);
            return m ? `${rules.map((s) => meanStdText(m.selections[s].rMean, 1)).join(' / ')} (${m.runs})` : '';
          }),
        ];
      });
      const head = ['method', ...budgets.map((b) => (b === 'all' ? 'all pairs' : `${b} pairs`))];
      return tableText(head, rows);
    }
    case 'rows': {
      const r = file(0);
      const rules = rulesOf(p, where);
      const names = list(p.options.get('methods')) ?? r.methods.map((m) => m.name);
      const rows = names.map((n) => {
        const m = methodOf(r, n);
        return [`\`${m.name}\``, String(m.runs), ...rules.map((s) => meanStdText(m.selections[s].rMean, 2))];
      });
      return tableText(['row', 'runs', ...rules.map((s) => RULE_NAMES[s])], rows, ['l', 'r']);
    }
    case 'grid': {
      const names = p.positional[0]?.split(',') ?? [];
      if (names.length === 0) throw new DocBlockError(where, '"grid" needs a comma list of results files');
      const files = names.map((n) => load(n));
      const rules = rulesOf(p, where);
      const budget = p.options.get('budget');
      const families = list(p.options.get('families')) ?? [...new Set(files[0]!.methods.map((m) => methodFamily(m.name)))];
      const rows = families.map((family) => [
        `${familyLabel(family)}${budget && family !== 'full' ? `, ${budget} pairs` : ''}`,
        ...files.map((r) => {
          const m = r.methods.find((x) => methodFamily(x.name) === family && (family === 'full' || budget === undefined || budgetOf(x) === budget));
          if (!m) throw new DocBlockError(where, `figures/${r.name}.json has no row of family "${family}"${budget ? ` at ${budget} pairs` : ''}`);
          return rules.map((s) => meanStdText(m.selections[s].rMean, 1)).join(' / ');
        }),
      ]);
      return tableText(['method', ...names.map((n) => `\`${n}\``)], rows);
    }
    case 'orderings': {
      const r = file(0);
      const t = orderingTable(r.methods, paperOrderings(r.methods));
      const cols = t.columnNames();
      const objects = t.objects() as Record<string, unknown>[];
      return tableText(cols, objects.map((o) => cols.map((c) => String(o[c]))));
    }
    case 'gains': {
      const t = gainTable(file(0).methods);
      const cols = t.columnNames();
      const objects = t.objects() as Record<string, unknown>[];
      return tableText(cols, objects.map((o) => cols.map((c) => String(o[c]))));
    }
    case 'cell': {
      const r = file(0);
      const m = methodOf(r, p.positional[1] ?? '');
      const rule = (p.positional[2] ?? '') as Selection;
      if (!(SELECTIONS as readonly string[]).includes(rule)) throw new DocBlockError(where, `unknown rule "${rule}"; valid: ${SELECTIONS.join(', ')}`);
      const metric = (p.options.get('metric') ?? 'rMean') as MetricKey;
      if (!(METRIC_KEYS as readonly string[]).includes(metric)) throw new DocBlockError(where, `unknown metric "${metric}"; valid: ${METRIC_KEYS.join(', ')}`);
      return meanStdText(m.selections[rule][metric], Number(p.options.get('digits') ?? 2));
    }
    case 'about': {
      const r = file(0);
      const lines = Array.isArray(r.provenance) ? (r.provenance as unknown[]).map(String) : [];
      return lines.map((l) => `- ${l}`).join('\n');
    }
    default:
      throw new DocBlockError(where, `unknown directive "${p.kind}"; valid: budget, rows, grid, orderings, gains, cell, about`);
  }
}

/** Inline blocks (`cell`) stay on their line; the others are tables or lists on lines of their own. */
const INLINE = new Set(['cell']);

/** The document with every block rewritten from the results files. */
export function renderBlocks(doc: string, load: (name: string) => DocResults, docName = 'document'): string {
  return doc.replace(BLOCK, (_all, directive: string, _body: string, offset: number) => {
    const where = `${docName}:${doc.slice(0, offset).split('\n').length}`;
    const text = renderDirective(directive.trim(), load, where);
    const kind = parseDirective(directive).kind;
    return INLINE.has(kind) ? `<!-- ptmst:${directive.trim()} -->${text}<!-- /ptmst -->` : `<!-- ptmst:${directive.trim()} -->\n${text}\n<!-- /ptmst -->`;
  });
}

/** Every "mean ± std" in a text (tables and prose), with its line. */
export function meanStdMentions(doc: string): { readonly text: string; readonly mean: string; readonly std: string; readonly line: number }[] {
  const out: { text: string; mean: string; std: string; line: number }[] = [];
  doc.split('\n').forEach((line, i) => {
    for (const m of line.matchAll(/(?<![\d.])(-?\d+(?:\.\d+)?) ± (\d+(?:\.\d+)?)(?![\d.])/g)) out.push({ text: m[0], mean: m[1]!, std: m[2]!, line: i + 1 });
  });
  return out;
}

/**
 * Whether "mean ± std", as written (its decimals), is a value some results file holds: any row, rule and metric
 * whose mean and std round to the written digits. Returns where it was found, or undefined.
 */
export function findMeanStd(mean: string, std: string, files: readonly DocResults[]): string | undefined {
  const digits = (s: string) => (s.includes('.') ? s.length - s.indexOf('.') - 1 : 0);
  const dm = digits(mean);
  const ds = digits(std);
  for (const r of files) {
    for (const m of r.methods) {
      for (const s of SELECTIONS) {
        for (const k of METRIC_KEYS) {
          const v = m.selections[s][k];
          if (v.mean.toFixed(dm) === mean && v.std.toFixed(ds) === std) return `figures/${r.name}.json: ${m.name}, ${SELECTION_LABELS[s]}, ${k}`;
        }
      }
    }
  }
  return undefined;
}

/** The project's documents that may hold generated blocks: README.md and docs/*.md. */
export function projectDocuments(root: string): string[] {
  const docs = join(root, 'docs');
  return [join(root, 'README.md'), ...(existsSync(docs) ? readdirSync(docs).filter((f) => f.endsWith('.md')).sort().map((f) => join(docs, f)) : [])];
}

/** Every results file under `<root>/figures/` (any JSON with a `methods` list), by name. */
export function loadFigureResults(root: string): Map<string, DocResults> {
  const out = new Map<string, DocResults>();
  const dir = join(root, 'figures');
  for (const f of readdirSync(dir).filter((x) => x.endsWith('.json') && !x.endsWith('.vl.json')).sort()) {
    const parsed = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Partial<DocResults>;
    if (Array.isArray(parsed.methods)) out.set(f.replace(/\.json$/, ''), { ...(parsed as DocResults), name: f.replace(/\.json$/, '') });
  }
  return out;
}

/**
 * Rewrite every generated block of the project's documents from figures/*.json (atomically). With `check`,
 * write nothing and return the documents that would change (a stale or hand-edited block).
 */
export async function refreshDocs(root: string, options: { readonly check?: boolean } = {}): Promise<string[]> {
  const results = loadFigureResults(root);
  const load = (name: string) => {
    const r = results.get(name);
    if (!r) throw new DocBlockError(name, `no results file figures/${name}.json; files: ${[...results.keys()].join(', ')}`);
    return r;
  };
  const changed: string[] = [];
  for (const file of projectDocuments(root)) {
    const doc = readFileSync(file, 'utf8');
    const next = renderBlocks(doc, load, relative(root, file));
    if (next === doc) continue;
    changed.push(relative(root, file));
    if (!options.check) await writeAtomic(file, next);
  }
  return changed;
}
