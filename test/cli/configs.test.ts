import { strict as assert } from 'node:assert';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { DistillConfig } from '../../src/config/schemas';
import { ReproConfig } from '../../src/pipeline/repro';
import { REPO } from '../helpers';

describe('the shipped configs', () => {
  const dir = join(REPO, 'configs');
  const configs = readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => ({ file: f, json: JSON.parse(readFileSync(join(dir, f), 'utf8')) as Record<string, unknown> }));

  it('every config parses under its schema', () => {
    assert.ok(configs.length >= 10);
    for (const { file, json } of configs) {
      if ('methods' in json) ReproConfig.parse(json);
      else DistillConfig.parse(json.distill);
      assert.ok(file.startsWith(String(json.name).split('-')[0]!), `${file}: name ${String(json.name)}`);
    }
  });

  it('configs that share a run folder define each shared row identically (so they reuse its results)', () => {
    const rows = new Map<string, { file: string; row: string }>();
    for (const { file, json } of configs.filter((c) => 'methods' in c.json)) {
      const c = ReproConfig.parse(json);
      for (const m of c.methods) {
        const key = `${c.name}/${m.name}`;
        const def = JSON.stringify({ m, buffer: { ...c.buffer, forgetting: undefined }, data: c.data, model: c.model, eval: c.eval });
        const seen = rows.get(key);
        // rows may differ only in their distillation seeds (a row's seed-S folder is shared)
        const strip = (s: string) => s.replace(/"seeds":\[[\d,]*\],?/, '');
        if (seen) assert.equal(strip(def), strip(seen.row), `${key}: defined differently in ${file} and ${seen.file}`);
        else rows.set(key, { file, row: def });
      }
    }
    assert.ok(rows.has('flickr8k-main/ptm-st-500'));
  });
});
