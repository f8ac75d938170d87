/**
 * Every number in the documentation comes from a committed results file: the generated blocks of README.md and
 * docs/*.md are what figures/*.json say, every "mean ± std" anywhere in them is a value some results file holds,
 * and no prose carries a commit hash (dated measurements live in bench/results/).
 */
import { strict as assert } from 'node:assert';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { type DocResults, DocBlockError, findBlocks, findMeanStd, loadFigureResults, meanStdMentions, projectDocuments, refreshDocs, renderBlocks, renderDirective } from '../../src/figures/docs';
import { METRIC_KEYS, SELECTIONS } from '../../src/evaluate/summary';
import { REPO, tempDir } from '../helpers';

const summary = (rMean: number, std: number) =>
  Object.fromEntries(SELECTIONS.map((s, i) => [s, Object.fromEntries(METRIC_KEYS.map((k) => [k, { mean: k === 'rMean' ? rMean + i : 1, std: k === 'rMean' ? std : 0 }]))])) as DocResults['methods'][number]['selections'];

/** A hand-made results file: full data, a random coreset and PTM-ST at two budgets. */
const toy: DocResults = {
  name: 'toy',
  provenance: ['a toy table', 'data: none'],
  methods: [
    { name: 'full', kind: 'full', pairs: -1, runs: 10, selections: summary(9.126, 0.71) },
    { name: 'random-100', kind: 'coreset', pairs: 100, runs: 5, selections: summary(1.95, 0.34) },
    { name: 'ptm-st-100', kind: 'method', pairs: 99, runs: 10, selections: summary(4.534, 0.844) },
    { name: 'ptm-st-500', kind: 'method', pairs: 499, runs: 10, selections: summary(6.67, 0.25) },
  ],
};
const load = (name: string) => {
  if (name !== 'toy') throw new Error(`no ${name}`);
  return toy;
};

