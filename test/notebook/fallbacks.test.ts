import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { renderFigure } from '../../src/figures/render';
import { type Display, show, showTable } from '../../src/notebook';
import type { MimeBundle } from '../../src/notebook/bundles';
import { addFallbacks, formatNotebook, splitLines } from '../../src/notebook/fallbacks';
import { REPO } from '../helpers';

const NOTEBOOKS = join(REPO, 'notebooks');
const committed = () => readdirSync(NOTEBOOKS).filter((f) => /^\d\d-.*\.ipynb$/.test(f)).sort();
type Out = { output_type: string; data?: Record<string, string | string[]>; metadata?: Record<string, unknown> };
const outputs = (file: string) =>
  (JSON.parse(readFileSync(join(NOTEBOOKS, file), 'utf8')) as { cells: { outputs?: Out[] }[] }).cells.flatMap((c) => c.outputs ?? []).filter((o) => o.data);
const joined = (v: string | string[] | undefined) => (Array.isArray(v) ? v.join('') : v);

describe('notebook fallbacks: committed outputs gain PNG, HTML and text, nothing else changes', function () {
  this.timeout(120000);

  it('writes a notebook as nbformat does: every committed notebook comes back byte for byte', () => {
    for (const f of committed()) {
      const text = readFileSync(join(NOTEBOOKS, f), 'utf8');
      assert.ok(formatNotebook(JSON.parse(text)) === text, f);
    }
    assert.deepEqual(splitLines('a\nb\r\nc\rd\u2028e'), ['a\n', 'b\r\n', 'c\r', 'd\u2028', 'e']);
    assert.deepEqual(splitLines('x\n'), ['x\n']);
  });

  it('adds what a fresh run shows: the same PNG and text as show() and showTable(), and changes nothing on a second run', async () => {
    const figure = await renderFigure({
      name: 'unit-bar',
      caption: 'bars; seed 0',
      spec: { width: 120, height: 80, data: { values: [{ a: 'x', b: 1 }, { a: 'y', b: 3 }] }, mark: 'bar', encoding: { x: { field: 'a', type: 'nominal' }, y: { field: 'b', type: 'quantitative' } } },
    });
    const fresh: MimeBundle[] = [];
    const d: Display = { output: (b) => fresh.push(b) };
    show(figure, d);
    showTable('|a|b|\n|:-|-:|\n|x|1|\n', d);
    // the same outputs as committed before the fallbacks existed: SVG alone, Markdown alone
    const old = {
      cells: [
        { cell_type: 'markdown', id: 'm', metadata: {}, source: ['# t\n', 'x'] },
        {
          cell_type: 'code',
          execution_count: 1,
          id: 'c',
          metadata: {},
          outputs: [
            { output_type: 'stream', name: 'stderr', text: ['[ptmst] tfjs backend: wasm (x; fastest backend present)\n'] },
            { output_type: 'stream', name: 'stderr', text: ['Error: a real error\n'] },
            { output_type: 'stream', name: 'stdout', text: ['hi\n'] },
            { output_type: 'display_data', data: { 'image/svg+xml': splitLines(figure.svg) }, metadata: {} },
            ...fresh.slice(1).map((b) => ({ output_type: 'display_data', data: { 'text/markdown': splitLines(b.data['text/markdown']!) }, metadata: {} })),
          ],
          source: ['show(x)'],
        },
      ],
      metadata: {},
      nbformat: 4,
      nbformat_minor: 5,
    };
    const text = formatNotebook(old);
    const r = await addFallbacks(text);
    assert.deepEqual(r.added, { 'stdout (backend banner)': 1, 'image/png': 1, 'text/plain': 3, 'text/html': 2 });
    const got = JSON.parse(r.text) as typeof old & { cells: { outputs?: Out[] }[] };
    const all = got.cells[1]!.outputs! as Out[];
    // the banner moves to stdout as a fresh run writes it; any other stderr stays
    assert.deepEqual(all.slice(0, 3), [{ ...old.cells[1]!.outputs![0]!, name: 'stdout' }, old.cells[1]!.outputs![1], old.cells[1]!.outputs![2]]);
    const outs = all.slice(2);
    for (const [i, b] of fresh.entries()) {
      const o = outs[i + 1]!;
      assert.deepEqual(Object.keys(o.data!).sort(), Object.keys(b.data).sort());
      for (const [mime, value] of Object.entries(b.data)) assert.equal(joined(o.data![mime]), value, `${i}: ${mime}`);
      assert.deepEqual(o.metadata, b.metadata);
    }
    const png = PNG.sync.read(Buffer.from(joined(outs[1]!.data!['image/png'])!, 'base64'));
    assert.ok(png.width > 120 && png.height > 80);
    assert.deepEqual(got.cells[0], old.cells[0]);
    const again = await addFallbacks(r.text);
    assert.deepEqual([again.text === r.text, again.added], [true, {}]);
  });

  it('the committed notebooks carry them: every SVG figure has its PNG, every Markdown output its HTML and text', () => {
    for (const f of committed()) {
      for (const o of outputs(f)) {
        const mimes = Object.keys(o.data!);
        if (mimes.includes('image/svg+xml')) {
          assert.ok(mimes.includes('image/png') && mimes.includes('text/plain'), `${f}: a figure output has ${mimes.join(', ')}`);
          const png = PNG.sync.read(Buffer.from(joined(o.data!['image/png'])!, 'base64'));
          assert.ok(png.width > 0 && png.height > 0, f);
        }
        if (mimes.includes('text/markdown')) assert.ok(mimes.includes('text/html') && mimes.includes('text/plain'), `${f}: a Markdown output has ${mimes.join(', ')}`);
        if (mimes.includes('text/html')) assert.ok(mimes.includes('text/plain'), `${f}: an HTML output has ${mimes.join(', ')}`);
      }
      const banners = (JSON.parse(readFileSync(join(NOTEBOOKS, f), 'utf8')) as { cells: { outputs?: (Out & { name?: string; text?: string[] })[] }[] }).cells
        .flatMap((c) => c.outputs ?? [])
        .filter((o) => o.output_type === 'stream' && o.name === 'stderr' && /^\[ptmst\] tfjs backend/.test(joined(o.text) ?? ''));
      assert.equal(banners.length, 0, `${f}: the backend banner is on stderr`);
    }
  });
});
