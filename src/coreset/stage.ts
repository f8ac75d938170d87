/**
 * The coreset stage (`ptmst coreset`): choose `size` training pairs with a registry rule and write their caption
 * indices as a JSON array, the file `ptmst eval --indices` reads. The draw uses the seed the way evaluation run 0
 * does (`deriveSeed(seed, 'coreset', 0)`), so `--method random --seed S` writes run 0's coreset of `eval.seed = S`.
 */
import { z } from 'zod';
import { parseConfig } from '../config/parse';
import { DataConfig, ModelConfig, Workspace, inWorkspace, resolveData } from '../config/schemas';
import { coresetContext } from './context';
import { loadFeatureSets } from '../features/load';
import { writeJsonAtomic } from '../store/atomic';
import { deriveSeed, rng } from '../util/random';
import { CORESET_NAMES, coresetRule, selectCoreset } from './index';

export const CoresetStageConfig = z
  .object({
    data: DataConfig.default(DataConfig.parse({})),
    /** a rule of the registry (src/coreset/index.ts) */
    method: z.enum(CORESET_NAMES),
    size: z.number().int().positive(),
    seed: z.number().int().nonnegative().default(0),
    /** the expert buffer folder, for rules that read a teacher or forgetting events */
    buffer: z.string().min(1).optional(),
    /** the heads' temperature (the loss-ranked rules score pairs with the teacher's logits) */
    model: ModelConfig.default(ModelConfig.parse({})),
    /** the JSON file of caption indices (in the workspace unless absolute) */
    out: z.string().min(1),
    workspace: Workspace,
  })
  .strict();
export type CoresetStageConfig = z.infer<typeof CoresetStageConfig>;

export interface CoresetStageResult {
  readonly file: string;
  readonly method: string;
  readonly description: string;
  readonly size: number;
  readonly seed: number;
  /** the chosen caption indices, in the rule's order */
  readonly indices: number[];
  /** selection time (features loaded beforehand) */
  readonly selectSeconds: number;
}

/** Load the training features, select with the rule, write the indices atomically. */
export async function coresetStage(input: unknown): Promise<CoresetStageResult> {
  const config = parseConfig(CoresetStageConfig, input, 'coreset config');
  const rule = coresetRule(config.method);
  const [train] = await loadFeatureSets(resolveData(config.data, config.workspace), ['train']);
  const buffer = config.buffer === undefined ? {} : { buffer: inWorkspace(config.workspace, config.buffer) };
  const ctx = await coresetContext(rule, train!, { ...buffer, temperature: config.model.temperature });
  const t0 = performance.now();
  const picked = selectCoreset(rule.name, ctx, config.size, rng(deriveSeed(config.seed, 'coreset', 0)));
  const selectSeconds = (performance.now() - t0) / 1000;
  const file = inWorkspace(config.workspace, config.out);
  const indices = Array.from(picked);
  await writeJsonAtomic(file, indices);
  return { file, method: rule.name, description: rule.description, size: config.size, seed: config.seed, indices, selectSeconds };
}
