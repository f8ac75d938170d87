/**
 * The forgetting coreset: the pairs forgotten most often while the experts trained (Toneva et al.; counts
 * from `buffer.forgetting: true`, summed over experts, see trajectory/forgetting). Ties go to the lower index.
 */
import { topIndices } from './rank';
import type { CoresetRule } from './types';

export { type Presentation, countForgetting } from '../trajectory/forgetting';

export const forgettingCoreset: CoresetRule = {
  name: 'forgetting',
  description: 'the pairs with the most forgetting events while the experts trained (never learned = hardest)',
  needs: ['forgetting'],
  randomised: false,
  select: (ctx, size) => {
    const f = ctx.forgetting!;
    if (f.length !== ctx.train.numCaptions) throw new Error(`forgetting record has ${f.length} pairs, the training split ${ctx.train.numCaptions}`);
    return topIndices(f, size, true);
  },
};
