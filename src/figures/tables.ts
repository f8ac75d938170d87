/**
 * Results in, tables out (arquero). A results table is tidy: one row per method × selection rule, the mean
 * and sample std of every metric as numbers, so a notebook can filter, pivot or join it and a CSV reader
 * gets numbers, not strings. The Markdown form shows "mean ± std" per selection rule, under the provenance
 * lines (data, encoders, budget, runs, seeds) that produced it.
 */
import { gainBaseline, methodBudget, methodFamily } from './charts';
import { type Gap, METRIC_KEYS, type MeanStd, type MetricSummary, SELECTION_LABELS, SELECTIONS, type Selection, gap } from '../evaluate/summary';

export { type Gap, gap };

// arquero 7 is an ES module without top-level await, which Node ≥ 20.19 loads synchronously with require()
type Arquero = typeof import('arquero', { with: { 'resolution-mode': 'import' } });
// eslint-disable-next-line @typescript-eslint/no-require-imports
const aq = require('arquero') as Arquero;

/** An arquero table (the type notebooks get back; see arquero's docs for its verbs). */
export type Table = ReturnType<Arquero['from']>;

export interface TableRow {
  readonly method: string;
  readonly pairs: number | string;
  readonly summary: Readonly<Record<Selection, MetricSummary>>;
  readonly runs: number;
}

export const METRIC_HEADS: Record<(typeof METRIC_KEYS)[number], string> = {
  ir1: 'IR@1',
  ir5: 'IR@5',
  ir10: 'IR@10',
  tr1: 'TR@1',
  tr5: 'TR@5',
  tr10: 'TR@10',
  rMean: 'r_mean',
};

export const fmt = (m: MeanStd) => `${m.mean.toFixed(1)} ± ${m.std.toFixed(1)}`;

/** Tidy numbers: method, pairs, runs, selection, then `<metric>_mean` and `<metric>_std` for every metric. */
export function resultsTable(rows: readonly TableRow[]): Table {
  return aq.from(
    SELECTIONS.flatMap((selection) =>
      rows.map((r) => ({
        method: r.method,
        pairs: r.pairs,
        runs: r.runs,
        selection,
        ...Object.fromEntries(METRIC_KEYS.flatMap((k) => [[`${k}_mean`, r.summary[selection][k].mean], [`${k}_std`, r.summary[selection][k].std]])),
      })),
    ),
  );
}

export const resultsCsv = (rows: readonly TableRow[]): string => `${resultsTable(rows).toCSV()}\n`;

/** The rows under one selection rule, each metric as "mean ± std" (what a paper table shows). */
export function selectionTable(rows: readonly TableRow[], selection: Selection): Table {
  return aq.from(
    rows.map((r) => ({
      method: r.method,
      pairs: r.pairs,
      runs: r.runs,
      ...Object.fromEntries(METRIC_KEYS.map((k) => [METRIC_HEADS[k], fmt(r.summary[selection][k])])),
    })),
  );
}

export function resultsMarkdown(title: string, provenance: readonly string[], rows: readonly TableRow[]): string {
  const lines = [`# ${title}`, '', ...provenance.map((p) => `- ${p}`), ''];
  for (const sel of SELECTIONS) {
    lines.push(`## Selection: ${SELECTION_LABELS[sel]}`, '', selectionTable(rows, sel).toMarkdown({ align: { method: 'l', pairs: 'r', runs: 'r' } }).trimEnd(), '');
  }
  return lines.join('\n');
}

/** What the scaling and cross-dataset tables read of a results file (figures/<name>.json). */
export interface ScalingResults {
  readonly name: string;
  readonly config: {
    readonly data?: { readonly trainFraction?: number | undefined };
    readonly methods: readonly { readonly name: string; readonly kind: string; readonly of?: string; readonly eval?: { readonly testDataset?: string | undefined } }[];
  };
  readonly methods: readonly { readonly name: string; readonly pairs: number; readonly runs: number; readonly selections: Readonly<Record<Selection, MetricSummary>> }[];
}

const SHOWN: readonly Selection[] = ['final', 'val'];

/**
 * r_mean of each row at each training-split fraction, one results file per fraction: a row per method, a
 * column per fraction × rule ("25% final"), "mean ± std (runs)"; a row absent at a fraction shows "—".
 */
