import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import jpeg from 'jpeg-js';
import { PNG } from 'pngjs';
import { renderFigure } from '../../src/figures/render';
import { figureBundle, figureImages, markdownBundle } from '../../src/notebook/bundles';
import { markdownToHtml, markdownToText } from '../../src/notebook/markdown';
import { type Display, notebookDisplay, show, showPhotos, showTable } from '../../src/notebook';
import type { MimeBundle } from '../../src/notebook/bundles';
import { tempDir } from '../helpers';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const aq = require('arquero') as typeof import('arquero', { with: { 'resolution-mode': 'import' } });

function collect() {
  const shown: MimeBundle[] = [];
  const d: Display = { output: (b) => shown.push(b) };
  return { d, shown };
}

const spec = {
  $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
  width: 200,
  height: 120,
  data: { values: [{ x: 1, y: 2 }, { x: 2, y: 5 }, { x: 3, y: 3 }] },
  mark: 'line',
  encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
};

describe('notebook output bundles: every figure also as PNG, every table also as HTML and text', function () {
  this.timeout(60000);

  it('a table: Markdown, HTML with every cell, plain text with aligned columns', () => {
    const md = '**Rule: final** — r_mean\n\n|method|pairs|r_mean|\n|:-|-:|:-|\n|PTM-ST|50|17.2 ± 2.4|\n|random <coreset>|500|13.1 ± 2.2|\n';
    const b = markdownBundle(md);
    assert.deepEqual(Object.keys(b.data).sort(), ['text/html', 'text/markdown', 'text/plain']);
    assert.equal(b.data['text/markdown'], md);
    assert.equal(
      b.data['text/html'],
      '<p><strong>Rule: final</strong> — r_mean</p>\n<table><thead><tr><th style="text-align: left">method</th><th style="text-align: right">pairs</th><th style="text-align: left">r_mean</th></tr></thead>' +
        '<tbody><tr><td style="text-align: left">PTM-ST</td><td style="text-align: right">50</td><td style="text-align: left">17.2 ± 2.4</td></tr>' +
        '<tr><td style="text-align: left">random &lt;coreset&gt;</td><td style="text-align: right">500</td><td style="text-align: left">13.1 ± 2.2</td></tr></tbody></table>',
    );
    assert.equal(
      b.data['text/plain'],
      ['Rule: final — r_mean', '', 'method            pairs  r_mean', '----------------  -----  ----------', 'PTM-ST               50  17.2 ± 2.4', 'random <coreset>    500  13.1 ± 2.2'].join('\n'),
    );
  });

  it('Markdown subset: headings, bullets with continuation lines, code spans stay literal, escaped bars in cells', () => {
    const md = '# Results: x\n\n- one `a*b*c` **two**\n  continued\n- *three*\n\n|a|b|\n|-|-|\n|x\\|y|z|';
    assert.equal(markdownToHtml(md), '<h1>Results: x</h1>\n<ul><li>one <code>a*b*c</code> <strong>two</strong> continued</li><li><em>three</em></li></ul>\n<table><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>x|y</td><td>z</td></tr></tbody></table>');
    assert.equal(markdownToText(md), 'Results: x\n\n- one a*b*c two continued\n- three\n\na    b\n---  -\nx|y  z');
    // emphasis around a code span
    assert.equal(markdownToHtml('*Rendered from `a.json` (x).*'), '<p><em>Rendered from <code>a.json</code> (x).</em></p>');
    assert.equal(markdownToText('*Rendered from `a.json` (x).*'), 'Rendered from a.json (x).');
  });

  it('showTable: an arquero table carries every cell in its text/plain and text/html forms', () => {
    const { d, shown } = collect();
    showTable(aq.from([{ split: 'train', images: 500 }, { split: 'test', images: 100 }]), d);
    assert.equal(shown.length, 1);
    const text = shown[0]!.data['text/plain']!.split('\n');
    assert.deepEqual(text.map((l) => l.split(/\s{2,}/).filter(Boolean)), [['split', 'images'], ['-----', '------'], ['train', '500'], ['test', '100']]);
    for (const cell of ['train', '500', 'test', '100']) assert.ok(shown[0]!.data['text/html']!.includes(`>${cell}</td>`), cell);
  });

  it('show: the figure as SVG and PNG (decodes at twice the display size), then its caption with fallbacks', async () => {
    const figure = await renderFigure({ name: 'unit-line', caption: 'a line; seed 0', spec });
    const { d, shown } = collect();
    show({ ...figure, files: { png: 'x' } }, d);
    assert.equal(shown.length, 2);
    const [image, caption] = shown as [MimeBundle, MimeBundle];
    assert.deepEqual(Object.keys(image.data).sort(), ['image/png', 'image/svg+xml', 'text/plain']);
    assert.equal(image.data['image/svg+xml'], figure.svg);
    const png = PNG.sync.read(Buffer.from(image.data['image/png']!, 'base64'));
    assert.ok(png.width > 200 && png.height > 120, `${png.width}×${png.height}`);
    const meta = image.metadata['image/png'] as { width: number; height: number };
    assert.deepEqual([png.width, png.height], [meta.width * 2, meta.height * 2]);
    let ink = 0;
    for (let i = 0; i < png.data.length; i += 4) if (png.data[i]! < 200) ink++;
    assert.ok(ink > 200, `${ink} dark pixels`);
    assert.equal(image.data['text/plain'], `[figure unit-line, ${meta.width}×${meta.height}]`);
    assert.deepEqual(Object.keys(caption.data).sort(), ['text/html', 'text/markdown', 'text/plain']);
    assert.match(caption.data['text/plain']!, /^Figure unit-line\. a line; seed 0 \(saved: figures\/unit-line\.svg, \.png, \.vl\.json\)$/);
    // the converter's path (figureImages from the SVG alone) gives the same bundle as a fresh run
    assert.deepEqual(figureBundle(await figureImages('unit-line', figure.svg)), image);
  });

  it('showPhotos: HTML thumbnails with a text/plain line naming each photo', async () => {
    const dir = tempDir();
    const file = join(dir, 'a.jpg');
    writeFileSync(file, jpeg.encode({ data: new Uint8Array(8 * 8 * 4).fill(128), width: 8, height: 8 }, 90).data);
    const { d, shown } = collect();
    showPhotos([{ file, caption: 'cos 0.35 <x>' }], 96, d);
    assert.equal(shown[0]!.data['text/plain'], '[1 photo: a.jpg (cos 0.35 <x>)]');
    assert.match(shown[0]!.data['text/html']!, /<img src="data:image\/jpeg;base64,[A-Za-z0-9+/]+=*" width="96" alt="cos 0.35 &lt;x&gt;"\/>/);
  });

  it('notebookDisplay: through tslab\'s writer inside a kernel (display id, then updates in place), else text on stdout', () => {
    const calls: { msg: unknown; update: boolean }[] = [];
    const key = join('/nowhere', 'node_modules', 'tslab', 'dist', 'jupyter.js');
    const fake = { lastWriteDisplayData: (msg: unknown, update: boolean) => calls.push({ msg, update }) };
    const bundle = { data: { 'text/plain': 'x' }, metadata: {} };
    const lines: string[] = [];
    const log = console.log;
    console.log = (s: string) => lines.push(s);
    try {
      notebookDisplay().output(bundle); // no kernel: the text
    } finally {
      console.log = log;
    }
    assert.deepEqual(lines, ['x']);
    require.cache[key] = { exports: fake } as NodeJS.Module;
    try {
      const d = notebookDisplay('abc');
      d.output(bundle);
      d.output(bundle);
      notebookDisplay().output(bundle);
    } finally {
      delete require.cache[key];
    }
    assert.deepEqual(calls, [
      { msg: { data: { 'text/plain': 'x' }, metadata: {}, transient: { display_id: 'abc' } }, update: false },
      { msg: { data: { 'text/plain': 'x' }, metadata: {}, transient: { display_id: 'abc' } }, update: true },
      { msg: { data: { 'text/plain': 'x' }, metadata: {}, transient: {} }, update: false },
    ]);
  });
});
