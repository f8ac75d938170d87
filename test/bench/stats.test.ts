import { strict as assert } from 'node:assert';
import { median, quantile, scaleSummary, summarise } from '../../bench/stats';

describe('bench/stats', () => {
  it('interpolates quantiles linearly between order statistics (numpy default, R type 7)', () => {
    const v = [4, 1, 3, 2]; // unsorted on purpose
    assert.equal(median(v), 2.5);
    assert.equal(quantile(v, 0.25), 1.75); // numpy.quantile([1, 2, 3, 4], 0.25)
    assert.equal(quantile(v, 0.75), 3.25);
    assert.equal(quantile(v, 0), 1);
    assert.equal(quantile(v, 1), 4);
    assert.equal(median([7]), 7);
    assert.equal(median([1, 2, 10]), 2);
    assert.deepEqual(v, [4, 1, 3, 2], 'the input is not reordered');
  });

  it('summarises median, range and quartiles, and scales them', () => {
    const s = summarise([0.3, 0.1, 0.2, 0.5, 0.4]);
    assert.deepEqual(s, { n: 5, median: 0.3, min: 0.1, max: 0.5, q1: 0.2, q3: 0.4 });
    const kib = scaleSummary(summarise([1024, 2048]), 1 / 1024);
    assert.deepEqual(kib, { n: 2, median: 1.5, min: 1, max: 2, q1: 1.25, q3: 1.75 });
  });

  it('refuses an empty list, a NaN and a q outside [0, 1]', () => {
    assert.throws(() => median([]), /no values/);
    assert.throws(() => median([1, Number.NaN]), /NaN/);
    assert.throws(() => quantile([1], 1.5), /outside/);
  });
});
