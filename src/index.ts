/**
 * The public API of ptmst: what a notebook, a script or another package imports (`require('ptmst')`,
 * `import { … } from 'ptmst'`). Stages (features → experts → shortcut trajectories → distillation →
 * evaluation) are verbs that validate a zod config and await the tfjs backend themselves; their cores
 * (one expert, one phase, one iteration, one student, retrieval) are exported beside them.
 */

// backend and errors
export { BACKENDS, type BackendInfo, type BackendName, ready, setBackendLog, tf } from './backend';
export * from './errors';

// configs: every default in one place
export { parseConfig } from './config/parse';
export { AdaptiveDistillConfig, AdaptivePhases, BufferConfig, DataConfig, DistillConfig, DistillSpec, DistributionConfig, EvalConfig, FeaturesConfig, ModelConfig, PhaseConfig, SafeName, Workspace } from './config/schemas';

// data and encoders
export { type ImageCaptionSplit, SPLITS, type SplitName, preprocessCaption, takeImages } from './data/dataset';
export { DATASETS, type DatasetEntry, datasetEntry, loadSplit, resolveDataRoot } from './data/registry';
export { GENERATED_DATASETS, SHAPES_DATASET, SHAPES_SHIFTED_DATASET, ensureGeneratedDataset, ensureShapes } from './data/shapes';
export { EncoderPool, IMAGE_ENCODERS, TEXT_ENCODERS } from './encoders/registry';

// features
export { type FeatureStageResult, ImportFeaturesConfig, type ImportFeaturesResult, computeFeatures, extractFeatures, importFeatures, loadFeatures } from './features';
export { type FeatureSet, loadFeatureSet } from './features/feature-set';
export { prepareFeatureSets } from './features/load';

// model: dual encoder, losses, retrieval
export { type DualParams, type DualShape, TOWERS, dualGrads, dualShape, initDual } from './model/dual';
export { LOSSES, LOSS_NAMES, type LossName } from './model/losses';
export { type SgdOptions, sgd } from './model/sgd';
export { type EpochOptions, type HeadsState, type PairSource, trainEpoch } from './model/train';
export {
  RECALL_KEYS,
  type Retrieval,
  type RetrievalRanks,
  type RetrievalSplit,
  evaluateRetrieval,
  retrievalFromScores,
  retrievalRanks,
} from './model/retrieval';

// trajectories: experts, buffers, shortcut trajectories
export { type ExpertOptions, type ExpertProgress, type ExpertTrajectory, trainExpert } from './trajectory/expert';
export { BufferStageConfig, buildBuffer } from './trajectory/buffer';
export { type BufferManifest, type Trajectory, readBuffer } from './trajectory/store';
export { convexifyBuffer, convexifyFlat, convexifyTrajectory, trajectoryGeometry } from './trajectory/convexify';

// distillation
export { DistillStageConfig, type DistillResult, distill } from './distill';
export { type PhaseInput, type PhaseOutput, distillPhase } from './distill/phase';
export { type DistributionPhaseInput, type DistributionPhaseOutput, distillDistributionPhase, dmGradients, dmLoss, dmTerms, realMoments } from './distill/distribution';
export { type LoopOptions, type PhaseState, type UnrollDraw, initPhaseState, runPhase, sampleUnroll, teacherAt } from './distill/phase-loop';
export { type IterationResult, type Teacher, type UnrollStep, distillIteration } from './distill/iteration';
export { lrGradient, matchingLoss } from './distill/matching';
export { emaUpdate } from './distill/ema';
export { type SyntheticState, initSynthetic } from './distill/synthetic';
export { type SyntheticSet, readSyntheticSet, writeSyntheticSet } from './distill/synthetic-file';

// coresets: the registry of rules and what they read
export { CORESETS, CORESET_NAMES, type CoresetContext, type CoresetRule, type TeacherParams, coresetRule, selectCoreset } from './coreset';
export { type CoresetSource, coresetContext } from './coreset/context';
export { CoresetStageConfig, type CoresetStageResult, coresetStage } from './coreset/stage';
export { herdingSelect } from './coreset/herding';
export { kCenterSelect } from './coreset/kcenter';
export { kMeansRows, kMeansSelect } from './coreset/kmeans';
export { perPairLoss } from './coreset/loss-ranked';
export { countForgetting, readForgetting } from './trajectory/forgetting';

