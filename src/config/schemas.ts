/**
 * Every stage's configuration as a zod schema. Defaults are the reference hyperparameters (SPEC §3–6)
 * unless a comment says why this project's CPU default differs; `configs/*.json` name the reference
 * values where they differ. Unknown fields are errors.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { SPLITS } from '../data/dataset';
import { KD_WEIGHTINGS } from '../model/kd';
import { LOSS_NAMES } from '../model/losses';

const loss = z.enum(LOSS_NAMES as [string, ...string[]]);

/**
 * A name that becomes part of a path (run names, method names, result stems): letters, digits, `_`, `.`
 * and `-`, not starting with a dot — so it can never climb out of its folder (`..`) or hide (`.x`).
 */
export const SafeName = z
  .string()
  .max(100)
  .regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]*$/, 'use letters, digits, _ . - only, not starting with a dot');

/**
 * The folder every stage writes under (features in `data/`, `buffers/`, `runs/`, `figures/`); relative
 * paths in a config are relative to it. Default: the current directory.
 */
export const Workspace = z.string().min(1).default('.');

/**
 * `path` inside the workspace (unless it is absolute), as an absolute path: what a verb returns can be handed
 * to the next verb with the same workspace unchanged.
 */
export const inWorkspace = (workspace: string, path: string): string => resolve(workspace, path);

/** The data section with its cache folder resolved against the workspace (what stages and workers use). */
export const resolveData = (data: DataConfig, workspace: string): DataConfig => ({ ...data, cacheDir: inWorkspace(workspace, data.cacheDir) });

export const DataConfig = z
  .object({
    /** dataset in the registry (src/data/registry.ts), or `shapes` for the generated set */
    dataset: z.string().default('flickr8k'),
    /** folder holding `<dataset>/`; PTMST_DATA_ROOT when absent; not needed for `shapes` */
    dataRoot: z.string().min(1).optional(),
    /** generated artefacts (features, generated datasets), relative to the workspace; git-ignored */
    cacheDir: z.string().default('data'),
    /** MobileNetV2 from nsfwjs: the fast offline image encoder (InceptionV3 is ~8x slower; README "Encoders") */
    imageEncoder: z.string().default('mobilenet_v2'),
    /** mean-pooled GloVe-derived word vectors: the one offline text encoder on npm */
    textEncoder: z.string().default('wink-sg-100d'),
    /**
     * train on a fraction of the train split's images, each with all its captions (scaling studies): the
     * first ⌈fraction · images⌉ of one fixed permutation, so smaller fractions are subsets of larger ones;
     * val and test are whole. Absent: the whole split (and the same keys as before the option existed).
     */
    trainFraction: z.number().gt(0).max(1).optional(),
    /**
     * cc3m only: how chat.json/metadata.json is split without splits.json: `3:1:1` (the paper's ratio, by
     * record order; the reader's default when absent) or `holdout` (min(1000, N/10) each for val and test)
     */
    cc3mSplit: z.enum(['3:1:1', 'holdout']).optional(),
    /** cc3m only: test entries evaluated, the first ones; absent: 10,000 as the reference release; null: all */
    cc3mTestLimit: z.number().int().positive().nullable().optional(),
  })
  .strict();
export type DataConfig = z.infer<typeof DataConfig>;

export const ModelConfig = z
  .object({
    /** head output size; chosen by measurement on Flickr8k (README "Model size") */
    dOut: z.number().int().positive().default(256),
    /** SPEC §1 */
    temperature: z.number().positive().default(0.07),
    /** SPEC §1: ProjectionHead dropout while training experts and evaluation students */
    dropout: z.number().min(0).max(0.9).default(0.1),
  })
  .strict();
export type ModelConfig = z.infer<typeof ModelConfig>;

export const BufferConfig = z
  .object({
    /** SPEC §3: 20 experts in the reference; 10 by default here to fit the CPU time budget */
    numExperts: z.number().int().positive().default(10),
    /** SPEC §3 */
    epochs: z.number().int().positive().default(10),
    lrImg: z.number().positive().default(0.1),
    lrTxt: z.number().positive().default(0.1),
    batchSize: z.number().int().positive().default(128),
    /** experts train with the symmetric cross-entropy (InfoNCE with S = I) */
    loss: loss.default('infonce'),
    seed: z.number().int().nonnegative().default(0),
    /** worker threads (one expert each at a time); default: cores, at most 2 */
    workers: z.number().int().positive().optional(),
    /**
     * record forgetting events while experts train (forgetting-NNN.safetensors beside each expert; the
     * `forgetting` coreset reads them). Does not change the experts, so it is no part of their key.
     */
    forgetting: z.boolean().default(false),
    /**
     * SGD passes over the training pairs between two snapshots (one buffer "epoch"). Scaling studies set it to
     * 1 / data.trainFraction, so every snapshot interval holds as many SGD steps as one pass over the whole
     * split and the distiller's windows and step counts keep their meaning. Absent: 1 (the same keys as before).
     */
    passesPerEpoch: z.number().int().positive().optional(),
  })
  .strict();
