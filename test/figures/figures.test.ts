import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PNG } from 'pngjs';
import { budgetFigure, checkpointFigure, comparisonFigure, familyLabel, gainFigure, lossFigure, methodBudget, type ResultsLike, scalingFigure } from '../../src/figures/charts';
import { PNG_SCALE, renderFigure, renderSvg, saveFigure, svgToPng } from '../../src/figures/render';
import { budgetTable, crossDatasetTable, gainTable, gap, orderingTable, paperOrderings, resultsCsv, resultsMarkdown, resultsTable, scalingTable } from '../../src/figures/tables';
import { checkpointCurve } from '../../src/evaluate/summary';
import type { Checkpoint } from '../../src/evaluate/student';
import type { Retrieval } from '../../src/model/retrieval';
import { REPO, tempDir } from '../helpers';

const svgSize = (svg: string) => {
  assert.equal(XMLValidator.validate(svg), true, 'the SVG is well-formed XML');
  const root = (new XMLParser({ ignoreAttributes: false }).parse(svg) as { svg: Record<string, string> }).svg;
  return { width: Number(root['@_width']), height: Number(root['@_height']) };
};

const ms = (mean: number, std: number) => ({ mean, std });
const summary = (r: number, s = 0.5) => ({ ir1: ms(r, s), ir5: ms(r, s), ir10: ms(r, s), tr1: ms(r, s), tr5: ms(r, s), tr10: ms(r, s), rMean: ms(r, s) });
const curve = (top: number) => [0, 1].flatMap((subset) => [0, 5, 10].map((epoch) => ({ subset, epoch, val: ms(top - 1 + epoch / 10, 0.2), test: ms(top - 2 + epoch / 10, 0.3) })));
const results: ResultsLike = {
  name: 'unit',
  provenance: ['data: shapes', 'encoders: a + b', 'evaluation: 3 runs (seed 0)'],
  config: { eval: { epochs: 10 } },
  methods: [
    { name: 'full', kind: 'full', pairs: -1, runs: 2, selections: { final: summary(20), val: summary(21), test: summary(22) }, curve: [] },
    { name: 'random-100', kind: 'coreset', pairs: 100, runs: 3, selections: { final: summary(2, 0.4), val: summary(3), test: summary(4) }, curve: curve(2) },
    { name: 'ptmst-100', kind: 'distill', pairs: 99, runs: 3, selections: { final: summary(5, 0.1), val: summary(6), test: summary(7) }, curve: curve(5) },
  ],
};

