/**
 * The paper's figures as vega-lite specs with their data inline: results against budget, students' learning
 * curves across subsets, the teachers' retrieval per epoch, the distillation loss per iteration. Each builder
 * returns a `FigureSpec` (name, caption, spec); `saveFigure` renders and writes it. Error bars and bands are
 * mean ± sample std over runs; every caption states the data, encoders, budget, seeds and selection rule.
 */
import type { TopLevelSpec } from 'vega-lite' with { 'resolution-mode': 'import' };
import { type CurvePoint, type MeanStd, SELECTION_LABELS, SELECTIONS, type Selection, gap, meanStd } from '../evaluate/summary';
import type { Retrieval } from '../model/retrieval';
import type { FigureSpec, VegaLiteSpec } from './render';
import { CORESET_NAMES } from '../coreset';
import { DISTILL_METHODS } from '../distill/methods';

/** A typed vega-lite spec as the plain JSON a figure carries. */
const json = (s: TopLevelSpec): VegaLiteSpec => s as unknown as VegaLiteSpec;

/** What a results figure needs of `repro`'s results file (figures/<name>.json). */
export interface ResultsLike {
  readonly name: string;
  readonly provenance: readonly string[];
  readonly config: { readonly eval: { readonly epochs: number } };
  readonly methods: readonly {
    readonly name: string;
    readonly kind: string;
    readonly pairs: number;
    readonly runs: number;
    readonly selections: Readonly<Record<Selection, { readonly rMean: MeanStd }>>;
    readonly curve: readonly CurvePoint[];
  }[];
}

/** A method's family: its name without the budget suffix (`ptmst-100` → `ptmst`). */
export const methodFamily = (name: string) => name.replace(/-\d+$/, '');

const FAMILY_LABELS: Readonly<Record<string, string>> = {
  ptmst: 'PTM-ST',
  random: 'random coreset',
  full: 'full data',
  ...Object.fromEntries(Object.values(DISTILL_METHODS).map((m) => [m.name, m.label])),
  ...Object.fromEntries(CORESET_NAMES.filter((c) => c !== 'random').map((c) => [c, `${c} coreset`])),
  'base-ema': '+EMA',
  'base-ptm': '+PTM',
  'base-st': '+ST',
  'amd-async-dynamic': DISTILL_METHODS['amd-async+dynamic']!.label, // row names allow no '+'
  // AMD as seed 004 describes it, where a table beside it keeps the earlier `amd` rows under that name
  'amd-seed004': `${DISTILL_METHODS.amd!.label} (seed 004)`,
};
/** Evaluation variants named by a suffix of their family: `-union` (a phased set's subsets trained as one set, the schedule study's protocol), `-kd` and `-kdsoft` (KD with the soft-alpha weighting). */
const VARIANT_SUFFIXES = [
  ['-kd', ' + KD'],
  ['-kdsoft', ' + KD (soft-alpha)'],
  ['-union', ' (union students)'],
] as const;
/** A family's label: the registries' names (`lors` → LoRS, `herding` → herding coreset), `-union` → "(union students)", `-kd` → "+ KD". */
export function familyLabel(name: string): string {
  let family = methodFamily(name);
  let suffix = '';
  for (const [end, label] of VARIANT_SUFFIXES) {
    if (family.endsWith(end)) {
      family = family.slice(0, -end.length);
      suffix = label + suffix;
    }
  }
  return (FAMILY_LABELS[family] ?? family) + suffix;
}

/** The budget a method was configured for (`ptmst-100` → 100; PTM-ST's phases may store a pair fewer). */
export const methodBudget = (m: { readonly name: string; readonly pairs: number }) => Number(/-(\d+)$/.exec(m.name)?.[1] ?? m.pairs);

/**
 * Distinct colours for the families in a figure: PTM-ST blue, the random coreset orange and full data green in
 * every figure; the other families present take the next colours in the registries' order (so no two families of
 * one figure share a colour, up to 20 of them).
 */
