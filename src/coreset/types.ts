/**
 * Coresets: N real training pairs chosen by a rule. A pair is a caption with its image (pair j = caption j,
 * image `train.captionToImage[j]`), so a coreset is a list of distinct caption indices. Rules that look at
 * features only need the training features; the loss-ranked rules need a trained teacher, the forgetting
 * rule the forgetting events recorded while experts trained.
 */
import type { FeatureSet } from '../features/feature-set';
import type { DualShape } from '../model/dual';
import type { Rng } from '../util/random';

/** A trained teacher's flattened head parameters (an expert's last snapshot). */
export interface TeacherParams {
  readonly shape: DualShape;
  readonly img: Float32Array;
  readonly txt: Float32Array;
  /** the logit temperature T the teacher trained with (model.temperature); the loss-ranked rules need it */
  readonly temperature?: number;
}

export interface CoresetContext {
  readonly train: FeatureSet;
  /** for `needs: ['teacher']` */
  readonly teacher?: TeacherParams;
  /** for `needs: ['forgetting']`: forgetting events per training pair (length train.numCaptions) */
  readonly forgetting?: Int32Array;
}

export type CoresetNeed = 'teacher' | 'forgetting';

export interface CoresetRule {
  readonly name: string;
  /** one line for tables and `ptmst coreset --help` */
  readonly description: string;
  readonly needs: readonly CoresetNeed[];
  /** whether `select` draws from `rand`; a rule that does not is computed once per evaluation, not per run */
  readonly randomised: boolean;
  /**
   * `size` distinct caption indices in [0, train.numCaptions). Deterministic for a given `rand` state; rules
   * without randomness ignore it (every evaluation run then trains on the same coreset).
   */
  select(ctx: CoresetContext, size: number, rand: Rng): Int32Array;
}
