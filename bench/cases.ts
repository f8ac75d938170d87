/**
 * What the benchmark measures: one record per case, as plain JSON (it is handed to a child process, ours or
 * the PyTorch peer's, on the command line). `plan` lists the cases of the full run and of the `--quick` smoke
 * run; the sizes of the full run are the brief's (issue 11): an iteration on 500 synthetic pairs, an expert
 * epoch on Flickr8k's 29,995 training pairs, an evaluation run of 100 epochs on 500 pairs, retrieval over a
 * 1,000-image × 5-caption test split. The quick run keeps every code path at small sizes.
 */
import { join } from 'node:path';
import type { GradientMode } from '../src/distill/iteration';

/** The widths and sizes an input file is made from (inputs.ts) and read back with. */
export interface IterationInputs {
  /** synthetic pairs N */
  readonly n: number;
  readonly dImg: number;
  readonly dTxt: number;
  /** head width d */
  readonly width: number;
  readonly batch: number;
  readonly synSteps: number;
  readonly similarity: 'full' | 'lowrank';
  /** rank r and scale α of a low-rank S (DistillConfig defaults: 10, 1) */
  readonly rank: number;
  readonly rankAlpha: number;
  /** dropout inside the unroll: the masks are drawn once and stored with the inputs */
  readonly dropout: number;
  readonly file: string;
}

/** One distillation iteration (src/distill/iteration.ts `distillIteration`). */
export interface IterationCase extends IterationInputs {
  readonly kind: 'iteration';
  readonly id: string;
  readonly mode: GradientMode;
  readonly temperature: number;
  /**
   * Iterations run before the timing, then timed (the row reports their mean). A distillation runs hundreds of
   * iterations per phase, so the steady state is what a user waits for; ours reaches it after ~6 (V8 compiles the
   * hot JavaScript, the wasm heap stops growing): one warm-up iteration left the timed one ~40% slower.
   */
  readonly warmIterations: number;
  readonly timedIterations: number;
}

/** One expert epoch (src/trajectory/expert.ts `trainExpert`, one epoch, no retrieval). */
export interface ExpertCase {
  readonly kind: 'expert';
  readonly id: string;
  readonly numImages: number;
  readonly captionsPerImage: number;
  readonly dImg: number;
  readonly dTxt: number;
  readonly width: number;
  readonly batch: number;
  readonly lr: number;
  readonly dropout: number;
  readonly temperature: number;
  /** warm-up: an epoch over this many pairs, same shapes (a full warm-up epoch would double the cost) */
  readonly warmPairs: number;
  readonly file: string;
}

/** The evaluation split and the student's training subset (one file, shared by `eval` and `retrieval`). */
export interface EvalInputs {
  /** synthetic pairs the student trains on */
  readonly n: number;
  readonly dImg: number;
  readonly dTxt: number;
  readonly width: number;
  /** test split: images, each with `captionsPerImage` captions */
  readonly testImages: number;
  readonly captionsPerImage: number;
  readonly file: string;
}

/**
 * One evaluation run (src/evaluate/student.ts `trainStudent`): one student, `epochs` epochs of ⌈n/batch⌉
 * batches, SGD with momentum and weight decay, learning rate × 0.1 from `decayEpoch`, retrieval on the
 * validation and test splits (here both the same test split) every `evalEvery` epochs and after the last.
 */
export interface EvalCase extends EvalInputs {
  readonly kind: 'eval';
  readonly id: string;
  readonly epochs: number;
  readonly evalEvery: number;
  readonly decayEpoch: number;
  readonly batch: number;
  readonly momentum: number;
  readonly weightDecay: number;
  readonly lr: number;
  readonly dropout: number;
  readonly temperature: number;
}

/** Retrieval over the test split with freshly initialised heads (src/model/retrieval.ts `evaluateRetrieval`). */
export interface RetrievalCase extends EvalInputs {
  readonly kind: 'retrieval';
  readonly id: string;
}

/** One n×n by n×n float32 product: tfjs `matMul` on our backend, `torch.mm` or `numpy.matmul` on the peer. */
export interface SgemmCase {
  readonly kind: 'sgemm';
  readonly id: string;
  readonly n: number;
  /** the peer's library */
  readonly library: 'torch' | 'numpy';
}

/** Image features of real photos (decode, resize, forward pass) with an encoder of src/encoders. */
export interface FeaturesCase {
  readonly kind: 'features';
  readonly id: string;
  readonly encoder: string;
  readonly images: readonly string[];
}

/** Our gradients of one iteration, written to `out` for the peer to compare (quick mode). */
export interface GradcheckCase {
  readonly kind: 'gradcheck';
  readonly id: string;
  readonly iteration: IterationCase;
  readonly out: string;
}

export type BenchCase = IterationCase | ExpertCase | EvalCase | RetrievalCase | SgemmCase | FeaturesCase | GradcheckCase;
export type TimedCase = Exclude<BenchCase, GradcheckCase>;

/** A case as the harness runs it: who runs it and a line for the table. */
export interface PlannedCase {
  readonly spec: TimedCase;
  readonly label: string;
  /** run by this project (false: a peer-only reference row, e.g. numpy's SGEMM) */
  readonly ours: boolean;
  /** run by the peer, or why not */
  readonly peer: true | { readonly skipped: string };
}

export interface Plan {
  readonly cases: readonly PlannedCase[];
  /** iteration cases whose gradients the peer checks (quick mode) */
  readonly gradchecks: readonly GradcheckCase[];
  /** rows that are not run, and why (e.g. feature extraction without the photos) */
  readonly skipped: readonly { readonly label: string; readonly reason: string }[];
  readonly iterationInputs: readonly IterationInputs[];
  readonly expert: ExpertCase;
  readonly eval: EvalInputs;
}

