import { strict as assert } from 'node:assert';
import { rng } from '../../src/util/random';

/** mulberry32 as first written here (uint32 arithmetic through doubles): the stream every stored buffer, checkpoint and result was drawn from */
function reference(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('util/random: the seeded stream', () => {
  const seeds = [0, 1, 11, -5, 0x7fffffff, 0x80000000, 0xffffffff, 2 ** 32 + 7, 123456789];

  it('next() is the original mulberry32 stream, bit for bit, for any seed', () => {
    for (const seed of seeds) {
      const [r, want] = [rng(seed), reference(seed)];
      for (let i = 0; i < 10_000; i++) assert.equal(r.next(), want(), `seed ${seed}, draw ${i}`);
    }
  });

  it('nextUint32 gives the same draws × 2^32 and leaves the stream where next() would', () => {
    for (const seed of seeds) {
      const [r, want] = [rng(seed), reference(seed)];
      const out = new Uint32Array(1000);
      r.nextUint32(out);
      out.forEach((v, i) => assert.equal(v, want() * 4294967296, `seed ${seed}, draw ${i}`));
      assert.equal(r.next(), want());
    }
  });

  it('state() restarts the stream where it stopped', () => {
    for (const seed of seeds) {
      const r = rng(seed);
      for (let i = 0; i < 37; i++) r.next();
      const s = r.state();
      assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 32, `seed ${seed}: state ${s} is a uint32`);
      const again = rng(s);
      for (let i = 0; i < 100; i++) assert.equal(again.next(), r.next());
    }
  });

  it('skip(n) leaves the stream where n draws would', () => {
    for (const seed of seeds) {
      for (const n of [0, 1, 5, 1_000, 100_003]) {
        const [r, want] = [rng(seed), rng(seed)];
        r.skip!(n);
        for (let i = 0; i < n; i++) want.next();
        assert.equal(r.state(), want.state(), `seed ${seed}, n ${n}`);
        assert.equal(r.next(), want.next());
      }
    }
  });
});