export type BufferConfig = z.infer<typeof BufferConfig>;

const epochIndex = z.number().int().nonnegative();

export const PhaseConfig = z
  .object({
    /** the teacher trajectories: the expert buffer, or a shortcut (convexified) slice [start, end) of it */
    source: z.union([z.literal('experts'), z.tuple([epochIndex, epochIndex])]).default('experts'),
    /** start epochs t are drawn uniformly from [min, max] (inclusive); θ* = snapshot t + expertStep */
    start: z.tuple([epochIndex, epochIndex]),
    /** synthetic pairs this phase distils */
    size: z.number().int().positive(),
    /** distillation iterations (reference: 2000) */
    iterations: z.number().int().positive(),
  })
  .strict()
  .refine((p) => p.start[0] <= p.start[1], { message: 'start range must be [min, max] with min <= max', path: ['start'] });
export type PhaseConfig = z.infer<typeof PhaseConfig>;

/**
 * Adaptive phases (beyond the paper; src/distill/adaptive-phases.ts): P, each phase's shortcut window, start
 * range and size are chosen from the expert trajectories alone (their parameters and validation curve, never
 * the test split) when the distill stage has loaded the buffer. The resolved phases are recorded with the set.
 */
export const AdaptivePhases = z
  .object({
    rule: z.literal('adaptive'),
    /** synthetic pairs in all (split as PTM's ptmSizes when P = 2, else by regime length) */
    budget: z.number().int().min(3),
    /** distillation iterations of every phase (this project's CPU default 500, as the hand-set methods) */
    iterations: z.number().int().positive().default(500),
    /** at most this many phases */
    maxPhases: z.number().int().positive().default(3),
    /** the useful horizon: the first epoch at which the teachers have made this share of their validation gain */
    gainShare: z.number().gt(0).max(1).default(0.95),
    /** a further phase must remove this share of the one-regime spread of the log step sizes */
    minExplained: z.number().min(0).max(1).default(0.2),
    /** start epochs drawn per phase: its regime's first `startWidth` epochs */
    startWidth: z.number().int().positive().default(2),
    /**
     * DATM's budget alignment: every start range and window end moves by round(epochsPerDoubling · log2(budget /
     * referenceBudget)) epochs (small budgets earlier, large ones later). Absent: the budget does not move them.
     */
    datm: z
      .object({ referenceBudget: z.number().int().positive().default(200), epochsPerDoubling: z.number().positive().default(1) })
      .strict()
      .optional(),
  })
  .strict();
export type AdaptivePhases = z.infer<typeof AdaptivePhases>;

/**
 * Distribution matching (src/distill/distribution.ts): each iteration draws heads, embeds a real mini-batch and
 * the whole synthetic subset, and matches their mean embeddings per tower and their mean image⊗text outer
 * products. Used when `objective` is `distribution`.
 */
export const DistributionConfig = z
  .object({
    /**
     * the heads each iteration embeds with: freshly initialised ones (`random`, the head initialiser; needs no
     * experts), or a snapshot of a trained expert (`trained`: a uniform expert, a snapshot epoch drawn from the
     * phase's `start` range; needs an expert buffer)
     */
    heads: z.enum(['random', 'trained']).default('random'),
    /** head pairs drawn per iteration (the loss is their mean); Zhao & Bilen draw one network per iteration */
    headsPerIteration: z.number().int().positive().default(1),
    /** real pairs per iteration (Zhao & Bilen: 256 real images per class) */
    batchReal: z.number().int().positive().default(256),
    /** weight of the cross-modal term (mean outer product) beside the two per-tower terms */
    crossWeight: z.number().min(0).default(1),
  })
  .strict();
export type DistributionConfig = z.infer<typeof DistributionConfig>;

