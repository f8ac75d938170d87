/** The coreset registry: every rule by name, shared by the CLI (`ptmst coreset`), `eval`, `repro` and notebooks. */
import { ConfigError } from '../errors';
import { herdingCoreset } from './herding';
import { kCenterCoreset } from './kcenter';
import { kMeansCoreset } from './kmeans';
import { forgettingCoreset } from './forgetting';
import { lossEasyCoreset, lossHardCoreset } from './loss-ranked';
import { randomCoreset } from './random';
import type { CoresetContext, CoresetRule } from './types';

export type { CoresetContext, CoresetNeed, CoresetRule, TeacherParams } from './types';

export const CORESETS: Readonly<Record<string, CoresetRule>> = Object.fromEntries(
  [randomCoreset, herdingCoreset, kCenterCoreset, kMeansCoreset, lossHardCoreset, lossEasyCoreset, forgettingCoreset].map((r) => [r.name, r]),
);
export const CORESET_NAMES = Object.keys(CORESETS) as [string, ...string[]];

export function coresetRule(name: string): CoresetRule {
  const r = CORESETS[name];
  if (!r) throw new ConfigError(`coreset "${name}": unknown (known: ${CORESET_NAMES.join(', ')})`);
  return r;
}

/** Select with a rule, checking what it needs and what it returns (distinct, in range, `size` of them). */
export function selectCoreset(name: string, ctx: CoresetContext, size: number, rand: Parameters<CoresetRule['select']>[2]): Int32Array {
  const rule = coresetRule(name);
  const n = ctx.train.numCaptions;
  if (!Number.isInteger(size) || size < 1 || size > n) throw new ConfigError(`coreset ${name}: size ${size} is not in 1..${n} (the training pairs)`);
  for (const need of rule.needs) if (ctx[need] === undefined) throw new ConfigError(`coreset ${name} needs a ${need === 'teacher' ? 'trained teacher (an expert buffer)' : 'forgetting record (an expert buffer trained with forgetting events)'}`);
  const picked = rule.select(ctx, size, rand);
  const seen = new Set<number>();
  for (const j of picked) {
    if (!Number.isInteger(j) || j < 0 || j >= n || seen.has(j)) throw new Error(`coreset ${name} returned an invalid or repeated pair index ${j}`);
    seen.add(j);
  }
  if (picked.length !== size) throw new Error(`coreset ${name} returned ${picked.length} pairs, not ${size}`);
  return picked;
}