describe('figures: vega-lite specs rendered to SVG and PNG', function () {
  this.timeout(120000);

  it('regenerates every committed figure from its .vl.json: the SVG parses, the PNG decodes at the committed size', async () => {
    const dir = join(REPO, 'figures');
    const specs = readdirSync(dir).filter((f) => f.endsWith('.vl.json'));
    assert.ok(specs.length >= 4, `committed figure specs: ${specs.join(', ')}`);
    for (const f of specs) {
      const spec = JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown>;
      assert.match(String(spec.description), /seed/, `${f}: its caption names the seeds`);
      const svg = await renderSvg(spec);
      const { width, height } = svgSize(svg);
      const { png } = await svgToPng(svg);
      const decoded = PNG.sync.read(Buffer.from(png));
      assert.deepEqual([decoded.width, decoded.height], [Math.round(width * PNG_SCALE), Math.round(height * PNG_SCALE)], f);
      const committed = PNG.sync.read(readFileSync(join(dir, f.replace('.vl.json', '.png'))));
      assert.deepEqual([committed.width, committed.height], [decoded.width, decoded.height], `${f}: committed PNG size`);
      // not blank: the rendered marks leave more than a few non-white pixels
      let ink = 0;
      for (let i = 0; i < decoded.data.length; i += 4) if (decoded.data[i]! < 200) ink++;
      assert.ok(ink > 1000, `${f}: ${ink} dark pixels`);
    }
  });

  it('budget figure: one point per method and rule, error bars at mean ∓ std, the full-data line without a budget', () => {
    const f = budgetFigure(results);
    const values = (f.spec as { data: { values: { method: string; selection: string; budget: number | null; mean: number; lo: number; hi: number }[] } }).data.values;
    assert.equal(values.length, 3 * 3);
    const p = values.find((v) => v.method === 'PTM-ST' && v.selection === 'final epoch')!;
    assert.deepEqual([p.budget, p.mean, p.lo, p.hi], [100, 5, 4.9, 5.1]);
    const test = values.find((v) => v.method === 'random coreset' && v.selection.startsWith('best on test'))!;
    assert.match(test.selection, /test split/);
    assert.equal(values.find((v) => v.method === 'full data')!.budget, null);
    assert.match(f.caption, /ptmst-100 99/);
    assert.equal(methodBudget({ name: 'ptmst-500', pairs: 499 }), 500);
  });

  it('checkpoint figure: steps run across subsets, a boundary where the second subset starts', () => {
    const values = (checkpointFigure(results).spec as { data: { values: { step: number; boundary?: boolean; split?: string; method?: string }[] } }).data.values;
    assert.deepEqual([...new Set(values.filter((v) => !v.boundary).map((v) => v.step))].sort((a, b) => a - b), [0, 5, 10, 15, 20]);
    assert.deepEqual(values.filter((v) => v.boundary).map((v) => v.step), [10, 10]);
    assert.equal(values.filter((v) => v.method === 'full data').length, 0);
  });

  it('comparison figure: one point per row and rule in the results\' order, the full-data row left out; it renders', async () => {
    const f = comparisonFigure(results, 'unit-rows');
    const spec = f.spec as { data: { values: { row: string; selection: string; mean: number; lo: number; hi: number }[] }; spec: { layer: { encoding: { x: { sort: string[] } } }[] } };
    assert.deepEqual(spec.data.values.map((v) => [v.row, v.selection, v.mean, v.lo, v.hi]), [
      ['random-100', 'final epoch', 2, 1.6, 2.4],
      ['random-100', 'best on validation', 3, 2.5, 3.5],
      ['ptmst-100', 'final epoch', 5, 4.9, 5.1],
      ['ptmst-100', 'best on validation', 6, 5.5, 6.5],
    ]);
    assert.deepEqual(spec.spec.layer[0]!.encoding.x.sort, ['random-100', 'ptmst-100']);
    assert.match(f.caption, /ptmst-100 \(99 pairs, 3 runs\)/);
    const svg = (await renderFigure(f)).svg;
    assert.match(svg, /ptmst-100/);
  });

  it('colours: every family of a figure gets its own; PTM-ST blue, random orange, full data green', () => {
    const families = ['full', 'random-100', 'herding-100', 'kcenter-100', 'forgetting-100', 'loss-hard-100', 'loss-easy-100', 'kmeans-100', 'mtt-vl-100', 'lors-100', 'ptm-st-100', 'ptm-st-union-100', 'amd-100', 'random-kd-100', 'loss-easy-kd-100', 'ptm-st-kd-100', 'base-100', 'base-ema-100'];
    const many: ResultsLike = { ...results, methods: families.map((name) => ({ ...results.methods[1]!, name, pairs: name === 'full' ? -1 : 100 })) };
    const scale = (budgetFigure(many).spec as { spec: { layer: { encoding: { color: { scale: { domain: string[]; range: string[] } } } }[] } }).spec.layer[0]!.encoding.color.scale;
    assert.equal(scale.domain.length, families.length);
    assert.equal(new Set(scale.range).size, families.length, 'no two families share a colour');
    const of = (label: string) => scale.range[scale.domain.indexOf(label)];
    assert.deepEqual([of('PTM-ST'), of('random coreset'), of('full data')], ['#4c78a8', '#f58518', '#54a24b']);
  });

  it('family labels come from the registries; KD rows say so', () => {
    assert.deepEqual(
      ['lors-500', 'mtt-vl-100', 'amd-200', 'amd-async-100', 'amd-async-dynamic-100', 'kmeans-100', 'random-kd-100', 'ptm-st-kd-500', 'base-ema-500', 'full'].map(familyLabel),
      ['LoRS', 'MTT-VL', 'AMD', 'AMD (async)', 'AMD (async+dyn)', 'kmeans coreset', 'random coreset + KD', 'PTM-ST + KD', '+EMA', 'full data'],
    );
  });

  it('saveFigure writes .svg, .png and .vl.json (spec with data and caption) that agree', async () => {
    const dir = tempDir('ptmst-fig-');
    const saved = await saveFigure(lossFigure([{ losses: [3, 2, 1.5, 1.2] }, { losses: [2, 1] }], { name: 'loss-unit', caption: 'unit caption, seed 0.' }), dir);
    const spec = JSON.parse(readFileSync(saved.files.spec, 'utf8')) as { description: string; data: { values: unknown[] } };
    assert.match(spec.description, /^unit caption, seed 0\./);
    assert.equal(spec.data.values.length, 6);
    assert.equal(readFileSync(saved.files.svg, 'utf8'), saved.svg);
    const png = PNG.sync.read(readFileSync(saved.files.png));
    assert.deepEqual([png.width, png.height], [saved.width, saved.height]);
    const { width } = svgSize(saved.svg);
    assert.equal(png.width, Math.round(width * PNG_SCALE));
  });

  it('a spec that does not compile is an error naming the figure', async () => {
    await assert.rejects(renderFigure({ name: 'bad', caption: '', spec: { mark: 'nonsense' } }), /figure bad/);
  });
});