export const DistillConfig = z
  .object({
    /**
     * what the synthetic set is fitted to: the experts' trajectories (`trajectory`, every method of the paper) or
     * the real data's embedding distribution under sampled heads (`distribution`, src/distill/distribution.ts: no
     * experts needed with random heads; uses phases' `size`, `iterations` (and `start`, for trained heads), `lrX`,
     * `lrY`, `momentum`, `ema`, `init`, `alphaInit` (the set's rates) and `seed`; needs `similarity: 'none'`).
     * Absent = `trajectory` (kept out of the parsed config, so existing runs' keys hold).
     */
    objective: z.enum(['trajectory', 'distribution']).optional(),
    /** distribution matching's own settings (absent: its defaults, when `objective` is `distribution`) */
    distribution: DistributionConfig.optional(),
    /** PTM phases, distilled independently and used in order; one phase = no PTM */
    phases: z.array(PhaseConfig).min(1),
    /** M: the target is M snapshots after the start (SPEC §5.1) */
    expertStep: z.number().int().positive().default(1),
    /** unrolled student steps (SPEC §5.2) */
    synSteps: z.number().int().positive().default(8),
    /** synthetic pairs per unrolled step (SPEC: 20–40) */
    batchSyn: z.number().int().positive().default(32),
    /**
     * the reference distils (and evaluates) with weighted BCE on S; on these feature-mode heads WBCE trains
     * students far worse than InfoNCE with soft targets (README "Defaults"), so InfoNCE is the default here
     */
    loss: loss.default('infonce'),
    /** `tesla` (constant memory; PTM-ST, LoRS) or `full` backprop through the unroll (MTT-VL) */
    gradient: z.enum(['tesla', 'full']).default('tesla'),
    /** learned target similarity: full N×N, low-rank (LoRS), or none (S = I, MTT-VL) */
    similarity: z.enum(['full', 'lowrank', 'none']).default('full'),
    rank: z.number().int().positive().default(10),
    rankAlpha: z.number().positive().default(1),
    /**
     * step sizes. The reference's (X, Y 1000; α 0.01; S 10 Flickr / 50 COCO) are for NFNet pixels and BERT
     * embeddings; here the matching loss's gradients are ~10³× larger relative to the data, and those values
     * diverge within a few iterations. These defaults were chosen by measurement (README "Defaults").
     */
    lrX: z.number().positive().default(30),
    lrY: z.number().positive().default(30),
    lrAlpha: z.number().positive().default(1e-5),
    lrS: z.number().positive().default(0.03),
    momentum: z.number().min(0).max(1).default(0.5),
    /** initial learned learning rate of each tower */
    alphaInit: z.number().positive().default(0.1),
    /** EMA decay of the synthetic state; 0 turns the EMA off */
    ema: z.number().min(0).max(1).default(0.99),
    /** dropout inside the unroll (masks reused by the re-pass); default: the model's */
    unrollDropout: z.number().min(0).max(0.9).optional(),
    /**
     * the synthetic set's start: random real pairs, noise, or AMD's k-means prototypes (src/distill/amd.ts):
     * `spm` clusters the trained expert's joint embeddings (seed 004's Semantics-aware Prototype Mining),
     * `prototypes` the frozen encoders' joint features (this project's earlier simplification)
     */
    init: z.enum(['real', 'noise', 'prototypes', 'spm']).default('real'),
    /**
     * AMD (SPEC §8), asynchronous matching: the image and text towers' start epochs are drawn independently
     * from the phase's start range. Absent = off (kept out of the parsed config, so existing runs' keys hold).
     */
    asyncStart: z.boolean().optional(),
    /**
     * AMD's dynamic ranges: each tower draws its start from its own range, set by how fast its parameters
     * change along the trajectories (src/distill/amd.ts). Absent = off (the same keys as before).
     */
    dynamicStart: z.boolean().optional(),
    /**
     * what `dynamicStart` measures a tower's per-epoch change with: `mmd-gaussian` (seed 004: Gaussian-kernel
     * MMD between the experts' parameters at consecutive epochs, median-heuristic bandwidth) or `l2` (the mean
     * L2 norm of consecutive snapshot differences, this project's earlier simplification). Absent = mmd-gaussian;
     * a phase's cache key names the measure whenever `dynamicStart` is on, so a phase distilled with the
     * earlier L2 meaning of `dynamicStart: true` is never reused for the MMD one.
     */
    dynamicMeasure: z.enum(['mmd-gaussian', 'l2']).optional(),
    seed: z.number().int().nonnegative().default(0),
    checkpointEvery: z.number().int().positive().default(50),
  })
  .strict();
export type DistillConfig = z.infer<typeof DistillConfig>;

/** A distillation config whose phases are an adaptive schedule, resolved by the distill stage once the buffer is loaded. */
export const AdaptiveDistillConfig = DistillConfig.extend({ phases: AdaptivePhases }).strict();
export type AdaptiveDistillConfig = z.infer<typeof AdaptiveDistillConfig>;

const adaptiveInput = (v: unknown) => typeof v === 'object' && v !== null && (v as { phases?: unknown }).phases !== undefined && !Array.isArray((v as { phases?: unknown }).phases);

/**
 * What the distill stage and `repro` accept: phases set by hand (`DistillConfig`) or an adaptive schedule
 * (`phases: { rule: 'adaptive', budget, ... }`). The schema is picked by the shape of `phases`, so an error
 * names the field of the one that applies (a union would report both).
 */
