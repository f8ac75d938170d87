import { strict as assert } from 'node:assert';
import { type ProgressEvent, type ProgressSink, teeProgress } from '../../src/util/progress';
import { formatDuration, progressLines } from '../../src/util/progress-lines';

/** progressLines on a fake clock: `at(seconds, event)` sends the event at that time; `lines` is what was written. */
function harness(every?: number) {
  let ms = 0;
  const lines: string[] = [];
  const p = progressLines((l) => lines.push(l), { now: () => ms, ...(every !== undefined ? { every } : {}) });
  const at = (seconds: number, label: string, done: number, total: number, info?: ProgressEvent['info']) => {
    ms = seconds * 1000;
    p.sink({ label, done, total, ...(info ? { info } : {}) });
  };
  /** the lines written since the last call */
  let seen = 0;
  const fresh = () => lines.slice(seen, (seen = lines.length));
  return { at, fresh, stop: () => p.stop() };
}

describe('util/progress-lines', () => {
  it('start, periodic (rate, eta, info), done, restart, first seen complete, stop', () => {
    const { at, fresh, stop } = harness(); // every 30 s by default
    at(0, 'a', 0, 100);
    assert.deepEqual(fresh(), ['▶ a 0/100']);
    at(10, 'a', 20, 100, { loss: 0.9 });
    at(20, 'b', 5, 1000); // resumed: 5 were done before, they do not count toward the rate
    assert.deepEqual(fresh(), ['▶ b 5/1000']);
    at(29, 'b', 305, 1000);
    assert.deepEqual(fresh(), [], 'no periodic line before 30 s');
    // a: 50 in 40 s = 1.25/s, 50 left → 40 s; b: 300 in 20 s (at 40 s) = 15/s, 695 left → 46.3 s; 305/1000 = 30.5 %
    at(40, 'a', 50, 100, { loss: 0.123456, epoch: '2/5' });
    assert.deepEqual(fresh(), ['… a 50/100 (50%) 1.25/s, eta 40 s loss 0.1235 epoch 2/5', '… b 305/1000 (30%) 15.0/s, eta 46 s']);
    at(60, 'a', 70, 100, { loss: 0.05 });
    assert.deepEqual(fresh(), [], 'the next periodic line is 30 s after the last one');
    // b ends 180 s after its start; a: 70 in 200 s = 0.35/s, 30 left → 85.7 s, info of its last event
    at(200, 'b', 1000, 1000);
    assert.deepEqual(fresh(), ['✓ b 1000/1000 in 3 min 00 s', '… a 70/100 (70%) 0.35/s, eta 1 min 26 s loss 0.05000']);
    at(201, 'b', 1000, 1000);
    assert.deepEqual(fresh(), [], 'done is said once');

    // done going down and a new total are fresh starts
    at(210, 'a', 10, 100);
    at(215, 'a', 100, 100);
    at(220, 'c', 0, 10);
    at(221, 'c', 0, 20);
    assert.deepEqual(fresh(), ['▶ a 10/100', '✓ a 100/100 in 5 s', '▶ c 0/10', '▶ c 0/20']);
    // work finished before its only event: no start line, no made-up time
    at(222, 'captions', 500, 500);
    assert.deepEqual(fresh(), ['✓ captions 500/500']);

    // nothing counted yet: no rate and no eta; a label starting with this very event has just had its ▶ line
    at(225, 'd', 3, 9);
    at(240, 'd', 3, 9);
    assert.deepEqual(fresh(), ['▶ d 3/9', '… c 0/20 (0%)', '… d 3/9 (33%)']);
    at(270, 'e', 0, 4);
    assert.deepEqual(fresh(), ['▶ e 0/4', '… c 0/20 (0%)', '… d 3/9 (33%)']);

    stop();
    at(400, 'e', 4, 4);
    assert.deepEqual(fresh(), [], 'silent after stop()');
  });

  it('`every` sets the period; slow and fast rates, etas in hours', () => {
    const { at, fresh } = harness(5);
    at(0, 'slow', 0, 10000);
    at(0, 'fast', 0, 100000);
    // the periodic lines come with fast's event, before slow has counted anything;
    // fast: 1500 in 6 s = 250/s, 98500 left → 394 s
    at(6, 'fast', 1500, 100000);
    at(6, 'slow', 3, 10000);
    assert.deepEqual(fresh(), ['▶ slow 0/10000', '▶ fast 0/100000', '… slow 0/10000 (0%)', '… fast 1500/100000 (1%) 250/s, eta 6 min 34 s']);
    // slow: 4 in 100 s = 0.04/s, 9996 left → 249900 s = 69 h 25 min; fast: 1500 in 100 s = 15/s, 98500 left → 6567 s = 1 h 49 min 27 s
    at(100, 'slow', 4, 10000);
    assert.deepEqual(fresh(), ['… slow 4/10000 (0%) 0.040/s, eta 69 h 25 min', '… fast 1500/100000 (1%) 15.0/s, eta 1 h 49 min']);
  });

  it('formatDuration', () => {
    const cases: [number, string][] = [
      [0, '0 s'],
      [0.4, '0 s'],
      [42, '42 s'],
      [59.4, '59 s'],
      [59.6, '1 min 00 s'],
      [185, '3 min 05 s'],
      [3599, '59 min 59 s'],
      [3600, '1 h 00 min'],
      [3779, '1 h 02 min'],
      [90000, '25 h 00 min'],
      [-3, '0 s'],
      [Infinity, '?'],
      [Number.NaN, '?'],
    ];
    for (const [s, text] of cases) assert.equal(formatDuration(s), text, String(s));
  });
});

describe('util/progress teeProgress', () => {
  it('passes every event to each sink in order, skipping undefined ones', () => {
    const got: string[] = [];
    const rec = (name: string): ProgressSink => (e) => got.push(`${name} ${e.label} ${e.done}/${e.total}`);
    const tee = teeProgress(rec('x'), undefined, rec('y'));
    tee({ label: 'l', done: 1, total: 2 });
    tee({ label: 'l', done: 2, total: 2 });
    assert.deepEqual(got, ['x l 1/2', 'y l 1/2', 'x l 2/2', 'y l 2/2']);
    teeProgress(undefined)({ label: 'l', done: 0, total: 1 }); // nothing to call, no error
  });
});