export function scalingTable(results: readonly ScalingResults[]): Table {
  const percent = (r: ScalingResults) => `${+(100 * (r.config.data?.trainFraction ?? 1)).toFixed(2)}%`;
  const names = [...new Set(results.flatMap((r) => r.methods.map((m) => m.name)))];
  return aq.from(
    names.map((name) => ({
      method: name,
      ...Object.fromEntries(
        results.flatMap((r) => {
          const m = r.methods.find((x) => x.name === name);
          return SHOWN.map((s) => [`${percent(r)} ${s === 'final' ? 'final' : 'val-selected'}`, m ? `${fmt(m.selections[s].rMean)} (${m.runs})` : '—']);
        }),
      ),
    })),
  );
}

/**
 * Each row scored on its own test split beside the same sets scored on `dataset`'s (`eval.testDataset`):
 * a row of the config whose eval names the dataset is paired with the row it is a variant `of` (the full-data
 * row with the full-data row). r_mean, final epoch and validation-selected (validation stays in-domain).
 */
export function crossDatasetTable(r: ScalingResults, dataset: string): Table {
  const result = (name: string) => r.methods.find((m) => m.name === name);
  const rows = r.config.methods.flatMap((row) => {
    if (row.eval?.testDataset !== dataset) return [];
    const own = row.kind === 'full' ? r.config.methods.find((x) => x.kind === 'full' && x.eval?.testDataset === undefined)?.name : row.of;
    const [a, b] = [own === undefined ? undefined : result(own), result(row.name)];
    if (!a || !b) return [];
    return [
      {
        method: own!,
        pairs: a.pairs < 0 ? 'all' : a.pairs,
        runs: b.runs,
        ...Object.fromEntries(SHOWN.flatMap((s) => [[`own test, ${s === 'final' ? 'final' : 'val-selected'}`, fmt(a.selections[s].rMean)], [`${dataset}, ${s === 'final' ? 'final' : 'val-selected'}`, fmt(b.selections[s].rMean)]])),
      },
    ];
  });
  return aq.from(rows);
}

/**
 * The paper's layout of a main table: one row per method family (the row name without its budget: `lors-100`
 * → `lors`), one column per budget, each cell r_mean "mean ± std" under one selection rule, and the runs
 * behind it. Rows a budget lacks show "—"; the full-data row fills the "all" column.
 */
export function budgetTable(
  methods: readonly { readonly name: string; readonly pairs: number; readonly runs: number; readonly selections: Readonly<Record<Selection, MetricSummary>> }[],
  selection: Selection,
  label: (family: string) => string = (f) => f,
): Table {
  const budgetOf = (m: { readonly name: string; readonly pairs: number }) => (m.pairs < 0 ? 'all' : String(methodBudget(m)));
  const familyOf = methodFamily;
  const budgets = [...new Set(methods.map(budgetOf))].sort((a, b) => (a === 'all' ? 1 : b === 'all' ? -1 : Number(a) - Number(b)));
  const families = [...new Set(methods.map((m) => familyOf(m.name)))];
  return aq.from(
    families.map((family) => ({
      method: label(family),
      ...Object.fromEntries(
        budgets.map((b) => {
          const m = methods.find((x) => familyOf(x.name) === family && budgetOf(x) === b);
          return [b, m ? `${fmt(m.selections[selection].rMean)} (${m.runs})` : '—'];
        }),
      ),
    })),
  ).select('method', ...budgets); // budgets are integer-like keys, which an object lists first
}

const round = (x: number, digits: number) => (Number.isFinite(x) ? Number(x.toFixed(digits)) : x);

/**
 * The paper's orderings, checked: one row per claim "a > b" and selection rule, with both r_means, the gap and
 * the gap in pooled stds (rounded for display: 2 and 1 decimals). `holds` is "yes" when the gap is at least `clear` pooled stds (default 1), "no" when
 * it is at most −`clear`, and "tie" between. Claims naming a row that is absent are skipped, not guessed.
 */
export function orderingTable(
  methods: readonly { readonly name: string; readonly selections: Readonly<Record<Selection, { readonly rMean: MeanStd }>> }[],
  claims: readonly (readonly [string, string])[],
  options: { readonly selections?: readonly Selection[]; readonly clear?: number; readonly label?: (row: string) => string } = {},
): Table {
  const selections = options.selections ?? (['final', 'val'] as const);
  const clear = options.clear ?? 1;
  const label = options.label ?? ((row: string) => row);
  const byName = new Map(methods.map((m) => [m.name, m]));
  const rows = claims.flatMap(([a, b]) => {
    const ma = byName.get(a);
    const mb = byName.get(b);
    if (!ma || !mb) return [];
    return selections.map((s) => {
      const g = gap(ma.selections[s].rMean, mb.selections[s].rMean);
      return {
        claim: `${label(a)} > ${label(b)}`,
        rule: s === 'test' ? 'best on test (test split)' : SELECTION_LABELS[s],
        a: round(ma.selections[s].rMean.mean, 2),
        b: round(mb.selections[s].rMean.mean, 2),
        gap: round(g.diff, 2),
        'gap / pooled std': round(g.inStd, 1),
        holds: g.inStd >= clear ? 'yes' : g.inStd <= -clear ? 'no' : 'tie',
      };
    });
  });
  return aq.from(rows);
}

