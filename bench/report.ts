/**
 * The benchmark's results as one Markdown document (printed, and written beside the JSON): a header of
 * what ran where, a table with one row per case, the gradient check. Pure formatting, no I/O.
 *
 * Columns: median wall time of the timed repetitions and their range (min–max), peak RSS of the child
 * process (median over repetitions), ours / peer (ratio of medians: above 1, the peer is faster), and the
 * achieved rate (analytic matrix-product FLOPs / median time, bench/flops.ts) with, in brackets, its share of
 * that side's own SGEMM rate measured by the same harness.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Summary } from './stats';

export interface SideSummary {
  /** seconds of each timed repetition, in the order run */
  readonly seconds: readonly number[];
  readonly time: Summary;
  readonly peakRssMiB: Summary;
  /** what ran it (backend, threads) */
  readonly runtime: string;
}

/** One side of a case: measured, or not run and why. */
export type Side = SideSummary | { readonly skipped: string };

export interface CaseReport {
  readonly id: string;
  readonly label: string;
  /** matrix-product FLOPs of one repetition (iterations, SGEMM) */
  readonly flops?: number;
  readonly ours: Side;
  readonly peer: Side;
}

export interface CheckReport {
  readonly label: string;
  /** per tensor: max relative error of ours against the peer in float64 and in float32 */
  readonly errors: Readonly<Record<string, { readonly f64: number; readonly f32: number }>>;
}

export const measured = (s: Side): s is SideSummary => !('skipped' in s);

/** ours / peer of the median times, when both ran. */
export function ratio(c: CaseReport): number | undefined {
  return measured(c.ours) && measured(c.peer) ? c.ours.time.median / c.peer.time.median : undefined;
}

/** GFLOP/s at the median time. */
export function gflops(c: CaseReport, side: Side): number | undefined {
  return c.flops !== undefined && measured(side) ? c.flops / side.time.median / 1e9 : undefined;
}

/** Seconds with three significant digits, in ms below 0.1 s: `0.352 s`, `12.3 s`, `41.7 ms`. */
export function formatSeconds(s: number): string {
  if (s < 0.1) return `${(s * 1000).toPrecision(3)} ms`;
  return `${s.toPrecision(3)} s`;
}

/** A number with three significant digits, without exponent notation for everyday magnitudes. */
export function formatNumber(x: number): string {
  if (x !== 0 && (Math.abs(x) >= 1e6 || Math.abs(x) < 1e-3)) return x.toExponential(2);
  return Number(x.toPrecision(3)).toString();
}

/** A share as a percentage: whole numbers from 10%, two significant digits below (`42%`, `3.1%`, `0.12%`). */
export function formatPercent(share: number): string {
  const p = 100 * share;
  return `${p >= 10 ? Math.round(p) : Number(p.toPrecision(2))}%`;
}

/** A Markdown table; `|` inside a cell is escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cell = (s: string) => s.replace(/\|/g, '\\|');
  const line = (cells: readonly string[]) => `| ${cells.map(cell).join(' | ')} |`;
  return [line(header), line(header.map(() => '---')), ...rows.map(line)].join('\n');
}

const timeCell = (s: Side) => (measured(s) ? `${formatSeconds(s.time.median)} (${formatSeconds(s.time.min)}–${formatSeconds(s.time.max)})` : `skipped: ${s.skipped}`);
const rssCell = (s: Side) => (measured(s) ? formatNumber(s.peakRssMiB.median) : '—');

/** The SGEMM rates (GFLOP/s) each side's achieved rate is set against. */
export interface SgemmRates {
  readonly ours?: number;
  readonly peer?: number;
}

function rateCell(c: CaseReport, side: Side, sgemm: number | undefined, isSgemm: boolean): string {
  const r = gflops(c, side);
  if (r === undefined) return '—';
  return isSgemm || sgemm === undefined ? formatNumber(r) : `${formatNumber(r)} (${formatPercent(r / sgemm)})`;
}

export const TABLE_HEADER = [
  'benchmark',
  'ours: median (min–max)',
  'ours peak RSS MiB',
  'peer: median (min–max)',
  'peer peak RSS MiB',
  'ours / peer',
  'GFLOP/s ours (% SGEMM)',
  'GFLOP/s peer (% SGEMM)',
] as const;

export function resultRows(cases: readonly CaseReport[], sgemm: SgemmRates): string[][] {
  return cases.map((c) => {
    const isSgemm = c.id.startsWith('sgemm');
    const r = ratio(c);
    return [
      c.label,
      timeCell(c.ours),
      rssCell(c.ours),
      timeCell(c.peer),
      rssCell(c.peer),
      r === undefined ? '—' : formatNumber(r),
      rateCell(c, c.ours, sgemm.ours, isSgemm),
      rateCell(c, c.peer, sgemm.peer, isSgemm),
    ];
  });
}

export function checkRows(checks: readonly CheckReport[]): string[][] {
  return checks.flatMap((c) =>
    Object.entries(c.errors).map(([k, e]) => [c.label, k, e.f64.toExponential(1), e.f32.toExponential(1)]),
  );
}

/** The whole document: title, header lines (as a list), results table (skipped rows last), gradient check. */
export function reportMarkdown(o: {
  readonly title: string;
  readonly header: readonly string[];
  readonly cases: readonly CaseReport[];
  readonly sgemm: SgemmRates;
  readonly skipped: readonly { readonly label: string; readonly reason: string }[];
  readonly checks: readonly CheckReport[];
  readonly tolerance: number;
}): string {
  const skippedRows = o.skipped.map((s) => [s.label, `skipped: ${s.reason}`, ...TABLE_HEADER.slice(2).map(() => '—')]);
  const parts = [`# ${o.title}`, '', ...o.header.map((h) => `- ${h}`), '', markdownTable(TABLE_HEADER, [...resultRows(o.cases, o.sgemm), ...skippedRows])];
  if (o.checks.length > 0) {
    parts.push(
      '',
      `## Gradient check: max |ours − peer| / max |peer| per tensor (fails above ${o.tolerance.toExponential(0)} against float64)`,
      '',
      markdownTable(['iteration', 'tensor', 'vs peer float64', 'vs peer float32'], checkRows(o.checks)),
    );
  }
  return parts.join('\n') + '\n';
}

/**
 * The file stem for a run's results in `dir`: `base` (date-host-commit), or `base-2`, `base-3`, … when a run of the
 * same day and commit already wrote there, so that no result is overwritten.
 */
export function freeStem(dir: string, base: string): string {
  const taken = (stem: string) => existsSync(join(dir, `${stem}.json`)) || existsSync(join(dir, `${stem}.md`));
  let stem = base;
  for (let k = 2; taken(stem); k++) stem = `${base}-${k}`;
  return stem;
}
