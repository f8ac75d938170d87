/**
 * The notebooks' "what the full run shows" paragraphs, rendered from the committed results (`figures/<name>.json`
 * read by `readResults`, and the data inside committed figure specs, `figures/<name>.vl.json`), so no number
 * in notebook prose is typed by hand. Each function takes what was read and returns Markdown for `showTable`;
 * every number it prints, and every verdict ("holds", "reversed", "tie"), is computed here from those files.
 * A verdict is the ordering tables' rule: a gap of at least one pooled std √((s_a² + s_b²)/2) either way.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { CorruptFileError } from '../errors';
import type { MeanStd } from '../evaluate/summary';
import { familyLabel, methodBudget, methodFamily } from '../figures/charts';
import { gap } from '../figures/tables';
import type { ResultsFile } from '../pipeline/repro';

type Methods = ResultsFile['methods'];
type Method = Methods[number];
type Rule = 'final' | 'val';
const RULES: readonly Rule[] = ['final', 'val'];
const RULE_WORD: Readonly<Record<Rule, string>> = { final: 'final epoch', val: 'validation' };

const f2 = (x: number) => x.toFixed(2);
const f1 = (x: number) => x.toFixed(1);
const signed = (x: number, digits: number) => `${x >= 0 ? '+' : '−'}${Math.abs(x).toFixed(digits)}`;
const ms = (m: MeanStd, digits = 2) => `${m.mean.toFixed(digits)} ± ${m.std.toFixed(digits)}`;
/** "a, b and c" */
const list = (xs: readonly string[]) => (xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} and ${xs.at(-1)}`);
const range = (xs: readonly number[], fmt: (x: number) => string) => {
  const lo = Math.min(...xs);
  const hi = Math.max(...xs);
  return fmt(lo) === fmt(hi) ? fmt(lo) : `${fmt(lo)}${lo < 0 ? ' to ' : '–'}${fmt(hi)}`;
};

type Holds = 'holds' | 'reversed' | 'tie';
const verdict = (inStd: number): Holds => (inStd >= 1 ? 'holds' : inStd <= -1 ? 'reversed' : 'tie');

interface Cell {
  readonly budget: number;
  readonly rule: Rule;
  readonly a: MeanStd;
  readonly b: MeanStd;
  readonly diff: number;
  readonly inStd: number;
  readonly holds: Holds;
}

function compare(a: Method, b: Method, rule: Rule): Cell {
  const g = gap(a.selections[rule].rMean, b.selections[rule].rMean);
  return { budget: methodBudget(a), rule, a: a.selections[rule].rMean, b: b.selections[rule].rMean, diff: g.diff, inStd: g.inStd, holds: verdict(g.inStd) };
}

/** The rows of a family by budget, ascending. */
const byBudget = (methods: Methods, family: string) => methods.filter((m) => methodFamily(m.name) === family && m.pairs > 0).sort((x, y) => methodBudget(x) - methodBudget(y));

/** "holds at every budget under both rules" / "reversed at every …" / "holds in 2, reversed in 1, tie in 3 of 6 (budget, rule) cells" */
function summary(cells: readonly Cell[], what = 'budget'): string {
  const count = (h: Holds) => cells.filter((c) => c.holds === h).length;
  if (count('holds') === cells.length) return `holds at every ${what} under both rules`;
  if (count('reversed') === cells.length) return `does not hold: reversed at every ${what} under both rules`;
  if (count('tie') === cells.length) return `a tie at every ${what} under both rules`;
  const parts = (['holds', 'reversed', 'tie'] as const).filter((h) => count(h) > 0).map((h) => `${h === 'holds' ? 'holds' : h === 'reversed' ? 'reversed' : 'a tie'} in ${count(h)}`);
  return `${parts.join(', ')} of ${cells.length} (${what}, rule) cells`;
}

const cellText = (c: Cell) => `${RULE_WORD[c.rule]} ${f2(c.a.mean)} vs ${f2(c.b.mean)} (${signed(c.inStd, 1)} std${c.holds === 'tie' ? ', tie' : c.holds === 'reversed' ? ', reversed' : ''})`;

/** One claim "a > b" (two families) at every budget both have, under both rules: a verdict, then each cell. */
function claimLine(methods: Methods, a: string, b: string): string | undefined {
  const rows = byBudget(methods, a).flatMap((ma) => {
    const mb = byBudget(methods, b).find((x) => methodBudget(x) === methodBudget(ma));
    return mb ? [[ma, mb] as const] : [];
  });
  if (rows.length === 0) return undefined;
  const cells = rows.flatMap(([ma, mb]) => RULES.map((r) => compare(ma, mb, r)));
  const perBudget = rows.map(([ma], i) => `${methodBudget(ma)} pairs: ${cells.slice(2 * i, 2 * i + 2).map(cellText).join(', ')}`);
  return `**${familyLabel(a)} > ${familyLabel(b)}: ${summary(cells)}.** ${perBudget.join('; ')}.`;
}

const header = (files: readonly string[], note: string) => `*Rendered from ${list(files.map((f) => `\`${f}\``))} (the committed full run${note}).*`;

/**
 * Notebook 03: the paper's orderings on the main table, each at every budget under the final-epoch and the
 * validation rule; the best coreset (chosen on validation) against every distiller; AMD; KD; the budget.
 */
export function mainTableFindings(results: Pick<ResultsFile, 'name' | 'methods'>): string {
  const { methods } = results;
  const budgets = [...new Set(methods.filter((m) => m.pairs > 0).map(methodBudget))].sort((x, y) => x - y);
  const lines: string[] = [];
  // distillers against the best coreset of each budget (the coreset with the highest validation-selected r_mean)
  const distillers = ['mtt-vl', 'lors', 'ptm-st', 'amd'].filter((f) => byBudget(methods, f).length > 0);
  const best = new Map(
    budgets.flatMap((b) => {
      const c = methods.filter((m) => m.kind === 'coreset' && methodBudget(m) === b).sort((x, y) => y.selections.val.rMean.mean - x.selections.val.rMean.mean)[0];
      return c ? [[b, c] as const] : [];
    }),
  );
  const against = [...best].flatMap(([b, c]) => distillers.flatMap((f) => byBudget(methods, f).filter((m) => methodBudget(m) === b).flatMap((m) => RULES.map((r) => compare(m, c, r)))));
  if (against.length > 0) {
    const names = [...new Set([...best.values()].map((c) => methodFamily(c.name)))];
    const which = names.length === 1 ? `${familyLabel(names[0]!)} at every budget` : [...best].map(([b, c]) => `${familyLabel(c.name)} at ${b}`).join(', ');
    const [b0, c0] = [...best][0]!;
    const example = distillers.flatMap((f) => byBudget(methods, f).filter((m) => methodBudget(m) === b0)).map((m) => `${familyLabel(m.name)} ${f2(m.selections.val.rMean.mean)}`);
    lines.push(
      `**Distillers above the best coreset: ${summary(against, 'budget and distiller')}.** The best coreset on validation is ${which}; ` +
        `the gaps of the distillers (${list(distillers.map(familyLabel))}) to it: ${range(against.map((c) => c.inStd), f1)} pooled std ` +
        `(${b0} pairs, validation: ${example.join(', ')} against ${f2(c0.selections.val.rMean.mean)}).`,
    );
  }
  for (const [a, b] of [
    ['ptm-st', 'lors'],
    ['lors', 'mtt-vl'],
    ['ptm-st', 'mtt-vl'],
    ['ptm-st-union', 'mtt-vl'],
    ['ptm-st', 'amd'],
    ['amd', 'lors'],
  ] as const) {
    const line = claimLine(methods, a, b);
    if (line) lines.push(line);
  }
  // KD: each KD row against the row it distils from; the best KD row against full-data training
  const kd = methods.filter((m) => methodFamily(m.name).endsWith('-kd'));
  const kdCells = kd.flatMap((m) => {
    const base = methods.find((x) => x.name === m.name.replace(/-kd-(\d+)$/, '-$1'));
    return base ? RULES.map((r) => compare(m, base, r)) : [];
  });
  const full = methods.find((m) => m.kind === 'full');
  if (kdCells.length > 0) {
    const top = [...kd].sort((x, y) => y.selections.final.rMean.mean - x.selections.final.rMean.mean)[0]!;
    const share = full ? `, ${((100 * top.selections.final.rMean.mean) / full.selections.final.rMean.mean).toFixed(0)}% of full-data training (${ms(full.selections.final.rMean)})` : '';
    lines.push(
      `**KD from the full-data teacher against the same row without it: ${summary(kdCells, 'KD row')}** (${range(kdCells.map((c) => c.inStd), f1)} pooled std). ` +
        `Highest at the final epoch: ${familyLabel(top.name)} at ${methodBudget(top)} pairs, ${ms(top.selections.final.rMean)}${share}.`,
    );
  }
  const trend = ['ptm-st', 'ptm-st-union', 'ptm-st-kd']
    .map((f) => [f, byBudget(methods, f)] as const)
    .filter(([, rows]) => rows.length > 1)
    .map(([f, rows]) => `${familyLabel(f)} ${rows.map((m) => f2(m.selections.val.rMean.mean)).join(' → ')}`);
  if (trend.length > 0) lines.push(`**Budget** (${budgets.join(' → ')} pairs, validation-selected r_mean): ${trend.join('; ')}.`);
  return [header([`figures/${results.name}.json`], '; quick mode\'s shapes numbers above say nothing about Flickr8k'), '', ...lines.map((l) => `- ${l}`)].join('\n');
}

const percentOf = (r: Pick<ResultsFile, 'config'>) => `${+(100 * (r.config.data.trainFraction ?? 1)).toFixed(2)}%`;

/**
 * Notebook 05: r_mean at each training-split fraction (one results file per fraction, ascending), as a table
 * (final epoch / best on validation), each row's trend with the data, PTM-ST against LoRS, and final against validation.
 */
export function scalingFindings(results: readonly Pick<ResultsFile, 'name' | 'config' | 'methods'>[]): string {
  const files = [...results].sort((x, y) => (x.config.data.trainFraction ?? 1) - (y.config.data.trainFraction ?? 1));
  const names = [...new Set(files.flatMap((r) => r.methods.map((m) => m.name)))];
  const at = (r: (typeof files)[number], name: string) => r.methods.find((m) => m.name === name);
  const label = (name: string) => {
    const m = files.flatMap((r) => r.methods).find((x) => x.name === name)!;
    return m.pairs < 0 ? familyLabel(name) : `${familyLabel(name)}, ${methodBudget(m)} pairs`;
  };
  const head = `|method|${files.map(percentOf).join('|')}|\n|:-|${files.map(() => ':-').join('|')}|`;
  const rows = names.map((n) => `|${label(n)}|${files.map((r) => { const m = at(r, n); return m ? `${ms(m.selections.final.rMean, 1)} / ${ms(m.selections.val.rMean, 1)}` : '—'; }).join('|')}|`);
  const full = (r: (typeof files)[number]) => r.methods.find((m) => m.kind === 'full');
  const series = (name: string, rule: Rule) => files.map((r) => at(r, name)?.selections[rule].rMean.mean);
  const grows = (xs: readonly (number | undefined)[]) => xs.every((x, i) => i === 0 || (x !== undefined && xs[i - 1] !== undefined && x > xs[i - 1]!));
  const trendLines = names.map((n) => {
    const s = series(n, 'val');
    const m = files.flatMap((r) => r.methods).find((x) => x.name === n)!;
    const share = m.kind === 'method' ? ` (${files.map((r, i) => { const fm = full(r); return fm && s[i] !== undefined ? `${((100 * s[i]!) / fm.selections.val.rMean.mean).toFixed(0)}%` : '—'; }).join(', ')} of full data)` : '';
    return `${label(n)} ${s.map((x) => (x === undefined ? '—' : f1(x))).join(' → ')}${share}${grows(s) ? ', grows at every step' : ', not at every step'}`;
  });
  const budgets = [...new Set(files.flatMap((r) => r.methods.filter((m) => m.pairs > 0).map(methodBudget)))].sort((x, y) => x - y);
  const vsLors = budgets.flatMap((b) => {
    const cells = files.flatMap((r) => {
      const p = at(r, `ptm-st-${b}`);
      const l = at(r, `lors-${b}`);
      return p && l ? [{ r, c: compare(p, l, 'val') }] : [];
    });
    return cells.length ? [`${b} pairs ${cells.map(({ r, c }) => `${percentOf(r)}: ${f1(c.a.mean)} vs ${f1(c.b.mean)} (${signed(c.inStd, 1)} std${c.holds === 'tie' ? ', tie' : c.holds === 'reversed' ? ', reversed' : ''})`).join(', ')}`] : [];
  });
  const finalVsVal = budgets.flatMap((b) => {
    const name = `ptm-st-${b}`;
    if (!files.some((r) => at(r, name))) return [];
    const fmt = (rule: Rule) => series(name, rule).map((x) => (x === undefined ? '—' : f1(x))).join(', ');
    return [`${label(name)}: final ${fmt('final')} against validation ${fmt('val')}`];
  });
  const runs = [...new Set(files.flatMap((r) => r.methods.filter((m) => m.kind === 'method').map((m) => m.runs)))];
  const seeds = [...new Set(files.flatMap((r) => r.methods.filter((m) => m.kind === 'method').map((m) => m.runs / r.config.eval.runs)))];
  const lines = [
    `**Validation-selected r_mean as the training split grows (${files.map(percentOf).join(' → ')}):** ${trendLines.join('; ')}.`,
    ...(vsLors.length ? [`**PTM-ST against LoRS, validation-selected:** ${vsLors.join('; ')}.`] : []),
    ...(finalVsVal.length ? [`**Final epoch against best on validation:** ${finalVsVal.join('; ')}.`] : []),
    `Each distilled cell: ${list(runs.map(String))} students (${list(seeds.map(String))} distillation seed${seeds.length === 1 && seeds[0] === 1 ? '' : 's'} × ${files[0]!.config.eval.runs} students); gaps under one pooled std are ties.`,
  ];
  return [header(files.map((r) => `figures/${r.name}.json`), '; test r_mean, final epoch / best on validation, mean ± std'), '', head, ...rows, '', ...lines.map((l) => `- ${l}`)].join('\n');
}

/** The data of a committed figure spec (`figures/<name>.vl.json`: vega-lite with its data inline). */
export function readFigureValues<T extends z.ZodType>(path: string, row: T): z.infer<T>[] {
  let spec: unknown;
  try {
    spec = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new CorruptFileError(path, `not a readable figure spec: ${(e as Error).message}`);
  }
  const parsed = z.object({ data: z.object({ values: z.array(row) }) }).safeParse(spec);
  if (!parsed.success) throw new CorruptFileError(path, `figure data: ${parsed.error.issues[0]?.path.join('.')}: ${parsed.error.issues[0]?.message}`);
  return parsed.data.data.values as z.infer<T>[];
}

export const WindowValue = z.object({ task: z.string(), series: z.string(), epoch: z.number(), mean: z.number(), lo: z.number(), hi: z.number() });
export type WindowValue = z.infer<typeof WindowValue>;

/**
 * Notebook 01: the control. MNIST students and teachers from the control figure's data (`control-<dataset>.vl.json`),
 * the retrieval students from the control results (validation-selected and final), the retrieval teacher per
 * epoch from the figure, and the random coreset of the same budget from the main table.
 */
export function controlFindings(input: {
  readonly figure: { readonly file: string; readonly values: readonly WindowValue[] };
  readonly control: Pick<ResultsFile, 'name' | 'config' | 'methods'>;
  readonly main?: Pick<ResultsFile, 'name' | 'methods'>;
}): string {
  const { values } = input.figure;
  const pick = (task: RegExp, series: RegExp) => values.filter((v) => task.test(v.task) && series.test(v.series)).sort((x, y) => x.epoch - y.epoch);
  const pm = (v: WindowValue, unit = '') => `${f1(v.mean)} ± ${f1(v.hi - v.mean)}${unit}`;
  const lines: string[] = [];
  const mnist = pick(/^MNIST/, /^students/);
  const mnistTeacher = pick(/^MNIST/, /^teacher/);
  if (mnist.length > 0) {
    const first = mnist[0]!;
    const last = mnist.at(-1)!;
    const top = mnist.reduce((x, y) => (y.mean > x.mean ? y : x));
    const epochs = mnistTeacher.length > 1 ? mnistTeacher.length - 1 : mnist.length; // the teacher has a snapshot per epoch and the start
    const g = gap({ mean: last.mean, std: last.hi - last.mean }, { mean: first.mean, std: first.hi - first.mean });
    const above = mnist.filter((s) => { const t = mnistTeacher.find((x) => x.epoch === s.epoch); return t !== undefined && s.mean > t.mean; }).length;
    lines.push(
      `**Unimodal (MNIST, test accuracy):** students from the window [${first.epoch}, ${first.epoch + 1}] ${pm(first, ' %')}, from the last window (t = ${last.epoch}) ${pm(last, ' %')} ` +
        `(${signed(g.inStd, 1)} pooled std); best t = ${top.epoch} of ${epochs} epochs (${((100 * top.epoch) / epochs).toFixed(0)}%): ${pm(top, ' %')}. ` +
        (mnistTeacher.length ? `The students beat the teacher's own accuracy at epoch t in ${above} of ${mnist.length} windows.` : ''),
    );
  }
  const { control } = input;
  const startOf = (m: Method) => {
    const cfg = control.config.methods.find((x) => x.name === m.name) as { overrides?: { phases?: { start?: readonly number[] }[] } } | undefined;
    return cfg?.overrides?.phases?.[0]?.start?.[0] ?? Number.NaN;
  };
  const windows = control.methods.filter((m) => m.pairs > 0).sort((x, y) => startOf(x) - startOf(y));
  if (windows.length > 0) {
    const epochs = control.config.buffer.epochs;
    const top = windows.reduce((x, y) => (y.selections.val.rMean.mean > x.selections.val.rMean.mean ? y : x));
    const budget = methodBudget(windows[0]!);
    const random = input.main?.methods.find((m) => m.name === `random-${budget}`);
    const teacher = pick(/retrieval/, /^teacher/);
    const t0 = teacher.find((t) => t.epoch === 0);
    const t1 = teacher.find((t) => t.epoch === 1);
    const tEnd = teacher.at(-1);
    const below = random ? windows.filter((m) => m.selections.val.rMean.mean < random.selections.val.rMean.mean).map((m) => `t = ${startOf(m)}`) : [];
    const notRun = Array.from({ length: epochs }, (_, t) => t).filter((t) => !windows.some((m) => startOf(m) === t));
    const walls = windows.map((m) => m.wallSeconds).filter((w): w is number => w !== null);
    lines.push(
      `**Multimodal (${control.config.data.dataset} retrieval, test r_mean, validation-selected; final epoch in brackets):** ` +
        windows.map((m) => `t = ${startOf(m)}: ${ms(m.selections.val.rMean)} (${ms(m.selections.final.rMean)})`).join('; ') +
        `. Best t = ${startOf(top)} of ${epochs} epochs (${((100 * startOf(top)) / epochs).toFixed(0)}%).` +
        (random ? ` The random coreset of ${budget} pairs (\`figures/${input.main!.name}.json\`): ${ms(random.selections.val.rMean)}; windows below it: ${below.length ? list(below) : 'none'}.` : '') +
        (t1 && tEnd ? ` The teacher itself goes from ${f2(t1.mean)} at epoch 1 to ${f2(tEnd.mean)} at epoch ${tEnd.epoch}${t0 ? ` (epoch 0, untrained: ${f2(t0.mean)})` : ''}.` : ''),
    );
    if (notRun.length > 0) {
      lines.push(`Start epochs not run for retrieval: ${list(notRun.map(String))}${walls.length ? ` (a window took ${range(walls.map((w) => w / 60), (x) => x.toFixed(0))} minutes here)` : ''}.`);
    }
  }
  const files = [input.figure.file, `figures/${control.name}.json`, ...(input.main ? [`figures/${input.main.name}.json`] : [])];
  return [header(files, '; quick mode prints its own numbers above'), '', ...lines.map((l) => `- ${l}`)].join('\n');
}