// tableau10, then tableau20's light tones and four more
const PALETTE = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#9d755d', '#bab0ac', '#eeca3b', '#ff9da6', '#9ecae9', '#ffbf79', '#88d27a', '#d6a5c9', '#79706e', '#b6992d', '#17becf', '#393b79', '#8c6d31', '#843c39'];
const ANCHORED = ['PTM-ST', 'random coreset', 'full data'];
function colour(methods: readonly { readonly name: string }[]) {
  const known = [...new Set(Object.values(FAMILY_LABELS))];
  const present = new Set(methods.map((m) => familyLabel(m.name)));
  const order = [...known, ...[...present].filter((f) => !known.includes(f))];
  const domain = order.filter((f) => present.has(f));
  const others = domain.filter((f) => !ANCHORED.includes(f));
  const range = domain.map((f) => PALETTE[ANCHORED.includes(f) ? ANCHORED.indexOf(f) : (ANCHORED.length + others.indexOf(f)) % PALETTE.length]!);
  return { field: 'method', type: 'nominal', title: null, scale: { domain, range }, legend: { labelLimit: 280 } } as const;
}

const FONT = 'DejaVu Sans';
const CONFIG = { font: FONT, view: { stroke: null }, axis: { grid: true, gridOpacity: 0.4 }, legend: { symbolOpacity: 1 } } as const;

/** One panel of layers over inline data, in the house style. */
const panel = (values: readonly object[], layer: Extract<TopLevelSpec, { layer: unknown }>['layer']): TopLevelSpec => ({
  $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
  data: { values: [...values] },
  width: 320,
  height: 200,
  layer,
  config: CONFIG,
});

/** The budget on a log x axis, ticks at the budgets present. */
const budgetAxis = (budgets: readonly number[]) =>
  ({ field: 'budget', type: 'quantitative', title: 'budget (pairs)', scale: { type: 'log', nice: false, padding: 12 }, axis: { values: [...new Set(budgets)].sort((a, b) => a - b), format: 'd' } }) as const;

const band = (m: MeanStd) => ({ mean: m.mean, lo: m.mean - m.std, hi: m.mean + m.std });

const caption = (r: ResultsLike, what: string, selection: string) =>
  `${what} ${r.provenance.join(' ')} ${selection} Error bars: ± one sample standard deviation over runs. Source: figures/${r.name}.json.`;

/**
 * r_mean against the number of synthetic (or coreset) pairs, one line per method family, one panel per
 * selection rule (the test-split rule labelled as such); full-data training as a dashed reference line.
 */
export function budgetFigure(r: ResultsLike, name = `${r.name}-budget`): FigureSpec {
  const selectionLabel = (s: Selection) => (s === 'test' ? 'best on test (reference rule, test split)' : SELECTION_LABELS[s]);
  const values = r.methods.flatMap((m) =>
    SELECTIONS.map((s) => ({
      method: familyLabel(m.name),
      kind: m.kind,
      budget: m.pairs < 0 ? null : methodBudget(m),
      pairs: m.pairs,
      runs: m.runs,
      selection: selectionLabel(s),
      ...band(m.selections[s].rMean),
    })),
  );
  const x = budgetAxis(r.methods.filter((m) => m.pairs > 0).map(methodBudget));
  const y = { field: 'mean', type: 'quantitative', title: 'r_mean (%)' } as const;
  const color = colour(r.methods);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'selection', type: 'nominal', title: 'checkpoint selection rule', sort: SELECTIONS.map(selectionLabel) } },
    spec: {
      width: 210,
      height: 190,
      layer: [
        { transform: [{ filter: 'datum.budget != null' }], mark: { type: 'line', point: true }, encoding: { x, y, color } },
        { transform: [{ filter: 'datum.budget != null' }], mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color } },
        { transform: [{ filter: 'datum.budget == null' }], mark: { type: 'rule', strokeDash: [4, 3] }, encoding: { y, color } },
      ],
    },
    config: CONFIG,
  };
  return {
    name,
    spec: json(spec),
    caption: caption(
      r,
      'Retrieval (r_mean, mean of IR/TR@1/5/10 on the test split) against the budget.',
      `x: the configured budget (pairs stored: ${r.methods.filter((m) => m.pairs > 0).map((m) => `${m.name} ${m.pairs}`).join(', ')}). Panels: the checkpoint each run reports — the final epoch, the best on validation (test scores shown), and the reference rule that selects on the test split itself (labelled; optimistic).`,
    ),
  };
}

