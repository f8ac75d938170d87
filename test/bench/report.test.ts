import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type CaseReport, type SideSummary, checkRows, formatNumber, formatPercent, freeStem, formatSeconds, markdownTable, ratio, reportMarkdown, resultRows } from '../../bench/report';
import { summarise } from '../../bench/stats';
import { tempDir } from '../helpers';

const side = (seconds: number[], rssMiB: number[]): SideSummary => ({ seconds, time: summarise(seconds), peakRssMiB: summarise(rssMiB), runtime: 'test' });

describe('bench/report', () => {
  it('names a run by date, host and commit, and never reuses a stem that holds results', () => {
    const dir = tempDir('bench-results-');
    const base = '2026-11-26-vm-abc1234';
    assert.equal(freeStem(dir, base), base);
    writeFileSync(join(dir, `${base}.json`), '{}');
    assert.equal(freeStem(dir, base), `${base}-2`);
    writeFileSync(join(dir, `${base}-2.md`), '');
    assert.equal(freeStem(dir, base), `${base}-3`);
  });


  it('formats seconds, numbers and shares', () => {
    assert.equal(formatSeconds(0.3521), '0.352 s');
    assert.equal(formatSeconds(12.34), '12.3 s');
    assert.equal(formatSeconds(0.04171), '41.7 ms');
    assert.equal(formatNumber(2.4345), '2.43');
    assert.equal(formatNumber(1234), '1230');
    assert.equal(formatNumber(0), '0');
    assert.equal(formatNumber(1.5e-5), '1.50e-5');
    assert.equal(formatPercent(0.4249), '42%');
    assert.equal(formatPercent(0.03125), '3.1%');
    assert.equal(formatPercent(0.0012), '0.12%');
  });

  it('writes a Markdown table and escapes pipes in cells', () => {
    assert.equal(markdownTable(['a', 'b'], [['1', 'x|y']]), '| a | b |\n| --- | --- |\n| 1 | x\\|y |');
  });

  it('puts ratio of medians, range, peak RSS and achieved rate against each side\'s SGEMM in a row', () => {
    const c: CaseReport = { id: 'iteration-tesla', label: 'iteration', flops: 2e9, ours: side([2, 1, 4], [100, 300, 200]), peer: side([0.5, 1, 1.5], [50, 50, 50]) };
    assert.equal(ratio(c), 2);
    const [row] = resultRows([c], { ours: 10, peer: 4 });
    assert.deepEqual(row, ['iteration', '2.00 s (1.00 s–4.00 s)', '200', '1.00 s (0.500 s–1.50 s)', '50', '2', '1 (10%)', '2 (50%)']);
    const sgemm: CaseReport = { id: 'sgemm-2048', label: 'SGEMM', flops: 1e9, ours: side([0.1], [90]), peer: side([0.01], [200]) };
    assert.deepEqual(resultRows([sgemm], {})[0]!.slice(5), ['10', '10', '100']);
  });

  it('shows a side that did not run as skipped with its reason, and a skipped case as its own row', () => {
    const c: CaseReport = { id: 'features', label: 'features', ours: side([1], [600]), peer: { skipped: 'no peer encoder' } };
    const md = reportMarkdown({
      title: 't',
      header: ['h'],
      cases: [c],
      sgemm: {},
      skipped: [{ label: 'other', reason: 'no photos' }],
      checks: [{ label: 'tesla', errors: { x: { f64: 1.23e-5, f32: 2e-6 } } }],
      tolerance: 1e-3,
    });
    assert.equal(ratio(c), undefined);
    assert.match(md, /^# t\n\n- h\n/);
    assert.match(md, /\| features \| 1\.00 s \(1\.00 s–1\.00 s\) \| 600 \| skipped: no peer encoder \| — \| — \| — \| — \|/);
    assert.match(md, /\| other \| skipped: no photos \| — \| — \| — \| — \| — \| — \|/);
    assert.match(md, /fails above 1e-3/);
    assert.deepEqual(checkRows([{ label: 'tesla', errors: { x: { f64: 1.23e-5, f32: 2e-6 } } }]), [['tesla', 'x', '1.2e-5', '2.0e-6']]);
  });
});