describe('docs: generated blocks', () => {
  it('renders the paper layout by hand-computed cells (final / val, runs in brackets, "all" last)', () => {
    const text = renderDirective('budget toy', load);
    const lines = text.split('\n');
    assert.equal(lines[0], '| method | 100 pairs | 500 pairs | all pairs |');
    // val is the rule with index 1: rMean + 1 in the toy summary
    assert.equal(lines[2], '| full data |  |  | 9.1 ± 0.7 / 10.1 ± 0.7 (10) |');
    assert.equal(lines[4], '| PTM-ST | 4.5 ± 0.8 / 5.5 ± 0.8 (10) | 6.7 ± 0.3 / 7.7 ± 0.3 (10) |  |');
    assert.equal(renderDirective('cell toy ptm-st-100 final', load), '4.53 ± 0.84');
    assert.equal(renderDirective('cell toy ptm-st-100 test digits=1', load), '6.5 ± 0.8');
    assert.equal(renderDirective('rows toy methods=random-100 rules=val', load).split('\n')[2], '| `random-100` | 5 | 2.95 ± 0.34 |');
  });

  it('rewrites a stale block, keeps inline blocks inline, and names the line of a bad directive', () => {
    const doc = 'Intro\n\n<!-- ptmst:budget toy families=ptm-st -->\n| stale |\n<!-- /ptmst -->\n\nPTM-ST reads <!-- ptmst:cell toy ptm-st-500 val -->0.00 ± 0.00<!-- /ptmst --> here.\n';
    const out = renderBlocks(doc, load, 'doc.md');
    assert.ok(!out.includes('stale'));
    assert.ok(out.includes('PTM-ST reads <!-- ptmst:cell toy ptm-st-500 val -->7.67 ± 0.25<!-- /ptmst --> here.'));
    assert.equal(renderBlocks(out, load, 'doc.md'), out, 'a second pass changes nothing');
    assert.equal(findBlocks(out).length, 2);
    assert.throws(() => renderBlocks('a\nb\n<!-- ptmst:cell toy lors-100 final --><!-- /ptmst -->', load, 'doc.md'), (e: Error) => e instanceof DocBlockError && /doc\.md:3/.test(e.message) && /no row "lors-100"/.test(e.message));
    assert.throws(() => renderDirective('tabel toy', load), /unknown directive "tabel"/);
  });

  it('finds a "mean ± std" in a results file only at the digits it is written with', () => {
    assert.match(findMeanStd('4.53', '0.84', [toy]) ?? '', /ptm-st-100, final epoch, rMean/);
    assert.ok(findMeanStd('4.5', '0.8', [toy]));
    assert.equal(findMeanStd('4.54', '0.84', [toy]), undefined, 'a typo is caught');
    assert.equal(findMeanStd('4.53', '0.85', [toy]), undefined);
    assert.deepEqual(meanStdMentions('x 4.53 ± 0.84, (−) 1 ± 2\n| 9.1 ± 0.7 / 9.5 ± 0.6 |').map((m) => [m.text, m.line]), [['4.53 ± 0.84', 1], ['1 ± 2', 1], ['9.1 ± 0.7', 2], ['9.5 ± 0.6', 2]]);
  });

  it('refreshDocs --check reports a hand-edited block and leaves the file as it was', async () => {
    const root = tempDir('ptmst-docs-');
    mkdirSync(join(root, 'figures'));
    mkdirSync(join(root, 'docs'));
    writeFileSync(join(root, 'figures', 'toy.json'), JSON.stringify(toy));
    const good = renderBlocks('<!-- ptmst:cell toy full final --><!-- /ptmst -->\n', load);
    writeFileSync(join(root, 'README.md'), good);
    writeFileSync(join(root, 'docs', 'results.md'), good.replace('9.13', '9.31'));
    assert.deepEqual(await refreshDocs(root, { check: true }), ['docs/results.md']);
    assert.ok(readFileSync(join(root, 'docs', 'results.md'), 'utf8').includes('9.31'), 'check mode writes nothing');
    assert.deepEqual(await refreshDocs(root), ['docs/results.md']);
    assert.deepEqual(await refreshDocs(root, { check: true }), []);
  });
});

describe('docs: the committed documents', () => {
  const docs = projectDocuments(REPO);
  const results = [...loadFigureResults(REPO).values()];

  it('README.md is a user\'s document of at most 12 KB, and docs/ holds the rest', () => {
    const size = readFileSync(join(REPO, 'README.md')).length;
    assert.ok(size <= 12 * 1024, `README.md is ${size} bytes`);
    for (const d of ['usage', 'method', 'results', 'performance', 'contributing']) assert.ok(docs.includes(join(REPO, 'docs', `${d}.md`)), `docs/${d}.md`);
  });

  it('every generated block is what its results file says (npm run docs)', async () => {
    assert.deepEqual(await refreshDocs(REPO, { check: true }), [], 'run npm run docs and commit the result');
  });

  it('every "mean ± std" in README.md and docs/ is a value a results file holds', () => {
    assert.ok(results.length >= 5, `${results.length} results files`);
    const strays = docs.flatMap((file) =>
      meanStdMentions(readFileSync(file, 'utf8'))
        .filter((m) => findMeanStd(m.mean, m.std, results) === undefined)
        .map((m) => `${relative(REPO, file)}:${m.line}: ${m.text}`),
    );
    assert.deepEqual(strays, []);
  });

  it('no prose names a commit (hashes outside code spans)', () => {
    const hashes = docs.flatMap((file) =>
      readFileSync(file, 'utf8')
        .split('\n')
        .flatMap((line, i) => {
          const prose = line.replace(/`[^`]*`/g, '').replace(/\([^)]*\.(md|json|png)\)/g, '');
          return [...prose.matchAll(/\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,40}\b/g)].map((m) => `${relative(REPO, file)}:${i + 1}: ${m[0]}`);
        }),
    );
    assert.deepEqual(hashes, []);
  });
});