/**
 * The row a gain is measured against: the random coreset of the row's size under the row's protocol. A KD family
 * ends in -kd (seed 003's weighting) or -kdsoft (soft-alpha): its protocol's random coreset has the same suffix,
 * and `random-kd-N` itself goes against `random-N` (KD's lift). Undefined for the full data and the random
 * coresets themselves.
 */
export function gainBaseline(m: { readonly name: string; readonly pairs: number }): string | undefined {
  if (m.pairs <= 0) return undefined;
  const b = methodBudget(m);
  const family = methodFamily(m.name);
  if (family === 'random') return undefined;
  const kd = /-(kd|kdsoft)$/.exec(family)?.[1];
  return kd === undefined || family === `random-${kd}` ? `random-${b}` : `random-${kd}-${b}`;
}

/**
 * Each row's gain over the random coreset of its size under its own protocol (`gainTable`: KD rows against
 * random + KD), against the budget, one line per family, one panel per rule (final epoch, best on validation);
 * error bars ± one pooled std of the two rows, a rule at zero. Scores that credit the data, not the protocol.
 */
export function gainFigure(r: ResultsLike, name = `${r.name}-gains`): FigureSpec {
  const byName = new Map(r.methods.map((m) => [m.name, m]));
  const values = r.methods.flatMap((m) => {
    const baseName = gainBaseline(m);
    const base = baseName === undefined ? undefined : byName.get(baseName);
    if (!base) return [];
    return (['final', 'val'] as const).map((s) => {
      const g = gap(m.selections[s].rMean, base.selections[s].rMean);
      return { method: familyLabel(m.name), budget: methodBudget(m), selection: SELECTION_LABELS[s], mean: g.diff, lo: g.diff - g.pooledStd, hi: g.diff + g.pooledStd, against: base.name };
    });
  });
  const x = budgetAxis(values.map((v) => v.budget));
  const y = { field: 'mean', type: 'quantitative', title: 'gain over the random coreset (r_mean points)' } as const;
  const color = colour(r.methods.filter((m) => values.some((v) => v.method === familyLabel(m.name))));
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'selection', type: 'nominal', title: 'checkpoint selection rule', sort: [SELECTION_LABELS.final, SELECTION_LABELS.val] } },
    spec: {
      width: 240,
      height: 200,
      layer: [
        { mark: { type: 'rule', color: '#888', strokeDash: [4, 3] }, encoding: { y: { datum: 0 } } },
        { mark: { type: 'line', point: true }, encoding: { x, y, color } },
        { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color } },
      ],
    },
    config: CONFIG,
  };
  return {
    name,
    spec: json(spec),
    caption: caption(
      r,
      'Gain in r_mean over the random coreset of the same size under the same evaluation protocol (a KD row against the random coreset with KD, so KD\'s own share is not credited to the data; random + KD against random is the lift KD gives a random coreset).',
      'Panels: the final epoch and the best checkpoint on validation (test scores shown). Error bars here: ± one pooled std of the row and its baseline.',
    ),
  };
}

/**
 * One point per row (± std), rows in the results' order: the ablation table, the schedule study, any set of
 * rows at one budget. One panel per rule in `rules` (default: final epoch and best on validation; the test
 * rule only when asked, labelled). `label` names each row (default: the family label and the row name).
 */
