/** The random coreset: `size` pairs drawn uniformly without replacement (a fresh draw per evaluation run). */
import { sampleWithoutReplacement } from '../util/random';
import type { CoresetRule } from './types';

export const randomCoreset: CoresetRule = {
  name: 'random',
  description: 'uniform draw of real pairs, a fresh draw per evaluation run',
  needs: [],
  randomised: true,
  select: (ctx, size, rand) => sampleWithoutReplacement(rand, ctx.train.numCaptions, size),
};