// distillation methods of the tables (configurations of the one distiller)
export { DISTILL_METHODS, DISTILL_METHOD_NAMES, type DistillMethod, type MethodOverrides, distillMethod, ptmSizes } from './distill/methods';
export { type AdaptiveChoice, type TeacherTrajectory, adaptivePhases } from './distill/adaptive-phases';

// evaluation
export { EvalStageConfig, type EvalResult, type MethodSpec, evaluateMethod } from './evaluate';
export { type Checkpoint, type KdTeacher, type TrainingSubset, loadKdTeacher, trainStudent } from './evaluate/student';
export { kdLoss, kdTarget, teacherLogits } from './model/kd';
export { type CurvePoint, METRIC_KEYS, type MeanStd, type MetricSummary, SELECTIONS, SELECTION_LABELS, type Selection, checkpointCurve, meanStd, select, summariseRuns } from './evaluate/summary';

// the whole pipeline and its tables
export { type MethodResult, ReproConfig, type ReproResult, type ResultsFile, readResults, repro, tableRows } from './pipeline/repro';
export { type BackendRecord, type GitRecord, type HostRecord, Origin, RESULTS_FORMAT, type ResolvedRow, type RowOrigin, type StudentRecord, type UnitRecord, provenanceFooter, provenanceSummary } from './pipeline/origin';
export { PACKAGE_ROOT, readConfigFile } from './config/file';
export { METRIC_HEADS, type ScalingResults, type Table, type TableRow, budgetTable, crossDatasetTable, type Gap, gainTable, gap, orderingTable, paperOrderings, resultsCsv, resultsMarkdown, resultsTable, scalingTable, selectionTable } from './figures/tables';
export { type FigureSpec, PNG_SCALE, type RenderedFigure, type SavedFigure, type VegaLiteSpec, renderFigure, renderSvg, saveFigure, svgToPng } from './figures/render';

export { type ResultsLike, budgetFigure, checkpointFigure, gainBaseline, gainFigure, comparisonFigure, type DirectionsLike, directionProfileFigure, directionsFigure, familyLabel, type WindowPoint, windowFigure, lossFigure, methodBudget, methodFamily, scalingFigure, teacherFigure } from './figures/charts';

// analyses
export { type Neighbour, type SyntheticNeighbours, nearestRows, syntheticNeighbours } from './analysis/nearest';
export { type DirectionSettings, type DirectionSetup, type DirectionStats, type GradientDirections, type GradientDirectionsInput, directionSetup, directionStats, gradientDirections, gradientDirectionsFromBuffer } from './analysis/gradient-directions';

// notebooks: context, inline display, progress
export { type Display, type NotebookContext, type NotebookMode, notebookContext, notebookDisplay, notebookProgress, projectRoot, show, showPhotos, showTable } from './notebook';
export { type FigureImages, type MimeBundle, figureBundle, figureImages, markdownBundle } from './notebook/bundles';
export { markdownToHtml, markdownToText } from './notebook/markdown';
export { DirectionRow, ProfileRow, WindowValue, controlFindings, directionFindings, mainTableFindings, readFigureValues, rowsSummary, scalingFindings } from './notebook/findings';

// randomness and progress
export { type Rng, deriveSeed, rng } from './util/random';
export { type ProgressEvent, type ProgressSink, formatInfo, teeProgress } from './util/progress';
export { type ProgressLines, type ProgressLinesOptions, formatDuration, progressLines } from './util/progress-lines';

// the unimodal control (SPEC §9.1): MNIST classification under the same trajectory matching
export { type LabelledImages, MNIST_CLASSES, MNIST_PIXELS, MnistConfig, type MnistData, loadMnist, mnistClassCounts } from './control/mnist';
export { type ClassifierShape, accuracy as classifierAccuracy, classifierGrads, classifierLogits, crossEntropy, initClassifier, parameterCount } from './control/classifier';
export { type ClassifierExperts, ControlExpertsConfig, trainExperts } from './control/experts';
export { ControlDistillConfig, type MatchingTeacher, type SyntheticDigits, distillDigits, initialDigits, matchingGradients, unrolledMatchingLoss } from './control/distill';
export { ControlEvalConfig, evaluateDigits, trainDigitStudent } from './control/student';
export { type WindowRow, type WindowSweepInput, type WindowSweepResult, windowSweep } from './control/sweep';