export function comparisonFigure(
  r: ResultsLike,
  name = `${r.name}-rows`,
  options: { readonly rules?: readonly Selection[]; readonly label?: (row: string) => string; readonly what?: string } = {},
): FigureSpec {
  const rules = options.rules ?? (['final', 'val'] as const);
  const label = options.label ?? ((row: string) => row);
  const selectionLabel = (s: Selection) => (s === 'test' ? 'best on test (reference rule, test split)' : SELECTION_LABELS[s]);
  const rows = r.methods.filter((m) => m.pairs > 0);
  const values = rows.flatMap((m) => rules.map((s) => ({ row: label(m.name), method: familyLabel(m.name), runs: m.runs, selection: selectionLabel(s), ...band(m.selections[s].rMean) })));
  const x = { field: 'row', type: 'nominal', title: null, sort: rows.map((m) => label(m.name)), axis: { labelAngle: -35, labelLimit: 280 } } as const;
  const y = { field: 'mean', type: 'quantitative', title: 'r_mean (%)', scale: { zero: false } } as const;
  // the x axis names every row (in the caller's labels), so a colour legend would only repeat it
  const color = { ...colour(rows), legend: null };
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'selection', type: 'nominal', title: 'checkpoint selection rule', sort: rules.map(selectionLabel) } },
    spec: {
      width: Math.max(160, 26 * rows.length),
      height: 190,
      layer: [
        { mark: { type: 'point', filled: true, size: 50 }, encoding: { x, y, color } },
        { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color } },
      ],
    },
    config: CONFIG,
  };
  return {
    name,
    spec: json(spec),
    caption: caption(
      r,
      options.what ?? 'Retrieval (r_mean, mean of IR/TR@1/5/10 on the test split) per row.',
      `Rows: ${rows.map((m) => `${m.name} (${m.pairs} pairs, ${m.runs} runs)`).join(', ')}. Panels: the checkpoint each run reports (${rules.map(selectionLabel).join('; ')}).`,
    ),
  };
}

/**
 * Students' r_mean at every checkpoint across the training subsets (PTM-ST trains on its subsets in order),
 * one panel per budget, test split solid and validation dashed, bands ± std; dotted rules mark where a
 * subset begins.
 */
export function checkpointFigure(r: ResultsLike, name = `${r.name}-checkpoints`): FigureSpec {
  const epochs = r.config.eval.epochs;
  const methods = r.methods.filter((m) => m.pairs > 0);
  const values = methods.flatMap((m) =>
    m.curve.flatMap((p) =>
      (['test', 'val'] as const).map((split) => ({
        method: familyLabel(m.name),
        budget: methodBudget(m),
        pairs: m.pairs,
        step: p.subset * epochs + p.epoch,
        subset: p.subset + 1,
        split: split === 'test' ? 'test' : 'validation',
        ...band(p[split]),
      })),
    ),
  );
  const boundaries = methods.flatMap((m) =>
    [...new Set(m.curve.map((p) => p.subset))].filter((s) => s > 0).map((s) => ({ budget: methodBudget(m), step: s * epochs, boundary: true })),
  );
  const x = { field: 'step', type: 'quantitative', title: 'student epoch (all subsets)' } as const;
  const color = colour(methods);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values: [...values, ...boundaries] },
    facet: { column: { field: 'budget', type: 'ordinal', title: 'budget (pairs)' } },
    spec: {
      width: 210,
      height: 190,
      layer: [
        {
          transform: [{ filter: 'datum.boundary !== true && datum.split === "test"' }],
          mark: { type: 'area', opacity: 0.15 },
          encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'r_mean (%)' }, y2: { field: 'hi' }, color },
        },
        {
          transform: [{ filter: 'datum.boundary !== true' }],
          mark: { type: 'line' },
          encoding: {
            x,
            y: { field: 'mean', type: 'quantitative', title: 'r_mean (%)' },
            color,
            strokeDash: { field: 'split', type: 'nominal', title: 'split', sort: ['test', 'validation'], legend: { symbolStrokeColor: '#333' } },
            detail: { field: 'split' },
          },
        },
        { transform: [{ filter: 'datum.boundary === true' }], mark: { type: 'rule', strokeDash: [2, 2], color: 'gray' }, encoding: { x } },
      ],
    },
    config: CONFIG,
  };
  return {
    name,
    spec: json(spec),
    caption: caption(
      r,
      `Students' r_mean at every evaluation checkpoint (every 10 epochs, ${epochs} epochs per subset; dotted lines: the next subset starts), test split solid, validation dashed, band ± std on test.`,
      'No checkpoint is selected: the curves show every checkpoint.',
    ),
  };
}

