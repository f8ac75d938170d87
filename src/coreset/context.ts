/**
 * What a coreset rule needs beyond the training features, loaded from an expert buffer: the trained teacher
 * (expert 0's last snapshot, for the loss-ranked rules) and the forgetting events summed over the experts
 * (for `forgetting`; the buffer must have been trained with `buffer.forgetting: true`).
 */
import { ConfigError } from '../errors';
import type { FeatureSet } from '../features/feature-set';
import { readForgetting } from '../trajectory/forgetting';
import { readBuffer, readBufferManifest } from '../trajectory/store';
import type { CoresetContext, CoresetRule } from './types';

export interface CoresetSource {
  /** the expert buffer folder */
  readonly buffer?: string;
  /** experts whose forgetting events are summed (default: every finished expert) */
  readonly numExperts?: number;
  /** the heads' logit temperature (the model's) */
  readonly temperature: number;
}

export async function coresetContext(rule: CoresetRule, train: FeatureSet, source: CoresetSource): Promise<CoresetContext> {
  if (rule.needs.length === 0) return { train };
  if (!source.buffer) throw new ConfigError(`coreset ${rule.name} needs an expert buffer (method.buffer / --buffer)`);
  const ctx: { train: FeatureSet; teacher?: CoresetContext['teacher']; forgetting?: Int32Array } = { train };
  if (rule.needs.includes('teacher')) {
    const { trajectories } = await readBuffer(source.buffer, 1);
    const t = trajectories[0]!;
    const last = (a: Float32Array) => a.slice(((t.snapshots - 1) * a.length) / t.snapshots);
    ctx.teacher = { shape: t.shape, img: last(t.img), txt: last(t.txt), temperature: source.temperature };
  }
  if (rule.needs.includes('forgetting')) {
    const manifest = await readBufferManifest(source.buffer);
    ctx.forgetting = await readForgetting(source.buffer, source.numExperts ?? manifest.experts.length);
  }
  return ctx;
}