export interface PlanOptions {
  readonly quick: boolean;
  /** folder for the input files */
  readonly work: string;
  /** photos for the feature-extraction case, or why there are none */
  readonly images: readonly string[] | { readonly skipped: string };
}

/** SPEC §1 / ModelConfig defaults. */
const TEMPERATURE = 0.07;
const DROPOUT = 0.1;

export function plan(o: PlanOptions): Plan {
  const q = o.quick;
  const sizes = q
    ? { n: 100, widths: [64], expertImages: 200, evalN: 100, epochs: 5, evalEvery: 5, decay: 3, testImages: 100, sgemm: 512, warmIterations: 1, timedIterations: 1 }
    : { n: 500, widths: [256, 512], expertImages: 5_999, evalN: 500, epochs: 100, evalEvery: 10, decay: 50, testImages: 1_000, sgemm: 2048, warmIterations: 6, timedIterations: 5 };
  const repeat = { warmIterations: sizes.warmIterations, timedIterations: sizes.timedIterations };
  const iterationInputs: IterationInputs[] = [];
  const cases: PlannedCase[] = [];
  const both = { ours: true, peer: true } as const;
  cases.push({ spec: { kind: 'sgemm', id: `sgemm-${sizes.sgemm}`, n: sizes.sgemm, library: 'torch' }, label: `SGEMM ${sizes.sgemm}² (peer: torch)`, ...both });
  cases.push({
    spec: { kind: 'sgemm', id: `sgemm-${sizes.sgemm}-numpy`, n: sizes.sgemm, library: 'numpy' },
    label: `SGEMM ${sizes.sgemm}² (peer: numpy)`,
    ours: false,
    peer: true,
  });
  for (const width of sizes.widths) {
    for (const similarity of ['full', 'lowrank'] as const) {
      const inputs: IterationInputs = {
        n: sizes.n,
        dImg: 1280,
        dTxt: 100,
        width,
        batch: 32,
        synSteps: 8,
        similarity,
        rank: 10,
        rankAlpha: 1,
        dropout: DROPOUT,
        file: join(o.work, `iteration-d${width}-${similarity}.safetensors`),
      };
      iterationInputs.push(inputs);
      for (const mode of ['tesla', 'full'] as const) {
        cases.push({
          spec: { ...inputs, ...repeat, kind: 'iteration', id: `iteration-${mode}-d${width}-${similarity}`, mode, temperature: TEMPERATURE },
          label: `iteration ${mode === 'tesla' ? 'TESLA' : 'full unroll'}, d ${width}, ${similarity === 'full' ? 'full' : 'low-rank'} S`,
          ...both,
        });
      }
    }
  }
  const expert: ExpertCase = {
    kind: 'expert',
    id: 'expert-epoch',
    numImages: sizes.expertImages,
    captionsPerImage: 5,
    dImg: 1280,
    dTxt: 100,
    width: 256,
    batch: 128,
    lr: 0.1,
    dropout: DROPOUT,
    temperature: TEMPERATURE,
    warmPairs: 5 * 128,
    file: join(o.work, 'expert.safetensors'),
  };
  cases.push({ spec: expert, label: `expert epoch, ${expert.numImages * expert.captionsPerImage} pairs, d 256`, ...both });
  const evalInputs: EvalInputs = {
    n: sizes.evalN,
    dImg: 1280,
    dTxt: 100,
    width: 256,
    testImages: sizes.testImages,
    captionsPerImage: 5,
    file: join(o.work, 'eval.safetensors'),
  };
  cases.push({
    spec: {
      ...evalInputs,
      kind: 'eval',
      id: 'eval-run',
      epochs: sizes.epochs,
      evalEvery: sizes.evalEvery,
      decayEpoch: sizes.decay,
      batch: 128,
      momentum: 0.9,
      weightDecay: 5e-4,
      lr: 0.1,
      dropout: DROPOUT,
      temperature: TEMPERATURE,
    },
    label: `evaluation run, ${sizes.epochs} epochs on ${sizes.evalN} pairs + ${2 * (Math.floor(sizes.epochs / sizes.evalEvery) + 1)} retrievals`,
    ...both,
  });
  cases.push({
    spec: { ...evalInputs, kind: 'retrieval', id: 'retrieval' },
    label: `retrieval, ${sizes.testImages} images × 5 captions`,
    ...both,
  });
  const skipped: { label: string; reason: string }[] = [];
  const featuresLabel = 'feature extraction, MobileNetV2, per 100 images';
  if ('skipped' in o.images) skipped.push({ label: featuresLabel, reason: o.images.skipped });
  else {
    const images = o.images.slice(0, q ? 16 : 100);
    cases.push({
      spec: { kind: 'features', id: 'features-mobilenet_v2', encoder: 'mobilenet_v2', images },
      label: `${featuresLabel} (${images.length} timed)`,
      ours: true,
      peer: { skipped: 'no PyTorch copy of the nsfwjs MobileNetV2 offline' },
    });
  }
  const gradchecks: GradcheckCase[] = q
    ? cases.flatMap((c) =>
        c.spec.kind === 'iteration'
          ? [{ kind: 'gradcheck' as const, id: `check-${c.spec.id}`, iteration: c.spec, out: join(o.work, `ours-${c.spec.id}.safetensors`) }]
          : [],
      )
    : [];
  return { cases, gradchecks, skipped, iterationInputs, expert, eval: evalInputs };
}