describe('tables (arquero)', () => {
  const rows = results.methods.map((m) => ({ method: m.name, pairs: m.pairs < 0 ? 'all' : m.pairs, runs: m.runs, summary: m.selections as never }));

  it('tidy table: one row per method × rule, means and stds as numbers', () => {
    const t = resultsTable(rows);
    assert.equal(t.numRows(), 9);
    const csv = resultsCsv(rows).trim().split('\n');
    assert.equal(csv.length, 10);
    assert.ok(csv[0]!.startsWith('method,pairs,runs,selection,ir1_mean,ir1_std'));
    assert.ok(csv.includes('ptmst-100,99,3,final,5,0.1,5,0.1,5,0.1,5,0.1,5,0.1,5,0.1,5,0.1'), csv.join('\n'));
  });

  it('Markdown: provenance, one block per rule, "mean ± std"', () => {
    const md = resultsMarkdown('T', results.provenance, rows);
    assert.match(md, /- data: shapes/);
    assert.match(md, /## Selection: best on test \(reference rule; selected on the test split\)/);
    assert.match(md, /\|ptmst-100\|99\|3\|5\.0 ± 0\.1\|/);
  });
});

describe('scaling and paper-layout tables', () => {
  const m = (name: string, pairs: number, r: number, runs = 5) => ({ name, kind: 'x', pairs, runs, selections: { final: summary(r, 0.25), val: summary(r + 1, 0.5), test: summary(r + 2) }, curve: [] });
  it('budgetTable: a row per family, a column per budget (full data under "all"), missing cells "—"', () => {
    const t = budgetTable([m('full', -1, 9), m('lors-100', 100, 3), m('lors-500', 500, 5, 10), m('random-100', 100, 2)], 'val').objects();
    assert.deepEqual(t, [
      { method: 'full', 100: '—', 500: '—', all: '10.0 ± 0.5 (5)' },
      { method: 'lors', 100: '4.0 ± 0.5 (5)', 500: '6.0 ± 0.5 (10)', all: '—' },
      { method: 'random', 100: '3.0 ± 0.5 (5)', 500: '—', all: '—' },
    ]);
    assert.deepEqual(budgetTable([m('lors-100', 100, 3)], 'val').columnNames(), ['method', '100'], 'the method column comes first');
  });
  const at = (fraction: number | undefined, rows: ReturnType<typeof m>[], methods: { name: string; kind: string; of?: string; eval?: { testDataset?: string } }[] = []) => ({
    ...results,
    name: `s${fraction ?? 1}`,
    config: { eval: { epochs: 10 }, data: fraction === undefined ? {} : { trainFraction: fraction }, methods },
    methods: rows,
  });
  it('scalingTable: a column per fraction and rule, runs in brackets; scalingFigure: one point per row, fraction and rule', () => {
    const quarter = at(0.25, [m('random-100', 100, 1)]);
    const whole = at(undefined, [m('random-100', 100, 2), m('lors-100', 100, 3)]);
    assert.deepEqual(scalingTable([quarter, whole]).objects(), [
      { method: 'random-100', '25% final': '1.0 ± 0.3 (5)', '25% val-selected': '2.0 ± 0.5 (5)', '100% final': '2.0 ± 0.3 (5)', '100% val-selected': '3.0 ± 0.5 (5)' },
      { method: 'lors-100', '25% final': '—', '25% val-selected': '—', '100% final': '3.0 ± 0.3 (5)', '100% val-selected': '4.0 ± 0.5 (5)' },
    ]);
    const values = (scalingFigure([quarter, whole], { name: 'u' }).spec as { data: { values: { percent: number; line: string; mean: number; lo: number }[] } }).data.values;
    assert.equal(values.length, 6);
    assert.deepEqual(values.filter((v) => v.percent === 25).map((v) => [v.line, v.mean, v.lo]), [['random coreset, 100 pairs', 1, 0.75], ['random coreset, 100 pairs', 2, 1.5]]);
  });
  it('crossDatasetTable pairs each row with its variant scored on the other dataset (the full row with the full row)', () => {
    const r = at(undefined, [m('full', -1, 9), m('lors-100', 100, 3), m('full-coco', -1, 1), m('lors-coco-100', 100, 0.5)], [
      { name: 'full', kind: 'full' },
      { name: 'lors-100', kind: 'method' },
      { name: 'full-coco', kind: 'full', eval: { testDataset: 'coco-mini' } },
      { name: 'lors-coco-100', kind: 'variant', of: 'lors-100', eval: { testDataset: 'coco-mini' } },
    ]);
    assert.deepEqual((crossDatasetTable(r, 'coco-mini').objects() as Record<string, unknown>[]).map((o) => [o.method, o.pairs, o['own test, final'], o['coco-mini, final']]), [
      ['full', 'all', '9.0 ± 0.3', '1.0 ± 0.3'],
      ['lors-100', 100, '3.0 ± 0.3', '0.5 ± 0.3'],
    ]);
  });
});

describe('orderings in units of pooled std', () => {
  it('gap: difference of means over √((s_a² + s_b²)/2), by hand', () => {
    const g = gap(ms(7, 0.3), ms(5, 0.4)); // pooled = √((0.09 + 0.16)/2) = √0.125
    assert.equal(g.diff, 2);
    assert.ok(Math.abs(g.pooledStd - Math.sqrt(0.125)) < 1e-12);
    assert.ok(Math.abs(g.inStd - 2 / Math.sqrt(0.125)) < 1e-12);
    assert.deepEqual(gap(ms(3, 0), ms(3, 0)), { diff: 0, pooledStd: 0, inStd: 0 });
    assert.equal(gap(ms(2, 0), ms(3, 0)).inStd, -Infinity);
  });

  it('orderingTable: a row per claim and rule, yes / tie / no at ±1 pooled std, absent rows skipped', () => {
    const t = orderingTable(results.methods, [['ptmst-100', 'random-100'], ['random-100', 'ptmst-100'], ['ptmst-100', 'lors-100']]).objects() as Record<string, unknown>[];
    assert.equal(t.length, 4, 'two claims × two rules; lors-100 is absent');
    const [final, val, backwards] = t;
    assert.deepEqual([final!.claim, final!.rule, final!.a, final!.b, final!.gap], ['ptmst-100 > random-100', 'final epoch', 5, 2, 3]);
    assert.equal(final!['gap / pooled std'], 10.3); // 3 / √((0.01 + 0.16)/2) = 10.29, shown to one decimal
    assert.equal(final!.holds, 'yes');
    assert.equal(val!.holds, 'yes'); // 6 vs 3, stds 0.5: 6 pooled stds
    assert.equal(backwards!.holds, 'no');
    const near = orderingTable(results.methods, [['ptmst-100', 'random-100']], { selections: ['val'], clear: 10 }).objects() as Record<string, unknown>[];
    assert.equal(near[0]!.holds, 'tie', 'a 6-std gap is a tie when 10 are asked for');
  });

  it('gainFigure: one point per row and rule at its budget, the gain ± the pooled std, a KD row against random + KD', () => {
    const row = (name: string, pairs: number, mean: number, std: number) => ({ name, kind: 'method', pairs, runs: 5, selections: { final: { rMean: ms(mean, std) }, val: { rMean: ms(mean + 1, std) }, test: { rMean: ms(mean + 2, std) } } });
    const r = { ...results, methods: [row('full', -1, 9, 1), row('random-100', 100, 2, 0.3), row('ptm-st-100', 100, 5, 0.4), row('random-kd-100', 100, 3, 0.3), row('ptm-st-kd-100', 100, 6, 0.4)] } as unknown as ResultsLike;
    const f = gainFigure(r);
    assert.equal(f.name, `${results.name}-gains`);
    const values = (f.spec as { data: { values: { method: string; budget: number; selection: string; mean: number; lo: number; hi: number; against: string }[] } }).data.values;
    assert.deepEqual(values.map((v) => [v.method, v.against, v.selection, v.mean]), [
      ['PTM-ST', 'random-100', 'final epoch', 3],
      ['PTM-ST', 'random-100', 'best on validation', 3],
      ['random coreset + KD', 'random-100', 'final epoch', 1],
      ['random coreset + KD', 'random-100', 'best on validation', 1],
      ['PTM-ST + KD', 'random-kd-100', 'final epoch', 3],
      ['PTM-ST + KD', 'random-kd-100', 'best on validation', 3],
    ]);
    // pooled std √((0.16 + 0.09)/2) = 0.3536
    assert.ok(Math.abs(values[0]!.hi - values[0]!.lo - 2 * Math.sqrt(0.125)) < 1e-12);
    assert.match(f.caption, /KD's own share is not credited to the data/);
  });

  it('gainTable: each row against the random coreset of its size and protocol; KD rows against random + KD', () => {
    const row = (name: string, pairs: number, mean: number, std: number) => ({ name, pairs, selections: { final: { rMean: ms(mean, std) }, val: { rMean: ms(mean + 1, std) }, test: { rMean: ms(mean + 2, std) } } });
    const methods = [
      row('full', -1, 9, 1),
      row('random-100', 100, 2, 0.2),
      row('ptm-st-100', 100, 5, 0.4),
      row('random-kd-100', 100, 3, 0.2),
      row('ptm-st-kd-100', 100, 6, 0.2),
      row('lors-200', 200, 4, 0.5), // no random-200: left out
    ];
    const t = gainTable(methods, { selections: ['final'] }).objects() as Record<string, unknown>[];
    assert.deepEqual(
      t.map((r) => [r.method, r['against (same size, same protocol)'], r.r_mean, r['baseline r_mean'], r.gain]),
      [
        ['ptm-st-100', 'random-100', 5, 2, 3],
        ['random-kd-100', 'random-100', 3, 2, 1],
        ['ptm-st-kd-100', 'random-kd-100', 6, 3, 3],
      ],
    );
    // 3 / √((0.16 + 0.04)/2) = 9.49; 1 / 0.2 = 5; 3 / 0.2 = 15
    assert.deepEqual(t.map((r) => r['gain / pooled std']), [9.5, 5, 15]);
    assert.equal(gainTable(methods).objects().length, 6, 'final and best on validation by default');
    // soft-alpha KD rows go against the random coreset with the same weighting
    const soft = gainTable([...methods, row('random-kdsoft-100', 100, 2.5, 0.2), row('ptm-st-kdsoft-100', 100, 5.5, 0.2)], { selections: ['final'] }).objects() as Record<string, unknown>[];
    assert.deepEqual(soft.slice(3).map((r) => [r.method, r['against (same size, same protocol)'], r.gain]), [['random-kdsoft-100', 'random-100', 0.5], ['ptm-st-kdsoft-100', 'random-kdsoft-100', 3]]);
  });
});

describe('the paper\'s claims', () => {
  it('paperOrderings: per budget, PTM-ST > LoRS > MTT-VL > the coreset best on validation, KD rows against their source', () => {
    const row = (name: string, kind: string, val: number) => ({ name, kind, pairs: Number(name.split('-').pop()), selections: { final: { rMean: ms(1, 0) }, val: { rMean: ms(val, 0) }, test: { rMean: ms(99 - val, 0) } } });
    const rows = [
      { ...row('full', 'full', 9), pairs: -1 },
      row('random-100', 'coreset', 2),
      row('herding-100', 'coreset', 3), // best on validation (the test column says otherwise, and is not read)
      row('ptm-st-100', 'method', 6),
      row('lors-100', 'method', 5),
      row('mtt-vl-100', 'method', 4),
      row('ptm-st-kd-100', 'variant', 7),
      row('random-500', 'coreset', 3),
      row('ptm-st-500', 'method', 7),
    ];
    assert.deepEqual(paperOrderings(rows), [
      ['ptm-st-100', 'lors-100'],
      ['lors-100', 'mtt-vl-100'],
      ['mtt-vl-100', 'herding-100'],
      ['lors-100', 'herding-100'],
      ['ptm-st-100', 'herding-100'],
      ['ptm-st-100', 'mtt-vl-100'],
      ['ptm-st-kd-100', 'ptm-st-100'],
      ['ptm-st-500', 'random-500'],
    ]);
  });
});

describe('checkpointCurve', () => {
  const r = (rMean: number): Retrieval => ({ ir1: 0, ir5: 0, ir10: 0, tr1: 0, tr5: 0, tr10: 0, rMean });
  const run = (...xs: number[]): Checkpoint[] => xs.map((x, i) => ({ subset: i >> 1, epoch: (i % 2) * 10, val: r(x + 1), test: r(x) }));

  it('mean and sample std over runs at every checkpoint', () => {
    const c = checkpointCurve([run(1, 2, 3, 4), run(3, 4, 5, 8)]);
    assert.deepEqual(c.map((p) => [p.subset, p.epoch]), [[0, 0], [0, 10], [1, 0], [1, 10]]);
    assert.deepEqual(c[3]!.test, { mean: 6, std: Math.sqrt(8) });
    assert.deepEqual(c[0]!.val, { mean: 3, std: Math.sqrt(2) });
  });

  it('runs with different checkpoint schedules are an error', () => {
    assert.throws(() => checkpointCurve([run(1, 2, 3, 4), run(1, 2, 3)]), /run 1 has another checkpoint schedule/);
  });
});