/** The teachers (experts) learning: r_mean per epoch on validation and test, mean ± std over experts. */
export function teacherFigure(
  experts: readonly { readonly retrieval: readonly Retrieval[]; readonly retrievalVal: readonly Retrieval[] }[],
  options: { readonly name: string; readonly caption: string },
): FigureSpec {
  const epochs = experts[0]?.retrieval.length ?? 0;
  const values = Array.from({ length: epochs }, (_, e) =>
    (['test', 'validation'] as const).map((split) => ({
      epoch: e,
      split,
      ...band(meanStd(experts.map((x) => (split === 'test' ? x.retrieval : x.retrievalVal)[e]?.rMean ?? NaN))),
    })),
  ).flat();
  const x = { field: 'epoch', type: 'quantitative', title: 'expert epoch', axis: { tickMinStep: 1 } } as const;
  const color = { field: 'split', type: 'nominal', title: 'split' } as const;
  const spec = panel(values, [
    { mark: { type: 'area', opacity: 0.15 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: 'r_mean (%)' }, y2: { field: 'hi' }, color } },
    { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'mean', type: 'quantitative', title: 'r_mean (%)' }, color } },
  ]);
  return { name: options.name, spec: json(spec), caption: `${options.caption} Band: ± one sample std over ${experts.length} experts.` };
}

/** The matching loss ℓ_img + ℓ_txt per iteration, one line per phase, with a 25-iteration moving mean. */
export function lossFigure(
  phases: readonly { readonly losses: ArrayLike<number> }[],
  options: { readonly name: string; readonly caption: string },
): FigureSpec {
  const values = phases.flatMap((p, k) => Array.from(p.losses, (loss, it) => ({ phase: `phase ${k + 1}`, iteration: it + 1, loss })));
  const x = { field: 'iteration', type: 'quantitative', title: 'iteration' } as const;
  const color = { field: 'phase', type: 'nominal', title: null } as const;
  const spec = panel(values, [
    { mark: { type: 'line', opacity: 0.3, strokeWidth: 1 }, encoding: { x, y: { field: 'loss', type: 'quantitative', title: 'matching loss' }, color } },
    {
      transform: [{ window: [{ op: 'mean', field: 'loss', as: 'smoothed' }], frame: [-12, 12], groupby: ['phase'], sort: [{ field: 'iteration' }] }],
      mark: { type: 'line', strokeWidth: 2 },
      encoding: { x, y: { field: 'smoothed', type: 'quantitative', title: 'matching loss' }, color },
    },
  ]);
  return { name: options.name, spec: json(spec), caption: `${options.caption} Thin: per iteration; thick: moving mean over 25 iterations.` };
}

/** What the gradient-direction figures need of `gradientDirections`' result (src/analysis/gradient-directions.ts). */
export interface DirectionsLike {
  readonly starts: readonly number[];
  readonly original: { readonly cosine: readonly (readonly number[])[]; readonly norm: readonly number[]; readonly consecutive: readonly number[] };
  readonly shortcut: { readonly cosine: readonly (readonly number[])[]; readonly norm: readonly number[]; readonly consecutive: readonly number[] };
}

const KINDS = [
  ['original', 'original trajectories'],
  ['shortcut', 'shortcut trajectories'],
] as const;