/**
 * The paper's comparative claims at every budget the rows cover, as `orderingTable` claims: PTM-ST > LoRS >
 * MTT-VL > the best coreset, PTM-ST > AMD, the union-students protocol against LoRS and MTT-VL, and each KD row
 * against the row it distils from. "The best coreset" is the coreset row with the highest validation-selected
 * r_mean at that budget (chosen on validation, never on test); rows a results file lacks are left out.
 */
export function paperOrderings(
  methods: readonly { readonly name: string; readonly kind: string; readonly pairs: number; readonly selections: Readonly<Record<Selection, { readonly rMean: MeanStd }>> }[],
): [string, string][] {
  const budgets = [...new Set(methods.filter((m) => m.pairs > 0).map(methodBudget))].sort((a, b) => a - b);
  const has = new Set(methods.map((m) => m.name));
  return budgets.flatMap((b) => {
    const coresets = methods.filter((m) => m.kind === 'coreset' && methodBudget(m) === b);
    const best = coresets.reduce<(typeof coresets)[number] | undefined>((x, m) => (!x || m.selections.val.rMean.mean > x.selections.val.rMean.mean ? m : x), undefined);
    const at = (family: string) => `${family}-${b}`;
    const claims: [string, string][] = [
      [at('ptm-st'), at('lors')],
      [at('lors'), at('mtt-vl')],
      // `ptmst` is the quick configs' name for the PTM-ST row
      ...(best ? ([[at('mtt-vl'), best.name], [at('lors'), best.name], [at('ptm-st'), best.name], [at('ptmst'), best.name]] as [string, string][]) : []),
      [at('ptm-st'), at('mtt-vl')],
      [at('ptm-st'), at('amd')],
      [at('ptm-st-union'), at('lors')],
      [at('ptm-st-union'), at('mtt-vl')],
      ...methods.filter((m) => methodBudget(m) === b && /-kd$/.test(methodFamily(m.name))).map((m) => [m.name, m.name.replace(/-kd-(\d+)$/, '-$1')] as [string, string]),
    ];
    return claims.filter(([x, y]) => has.has(x) && has.has(y));
  });
}

/**
 * Scores that credit the data, not the protocol (as DD-Ranking argues for image distillation): each row's gain over
 * the random coreset of the same size under the same evaluation protocol. A knowledge-distillation row (family
 * `…-kd`) is measured against the random coreset with KD (`random-kd-N`), so KD's own share is not credited to the
 * data; `random-kd-N` itself against `random-N` is the lift KD gives a random coreset. One row per method and
 * rule: both r_means, the gain and the gain in pooled stds (2 and 1 decimals). `-kdsoft` rows (the soft-alpha
 * weighting) go against `random-kdsoft-N` the same way. Rows without their baseline, the
 * random coresets themselves and the full data are left out.
 */
export function gainTable(
  methods: readonly { readonly name: string; readonly pairs: number; readonly selections: Readonly<Record<Selection, { readonly rMean: MeanStd }>> }[],
  options: { readonly selections?: readonly Selection[] } = {},
): Table {
  const selections = options.selections ?? (['final', 'val'] as const);
  const byName = new Map(methods.map((m) => [m.name, m]));
  const rows = methods.flatMap((m) => {
    const baseName = gainBaseline(m);
    if (baseName === undefined) return [];
    const base = byName.get(baseName);
    if (!base) return [];
    return selections.map((s) => {
      const g = gap(m.selections[s].rMean, base.selections[s].rMean);
      return {
        method: m.name,
        'against (same size, same protocol)': baseName,
        rule: s === 'test' ? 'best on test (test split)' : SELECTION_LABELS[s],
        r_mean: round(m.selections[s].rMean.mean, 2),
        'baseline r_mean': round(base.selections[s].rMean.mean, 2),
        gain: round(g.diff, 2),
        'gain / pooled std': round(g.inStd, 1),
      };
    });
  });
  return aq.from(rows);
}