export const DistillSpec = z.unknown().transform((v, ctx): DistillConfig | AdaptiveDistillConfig => {
  const r = (adaptiveInput(v) ? AdaptiveDistillConfig : DistillConfig).safeParse(v);
  if (r.success) return r.data;
  for (const issue of r.error.issues) ctx.issues.push({ ...issue, input: v } as never);
  return z.NEVER;
});
export type DistillSpec = z.infer<typeof DistillSpec>;
export type DistillSpecInput = z.input<typeof DistillConfig> | z.input<typeof AdaptiveDistillConfig>;

/** Knowledge distillation's options, defaults seed 003's (T = 4, α = 0.1 weighing the hard term). */
export const KdSchema = z
  .object({
    teacherIndex: z.number().int().nonnegative().default(0),
    /** softening temperature T (seed 003: 4) */
    temperature: z.number().positive().default(4),
    /** seed 003's α = 0.1: the hard term's weight under 'hard-alpha', the soft term's under 'soft-alpha' */
    alpha: z.number().min(0).max(1).default(0.1),
    /**
     * 'hard-alpha' (seed 003): α·L + (1 − α)·T²·KL; 'soft-alpha' (ptmst before issue 26, and the tables computed
     * then): (1 − α)·L + α·T²·KL
     */
    weighting: z.enum(KD_WEIGHTINGS).default('hard-alpha'),
  })
  .strict();

export const EvalConfig = z
  .object({
    /** independent students per method (SPEC §6: 5) */
    runs: z.number().int().positive().default(5),
    /** training epochs per subset; retrieval after 0, 10, …, 100 epochs (SPEC §6: 11 checkpoints a subset) */
    epochs: z.number().int().positive().default(100),
    evalEvery: z.number().int().positive().default(10),
    /** learning rate × 0.1 for epochs after this many (SPEC §6: "at epoch 51") */
    decayEpoch: z.number().int().positive().default(50),
    batchSize: z.number().int().positive().default(128),
    momentum: z.number().min(0).max(1).default(0.9),
    weightDecay: z.number().min(0).default(5e-4),
    /**
     * how each subset's learned learning rates are used: `per-subset` trains subset p with phase p's rates
     * (this project's default); `last` uses the last phase's rates for every subset (the reference)
     */
    lrUse: z.enum(['per-subset', 'last']).default('per-subset'),
    /**
     * which of a multi-phase set's subsets train the students, and how: `sequence` (each subset for `epochs`,
     * in phase order: the reference), `union` (one set of all pairs, block-diagonal S, the size-weighted mean of
     * the learned rates), `first` or `last` (that subset alone). Absent = `sequence` (the same keys as before).
     */
    subsets: z.enum(['sequence', 'union', 'first', 'last']).optional(),
    /**
     * cross-dataset evaluation: score retrieval on this dataset's `test` split (the config's encoders; its
     * features are made by `repro`) instead of the config's own; validation stays in-domain. Absent: the
     * config's dataset (and the same keys as before the option existed).
     */
    testDataset: z.string().min(1).optional(),
    /** learning rate of students trained on real pairs (coresets), which have no learned rate */
    realLr: z.number().positive().default(0.1),
    seed: z.number().int().nonnegative().default(0),
    /**
     * knowledge distillation from a full-data teacher (src/model/kd.ts) on every mini-batch: with the seed's
     * weighting ('hard-alpha', seed 003: L = α·L_CE + (1 − α)·T²·L_KL, T = 4, α = 0.1, so the soft term weighs
     * 0.9) or this project's earlier one ('soft-alpha': (1 − α)·L + α·T²·L_KL, the soft term weighs α). The
     * student queries a teacher trained on all the training pairs at every step: a KD row uses the full data
     * at student-training time. Absent: plain training (and the same cache keys as before the option existed).
     */
    kd: KdSchema.extend({
      /** expert buffer folder; the teacher is expert `teacherIndex`'s last snapshot */
      buffer: z.string().min(1),
    })
      .strict()
      .optional(),
  })
  .strict();
export type EvalConfig = z.infer<typeof EvalConfig>;

/** The feature stage: a data section plus what to extract and how. */
export const FeaturesConfig = DataConfig.extend({
  /** splits to extract; default all of the dataset's */
  splits: z.array(z.enum(SPLITS)).optional(),
  /** image worker threads: one per core, at most 2 (each runs WebAssembly on its share of the cores) */
  workers: z.coerce.number().int().positive().optional(),
  /** images per resumable chunk */
  chunkSize: z.coerce.number().int().positive().default(256),
  /** recompute even if the cache is valid */
  force: z.boolean().default(false),
  workspace: Workspace,
}).strict();
export type FeaturesConfig = z.infer<typeof FeaturesConfig>;