/** Pairwise cosine of the synthetic-data gradients from each start epoch: original and shortcut side by side. */
export function directionsFigure(d: DirectionsLike, options: { readonly name: string; readonly caption: string }): FigureSpec {
  const values = KINDS.flatMap(([k, label]) => d.starts.flatMap((ti, i) => d.starts.map((tj, j) => ({ kind: label, from: ti, to: tj, cosine: d[k].cosine[i]![j]! }))));
  const axis = (field: string, title: string) => ({ field, type: 'ordinal', title, sort: [...d.starts] }) as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'kind', type: 'nominal', title: null, sort: KINDS.map(([, l]) => l) } },
    spec: {
      width: 16 * d.starts.length + 40,
      height: 16 * d.starts.length + 40,
      layer: [
        {
          mark: 'rect',
          encoding: {
            x: axis('from', 'start epoch'),
            y: axis('to', 'start epoch'),
            color: { field: 'cosine', type: 'quantitative', title: 'cosine', scale: { domain: [-1, 1], scheme: 'redblue', reverse: true } },
          },
        },
      ],
    },
    config: { ...CONFIG, axis: { ...CONFIG.axis, grid: false } },
  };
  return { name: options.name, spec: json(spec), caption: options.caption };
}

/** The gradient's norm per start epoch and the cosine between consecutive start epochs, original vs shortcut. */
export function directionProfileFigure(d: DirectionsLike, options: { readonly name: string; readonly caption: string }): FigureSpec {
  const values = KINDS.flatMap(([k, label]) => [
    ...d.starts.map((t, i) => ({ kind: label, measure: 'gradient norm', start: t, value: d[k].norm[i]! })),
    ...d[k].consecutive.map((c, i) => ({ kind: label, measure: 'cosine with the next start epoch', start: d.starts[i]!, value: c })),
  ]);
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'measure', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent' } },
    spec: {
      width: 260,
      height: 180,
      layer: [
        {
          mark: { type: 'line', point: true },
          encoding: {
            x: { field: 'start', type: 'quantitative', title: 'start epoch', axis: { tickMinStep: 1 } },
            y: { field: 'value', type: 'quantitative', title: null, scale: { zero: false } },
            color: { field: 'kind', type: 'nominal', title: null, legend: { labelLimit: 0, orient: 'bottom' } },
          },
        },
      ],
    },
    config: CONFIG,
  };
  return { name: options.name, spec: json(spec), caption: options.caption };
}

/** One point of the control: a score at an epoch (a student distilled from the window at t, or the teacher at epoch t). */
export interface WindowPoint {
  /** the panel, e.g. "MNIST classification (test accuracy, %)" */
  readonly task: string;
  /** e.g. "students (window [t, t+1])" or "teacher at epoch t" */
  readonly series: string;
  readonly epoch: number;
  readonly score: MeanStd;
}

/** The control: each task's score against the teacher window's start epoch, beside the teacher's own curve. */
export function windowFigure(points: readonly WindowPoint[], options: { readonly name: string; readonly caption: string }): FigureSpec {
  const values = points.map((p) => ({ task: p.task, series: p.series, epoch: p.epoch, ...band(p.score) }));
  const x = { field: 'epoch', type: 'quantitative', title: 'start epoch t (students) / epoch (teacher)', axis: { tickMinStep: 1 } } as const;
  const color = { field: 'series', type: 'nominal', title: null, legend: { labelLimit: 0, orient: 'bottom' } } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'task', type: 'nominal', title: null } },
    resolve: { scale: { y: 'independent', x: 'independent' } },
    spec: {
      width: 280,
      height: 200,
      layer: [
        { mark: { type: 'area', opacity: 0.15 }, encoding: { x, y: { field: 'lo', type: 'quantitative', title: null, scale: { zero: false } }, y2: { field: 'hi' }, color } },
        { mark: { type: 'line', point: true }, encoding: { x, y: { field: 'mean', type: 'quantitative', title: 'score', scale: { zero: false } }, color } },
      ],
    },
    config: CONFIG,
  };
  return { name: options.name, spec: json(spec), caption: `${options.caption} Bands: ± one sample standard deviation.` };
}

