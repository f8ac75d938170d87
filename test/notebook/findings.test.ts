import { strict as assert } from 'node:assert';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CorruptFileError } from '../../src/errors';
import { WindowValue, controlFindings, directionFindings, mainTableFindings, readFigureValues, rowsSummary, scalingFindings } from '../../src/notebook/findings';
import { readResults } from '../../src/pipeline/repro';
import { REPO, tempDir } from '../helpers';

const ms = (mean: number, std: number) => ({ mean, std });
/** every metric equal: r_mean `final` / `val` (mean, std) */
const row = (name: string, kind: string, pairs: number, final: [number, number], val: [number, number], runs = 10, wallSeconds: number | null = null) => {
  const s = (m: [number, number]) => Object.fromEntries(['ir1', 'ir5', 'ir10', 'tr1', 'tr5', 'tr10', 'rMean'].map((k) => [k, ms(...m)])) as never;
  return { name, kind, pairs, runs, wallSeconds, curve: [], selections: { final: s(final), val: s(val), test: s(val) } };
};

describe('notebook findings: the "what the full run shows" text, computed from results files', () => {
  it('main table: verdicts by pooled std at every budget and rule, the best coreset on validation, KD and the budget trend', () => {
    const methods = [
      row('full', 'full', -1, [9, 1], [10, 1]),
      row('random-100', 'coreset', 100, [2, 0.2], [2, 0.2], 5),
      row('loss-easy-100', 'coreset', 100, [2.5, 0.2], [3, 0.2], 5),
      row('lors-100', 'method', 100, [4, 0.2], [5, 0.2]),
      row('ptm-st-100', 'method', 100, [4.1, 0.2], [6, 0.2]),
      row('ptm-st-kd-100', 'variant', 100, [8.1, 0.3], [8, 0.3]),
      row('random-500', 'coreset', 500, [3, 0.2], [3.5, 0.2], 5),
      row('lors-500', 'method', 500, [5, 0.2], [5.5, 0.2]),
      row('ptm-st-500', 'method', 500, [5.5, 0.4], [7, 0.2]),
    ];
    const md = mainTableFindings({ name: 'unit', methods });
    const lines = md.split('\n');
    assert.equal(lines[0], "*Rendered from `figures/unit.json` (the committed full run; quick mode's shapes numbers above say nothing about Flickr8k).*");
    // best coreset on validation: loss-easy (3) at 100, random (3.5) at 500; LoRS and PTM-ST against it: gaps (4-2.5)/0.2 = 7.5,
    // (5-3)/0.2 = 10, (4.1-2.5)/0.2 = 8, (6-3)/0.2 = 15; at 500 (5-3)/0.2 = 10, (5.5-3.5)/0.2 = 10, 2.5/√0.1 = 7.9, 17.5
    assert.equal(
      lines[2],
      '- **Distillers above the best coreset: holds at every budget and distiller under both rules.** The best coreset on validation is loss-easy coreset at 100, random coreset at 500; ' +
        'the gaps of the distillers (LoRS and PTM-ST) to it: 7.5–17.5 pooled std (100 pairs, validation: LoRS 5.00, PTM-ST 6.00 against 3.00).',
    );
    // PTM-ST > LoRS: 100 final 0.1/0.2 = 0.5 (tie), val 5 (holds); 500 final 0.5/√0.1 = 1.58, val 7.5
    assert.equal(
      lines[3],
      '- **PTM-ST > LoRS: holds in 3, a tie in 1 of 4 (budget, rule) cells.** 100 pairs: final epoch 4.10 vs 4.00 (+0.5 std, tie), validation 6.00 vs 5.00 (+5.0 std); ' +
        '500 pairs: final epoch 5.50 vs 5.00 (+1.6 std), validation 7.00 vs 5.50 (+7.5 std).',
    );
    // KD: (8.1-4.1)/√((0.09+0.04)/2) = 15.7, (8-6)/0.255 = 7.8; 8.1 / 9 = 90%
    assert.equal(lines[4], '- **KD from the full-data teacher against the same row without it: holds at every KD row under both rules** (7.8–15.7 pooled std). Highest at the final epoch: PTM-ST + KD at 100 pairs, 8.10 ± 0.30, 90% of full-data training (9.00 ± 1.00).');
    assert.equal(lines[5], '- **Budget** (100 → 500 pairs, validation-selected r_mean): PTM-ST 6.00 → 7.00.');
    assert.equal(lines.length, 6);
  });

  it('scaling: a table per fraction, trends with shares of full data, PTM-ST against LoRS, final against validation', () => {
    const file = (fraction: number, full: number, ptm: [number, number], lors: number) => ({
      name: `s-${fraction * 100}`,
      config: { data: { trainFraction: fraction }, eval: { runs: 5 } } as never,
      methods: [row('full', 'full', -1, [full, 0.5], [full, 0.5]), row('random-100', 'coreset', 100, [2, 0.1], [2, 0.1], 5), row('lors-100', 'method', 100, [lors, 0.2], [lors, 0.2], 5), row('ptm-st-100', 'method', 100, [ptm[0], 0.2], [ptm[1], 0.2], 5)],
    });
    const md = scalingFindings([file(1, 10, [4, 7], 5), file(0.5, 8, [4.5, 5], 5)]);
    const lines = md.split('\n');
    assert.equal(lines[0], '*Rendered from `figures/s-50.json` and `figures/s-100.json` (the committed full run; test r_mean, final epoch / best on validation, mean ± std).*');
    assert.deepEqual(lines.slice(2, 8), ['|method|50%|100%|', '|:-|:-|:-|', '|full data|8.0 ± 0.5 / 8.0 ± 0.5|10.0 ± 0.5 / 10.0 ± 0.5|', '|random coreset, 100 pairs|2.0 ± 0.1 / 2.0 ± 0.1|2.0 ± 0.1 / 2.0 ± 0.1|', '|LoRS, 100 pairs|5.0 ± 0.2 / 5.0 ± 0.2|5.0 ± 0.2 / 5.0 ± 0.2|', '|PTM-ST, 100 pairs|4.5 ± 0.2 / 5.0 ± 0.2|4.0 ± 0.2 / 7.0 ± 0.2|']);
    assert.equal(lines[9], '- **Validation-selected r_mean as the training split grows (50% → 100%):** full data 8.0 → 10.0, grows at every step; random coreset, 100 pairs 2.0 → 2.0, not at every step; LoRS, 100 pairs 5.0 → 5.0 (63%, 50% of full data), not at every step; PTM-ST, 100 pairs 5.0 → 7.0 (63%, 70% of full data), grows at every step.');
    assert.equal(lines[10], '- **PTM-ST against LoRS, validation-selected:** 100 pairs 50%: 5.0 vs 5.0 (+0.0 std, tie), 100%: 7.0 vs 5.0 (+10.0 std).');
    assert.equal(lines[11], '- **Final epoch against best on validation:** PTM-ST, 100 pairs: final 4.5, 4.0 against validation 5.0, 7.0.');
    assert.equal(lines[12], '- Each distilled cell: 5 students (1 distillation seed × 5 students); gaps under one pooled std are ties.');
  });

  it('control: MNIST from the figure data, retrieval windows from the results, the random coreset from the main table', () => {
    const values: WindowValue[] = [
      ...[80, 85, 90].map((m, e) => ({ task: 'MNIST classification (test accuracy, %)', series: 'students (window [t, t+1])', epoch: e, mean: m, lo: m - 1, hi: m + 1 })),
      ...[10, 86, 88, 89].map((m, e) => ({ task: 'MNIST classification (test accuracy, %)', series: 'teacher at epoch t', epoch: e, mean: m, lo: m, hi: m })),
      ...[0.5, 6, 9].map((m, e) => ({ task: 'flickr8k retrieval (test r_mean, %)', series: 'teacher at epoch t', epoch: e, mean: m, lo: m, hi: m })),
    ];
    const control = {
      name: 'ctl',
      config: { data: { dataset: 'flickr8k' }, buffer: { epochs: 4 }, methods: [0, 2].map((t) => ({ name: `window-${t}-100`, overrides: { phases: [{ start: [t, t] }] } })) } as never,
      methods: [row('window-2-100', 'method', 100, [1, 0.1], [1.5, 0.1], 10, 600), row('window-0-100', 'method', 100, [5, 0.3], [5.2, 0.4], 10, 480)],
    };
    const md = controlFindings({ figure: { file: 'figures/c.vl.json', values }, control, main: { name: 'main', methods: [row('random-100', 'coreset', 100, [2, 0.3], [2, 0.4], 5)] } });
    const lines = md.split('\n');
    assert.equal(lines[0], '*Rendered from `figures/c.vl.json`, `figures/ctl.json` and `figures/main.json` (the committed full run; quick mode prints its own numbers above).*');
    // last against first window: (90-80)/1 = 10 pooled std; best t = 2 of 3 epochs; students above the teacher at t = 0 and 1
    assert.equal(lines[2], "- **Unimodal (MNIST, test accuracy):** students from the window [0, 1] 80.0 ± 1.0 %, from the last window (t = 2) 90.0 ± 1.0 % (+10.0 pooled std); best t = 2 of 3 epochs (67%): 90.0 ± 1.0 %. The students beat the teacher's own accuracy at epoch t in 2 of 3 windows.");
    assert.equal(
      lines[3],
      '- **Multimodal (flickr8k retrieval, test r_mean, validation-selected; final epoch in brackets):** t = 0: 5.20 ± 0.40 (5.00 ± 0.30); t = 2: 1.50 ± 0.10 (1.00 ± 0.10). Best t = 0 of 4 epochs (0%). ' +
        'The random coreset of 100 pairs (`figures/main.json`): 2.00 ± 0.40; windows below it: t = 2. The teacher itself goes from 6.00 at epoch 1 to 9.00 at epoch 2 (epoch 0, untrained: 0.50).',
    );
    assert.equal(lines[4], '- Start epochs not run for retrieval: 1 and 3 (a window took 8–10 minutes here).');
  });

  it('gradient directions: off-diagonal mean, consecutive windows with the lowest pair, first against last', () => {
    const cos = { original: [[1, 0.2, 0.1], [0.2, 1, 0.9], [0.1, 0.9, 1]], shortcut: [[1, 0.8, 0.4], [0.8, 1, 0.8], [0.4, 0.8, 1]] };
    const directions = Object.entries(cos).flatMap(([k, m]) => m.flatMap((r, from) => r.map((cosine, to) => ({ kind: `${k} trajectories`, from, to, cosine }))));
    const profile = Object.entries(cos).flatMap(([k, m]) => [0, 1].map((start) => ({ kind: `${k} trajectories`, measure: 'cosine with the next start epoch', start, value: m[start]![start + 1]! })));
    const lines = directionFindings({ directions: { file: 'd.vl.json', values: directions }, profile: { file: 'p.vl.json', values: profile } }).split('\n');
    // off-diagonal: original (0.2+0.1+0.9)·2/6 = 0.4, shortcut (0.8+0.4+0.8)·2/6 = 0.667
    assert.equal(lines[2], '- **Mean off-diagonal cosine (how much all start epochs agree):** original trajectories 0.400, shortcut trajectories 0.667; the shortcut trajectories agree more.');
    assert.equal(lines[3], '- **Consecutive windows (t, t + 1), mean cosine:** original trajectories 0.550 (lowest 0.20, epochs 0 and 1); shortcut trajectories 0.800 (lowest 0.80, epochs 0 and 1).');
    assert.equal(lines[4], '- **First against last start epoch:** original trajectories 0.10 (epochs 0 and 2), shortcut trajectories 0.40 (epochs 0 and 2).');
  });

  it('the committed results render: notebook 03 counts seven coresets; a figure spec without data is one clear error', async () => {
    const main = await readResults(join(REPO, 'figures', 'flickr8k-main.json'));
    assert.match(rowsSummary(main), /^\*\*Rows of `figures\/flickr8k-main\.json`:\*\* full-data training; 7 coresets \(random, herding, kcenter, forgetting, loss-hard, loss-easy and kmeans\); MTT-VL, LoRS, PTM-ST and AMD as configurations/);
    // the sentence carries the file's own numbers (the highest KD row at the final epoch, its share of full data)
    const final = (name: string) => main.methods.find((m) => m.name === name)!.selections.final.rMean;
    const [kd, full] = [final('ptm-st-kd-500'), final('full')];
    const share = Math.round((100 * kd.mean) / full.mean);
    const text = `PTM-ST + KD at 500 pairs, ${kd.mean.toFixed(2)} ± ${kd.std.toFixed(2)}, ${share}% of full-data training (${full.mean.toFixed(2)} ± ${full.std.toFixed(2)})`;
    assert.ok(mainTableFindings(main).includes(text), text);
    const bad = join(tempDir(), 'x.vl.json');
    writeFileSync(bad, JSON.stringify({ mark: 'line' }));
    assert.throws(() => readFigureValues(bad, WindowValue), (e: unknown) => e instanceof CorruptFileError && /x\.vl\.json.*figure data: data: /.test(String(e)));
  });
});
