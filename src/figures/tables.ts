/**
 * Results in, Markdown tables out. Every table states which data, encoders, budget, runs and seed produced
 * it, and which selection rule chose the reported checkpoint.
 */
import { METRIC_KEYS, type MeanStd, type MetricSummary, SELECTION_LABELS, SELECTIONS, type Selection } from '../evaluate/summary';

export interface TableRow {
  readonly method: string;
  readonly pairs: number | string;
  readonly summary: Readonly<Record<Selection, MetricSummary>>;
  readonly runs: number;
}

const HEAD: Record<(typeof METRIC_KEYS)[number], string> = {
  ir1: 'IR@1',
  ir5: 'IR@5',
  ir10: 'IR@10',
  tr1: 'TR@1',
  tr5: 'TR@5',
  tr10: 'TR@10',
  rMean: 'r_mean',
};

export const fmt = (m: MeanStd) => `${m.mean.toFixed(1)} ± ${m.std.toFixed(1)}`;

export function resultsMarkdown(title: string, provenance: readonly string[], rows: readonly TableRow[]): string {
  const lines = [`# ${title}`, '', ...provenance.map((p) => `- ${p}`), ''];
  for (const sel of SELECTIONS) {
    lines.push(`## Selection: ${SELECTION_LABELS[sel]}`, '');
    lines.push(`| method | pairs | runs | ${METRIC_KEYS.map((k) => HEAD[k]).join(' | ')} |`);
    lines.push(`| --- | --- | --- | ${METRIC_KEYS.map(() => '---').join(' | ')} |`);
    for (const r of rows) {
      lines.push(`| ${r.method} | ${r.pairs} | ${r.runs} | ${METRIC_KEYS.map((k) => fmt(r.summary[sel][k])).join(' | ')} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}