/**
 * Scaling: r_mean against the share of the training split the experts (and coresets) saw, one line per
 * method and budget, one panel per selection rule. `results` are one results file per fraction
 * (`data.trainFraction`, absent = 100%); a row present in only some of them is drawn where it is.
 */
export function scalingFigure(
  results: readonly (ResultsLike & { readonly config: { readonly data?: { readonly trainFraction?: number | undefined } } })[],
  options: { readonly name: string; readonly what?: string; readonly rules?: readonly Selection[] },
): FigureSpec {
  const rules = options.rules ?? (['final', 'val'] as const);
  const selectionLabel = (s: Selection) => (s === 'test' ? 'best on test (reference rule, test split)' : SELECTION_LABELS[s]);
  const values = results.flatMap((r) => {
    const percent = 100 * (r.config.data?.trainFraction ?? 1);
    return r.methods.flatMap((m) =>
      rules.map((s) => ({
        percent,
        method: familyLabel(m.name),
        line: m.pairs < 0 ? familyLabel(m.name) : `${familyLabel(m.name)}, ${methodBudget(m)} pairs`,
        budget: m.pairs < 0 ? 'all' : String(methodBudget(m)),
        runs: m.runs,
        selection: selectionLabel(s),
        ...band(m.selections[s].rMean),
      })),
    );
  });
  const percents = [...new Set(values.map((v) => v.percent))].sort((a, b) => a - b);
  const x = { field: 'percent', type: 'quantitative', title: 'training split used (%)', scale: { type: 'log', nice: false, padding: 12 }, axis: { values: percents, format: 'd' } } as const;
  const y = { field: 'mean', type: 'quantitative', title: 'r_mean (%)' } as const;
  const color = colour(results.flatMap((r) => r.methods));
  const detail = { field: 'line', type: 'nominal' } as const;
  // budgets as line styles, drawn as lines in the legend (solid, dashed, dotted, …): numbers ascending, then 'all'
  const budgets = [...new Set(values.map((v) => v.budget))].sort((a, b) => (a === 'all' ? 1 : b === 'all' ? -1 : Number(a) - Number(b)));
  const dashes = [[1, 0], [6, 3], [2, 2], [8, 2, 2, 2], [1, 3]];
  const dash = {
    field: 'budget',
    type: 'nominal',
    title: 'budget (pairs)',
    scale: { domain: budgets, range: budgets.map((_, i) => dashes[i % dashes.length]!) },
    legend: { symbolType: 'stroke', symbolStrokeWidth: 2, symbolSize: 400 },
  } as const;
  const spec: TopLevelSpec = {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    data: { values },
    facet: { column: { field: 'selection', type: 'nominal', title: 'checkpoint selection rule', sort: rules.map(selectionLabel) } },
    spec: {
      width: 300,
      height: 210,
      layer: [
        { mark: 'line', encoding: { x, y, color, detail, strokeDash: dash } },
        { mark: { type: 'point', filled: true }, encoding: { x, y, color, detail } },
        { mark: { type: 'errorbar', ticks: true }, encoding: { x, y: { ...y, field: 'lo' }, y2: { field: 'hi' }, color, detail } },
      ],
    },
    config: CONFIG,
  };
  const first = results[0];
  return {
    name: options.name,
    spec: json(spec),
    caption:
      `${options.what ?? 'Retrieval (r_mean) against the share of the training split used for experts, coresets and distillation.'} ` +
      `Fractions: ${results.map((r) => `${100 * (r.config.data?.trainFraction ?? 1)}% (figures/${r.name}.json, ${r.methods.map((m) => `${m.name}: ${m.runs} runs`).join(', ')})`).join('; ')}. ` +
      `${first ? first.provenance.slice(1).join(' ') : ''} Panels: ${rules.map(selectionLabel).join('; ')}. Error bars: ± one sample standard deviation over runs.`,
  };
}