export const DirectionRow = z.object({ kind: z.string(), from: z.number(), to: z.number(), cosine: z.number() });
export const ProfileRow = z.object({ kind: z.string(), measure: z.string(), start: z.number(), value: z.number() });

/**
 * Notebook 02: seed 0 of the gradient-direction study, from the two committed figures' data: the mean
 * off-diagonal cosine per trajectory kind, consecutive windows (mean and the lowest pair), first against last window.
 */
export function directionFindings(input: {
  readonly directions: { readonly file: string; readonly values: readonly z.infer<typeof DirectionRow>[] };
  readonly profile: { readonly file: string; readonly values: readonly z.infer<typeof ProfileRow>[] };
}): string {
  const kinds = [...new Set(input.directions.values.map((v) => v.kind))];
  const stats = kinds.map((kind) => {
    const cells = input.directions.values.filter((v) => v.kind === kind);
    const off = cells.filter((v) => v.from !== v.to);
    const starts = [...new Set(cells.map((v) => v.from))].sort((x, y) => x - y);
    const first = starts[0]!;
    const last = starts.at(-1)!;
    const ends = cells.find((v) => v.from === first && v.to === last)?.cosine ?? Number.NaN;
    const next = input.profile.values.filter((v) => v.kind === kind && /next/.test(v.measure)).sort((x, y) => x.start - y.start);
    const low = next.reduce<(typeof next)[number] | undefined>((x, y) => (!x || y.value < x.value ? y : x), undefined);
    const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    return { kind, offDiagonal: mean(off.map((v) => v.cosine)), consecutive: next.length ? mean(next.map((v) => v.value)) : Number.NaN, low, first, last, ends };
  });
  const f3 = (x: number) => x.toFixed(3);
  const lines = [
    `**Mean off-diagonal cosine (how much all start epochs agree):** ${stats.map((s) => `${s.kind} ${f3(s.offDiagonal)}`).join(', ')}; ` +
      `the ${[...stats].sort((x, y) => y.offDiagonal - x.offDiagonal)[0]!.kind} agree more.`,
    `**Consecutive windows (t, t + 1), mean cosine:** ${stats.map((s) => `${s.kind} ${f3(s.consecutive)}${s.low ? ` (lowest ${f2(s.low.value)}, epochs ${s.low.start} and ${s.low.start + 1})` : ''}`).join('; ')}.`,
    `**First against last start epoch:** ${stats.map((s) => `${s.kind} ${f2(s.ends)} (epochs ${s.first} and ${s.last})`).join(', ')}.`,
    'Over the three seeds of the state and draws, the cell above prints mean ± std of the first two.',
  ];
  return [header([input.directions.file, input.profile.file], ', seed 0'), '', ...lines.map((l) => `- ${l}`)].join('\n');
}

/** Notebook 03's rows, from the results file's config: the coresets, the distillers, the variants and the budgets. */
export function rowsSummary(results: Pick<ResultsFile, 'name' | 'config' | 'methods'>): string {
  const cfg = results.config.methods;
  const coresets = [...new Set(cfg.filter((m) => m.kind === 'coreset').map((m) => ('selection' in m && m.selection ? String(m.selection) : 'random')))];
  const distillers = [...new Set(cfg.filter((m) => m.kind === 'method').map((m) => familyLabel(methodFamily(m.name))))];
  const variants = [...new Set(cfg.filter((m) => m.kind === 'variant').map((m) => familyLabel(methodFamily(m.name))))];
  const budgets = [...new Set(results.methods.filter((m) => m.pairs > 0).map(methodBudget))].sort((x, y) => x - y);
  const full = cfg.some((m) => m.kind === 'full');
  return (
    `**Rows of \`figures/${results.name}.json\`:** ${full ? 'full-data training; ' : ''}${coresets.length} coreset${coresets.length === 1 ? '' : 's'} (${list(coresets)}); ` +
    `${list(distillers)} as configurations of the one distiller; ${variants.length ? `the variants ${list(variants)}; ` : ''}at ${list(budgets.map(String))} pairs.`
  );
}
