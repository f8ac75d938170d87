/** CLI commands for the pipeline stages: buffer, convexify, distill, coreset, eval, repro. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { CORESETS, CORESET_NAMES } from '../../coreset';
import { coresetStage } from '../../coreset/stage';
import { DistillStageConfig, distill } from '../../distill';
import { parityStep, writeExampleState } from '../../distill/parity';
import { readsExperts } from '../../distill/distribution';
import { ConfigError, MissingFileError } from '../../errors';
import { parseConfig } from '../../config/parse';
import { artefactKey } from '../../store/key';
import { DATASETS } from '../../data/registry';
import { DistillConfig, ModelConfig } from '../../config/schemas';
import { LOSS_NAMES, type LossName } from '../../model/losses';
import { EvalStageConfig, evaluateMethod } from '../../evaluate';
import { SELECTION_LABELS } from '../../evaluate/summary';
import { fmt } from '../../figures/tables';
import { ReproConfig, repro } from '../../pipeline/repro';
import { BufferStageConfig, buildBuffer, defaultBufferDir } from '../../trajectory/buffer';
import { convexifyBuffer } from '../../trajectory/convexify';
import { merge, num, readConfigFile } from '../config-file';
import { type CommonOptions, runCommand } from '../run';

interface DataFlags {
  config?: string;
  dataset?: string;
  dataRoot?: string;
  cacheDir?: string;
  workspace?: string;
  force?: boolean;
}

const withCommon = (c: Command) =>
  c.option('--json <path>', 'write a machine-readable summary here').option('--no-progress', 'no progress bars or lines');

const withForce = (c: Command) => c.option('--force', 'rebuild stored outputs that fail verification (instead of stopping)');

/**
 * The sections a config file may hold: every stage's schema's own keys (one config file serves several
 * stages, each reading its sections). Anything else — a typo such as `modle` — is an error naming it.
 */
const KNOWN_SECTIONS = new Set(
  [ReproConfig, DistillStageConfig, EvalStageConfig, BufferStageConfig].flatMap((schema) => Object.keys(schema.shape)),
);

const withData = (c: Command) =>
  c
    .option('--config <file>', 'JSON config (a path, or a name in configs/)')
    .option('--dataset <name>', `dataset (${Object.keys(DATASETS).join(', ')}, or captions:<folder>)`)
    .option('--data-root <dir>', 'folder holding <dataset>/ (default: $PTMST_DATA_ROOT)')
    .option('--cache-dir <dir>', 'features and generated data (default: data)')
    .option('--workspace <dir>', 'where data/, buffers/, runs/ and figures/ go (default: the current folder)');

function dataOverrides(o: DataFlags): Record<string, unknown> {
  return { data: { dataset: o.dataset, dataRoot: o.dataRoot, cacheDir: o.cacheDir }, workspace: o.workspace };
}

/**
 * The expert buffer a config's sections name (`data`, `model`, `buffer`: the folder `ptmst buffer` made
 * for them), or `--buffer DIR`; and how many of its experts to use.
 */
function expertBufferOf(c: Record<string, unknown>, flag: string | undefined): { dir: string; numExperts: number } {
  const b = parseConfig(BufferStageConfig, pick(c, ['data', 'model', 'buffer', 'workspace']), 'config');
  return { dir: flag ?? defaultBufferDir(b), numExperts: b.buffer.numExperts };
}

function base(o: DataFlags): Record<string, unknown> {
  if (!o.config) return {};
  const c = readConfigFile(o.config);
  const unknown = Object.keys(c).filter((k) => !KNOWN_SECTIONS.has(k));
  if (unknown.length > 0) {
    throw new ConfigError(`config ${o.config}: unknown section(s) ${unknown.join(', ')}; valid: ${[...KNOWN_SECTIONS].join(', ')}`);
  }
  return c;
}

/** Only the sections a stage's schema knows (a repro config holds more). */
function pick(c: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));
}

export function register(program: Command): void {
  withCommon(withForce(
    withData(program.command('buffer').description('train expert trajectories (resumes at the next unfinished expert)'))
      .option('--experts <n>', 'number of experts')
      .option('--epochs <n>', 'epochs per expert')
      .option('--seed <n>', 'seed')
      .option('--d <n>', 'head output size')
      .option('--workers <n>', 'worker threads')
      .option('--out <dir>', 'buffer folder'),
  )).action((o: DataFlags & CommonOptions & { experts?: string; epochs?: string; seed?: string; d?: string; workers?: string; out?: string }) =>
    runCommand('buffer', o, async ({ progress, log }) => {
      const cfg = merge(pick(base(o), ['data', 'model', 'buffer']), {
        ...dataOverrides(o),
        model: { dOut: num('--d', o.d) },
        buffer: { numExperts: num('--experts', o.experts), epochs: num('--epochs', o.epochs), seed: num('--seed', o.seed), workers: num('--workers', o.workers) },
        out: o.out,
        force: o.force,
      });
      const r = await buildBuffer(cfg, progress, log);
      log(`${r.dir}: ${r.manifest.experts.length}/${r.manifest.numExperts} experts (${r.trained} trained now)`);
      return { dir: r.dir, trained: r.trained, manifest: r.manifest };
    }),
  );

  withCommon(
    program
      .command('convexify')
      .description('shortcut trajectories from a slice [start, end) of every expert (SPEC §4)')
      .requiredOption('--buffer <dir>', 'expert buffer folder')
      .requiredOption('--start <s>', 'first snapshot of the slice')
      .requiredOption('--end <e>', 'end of the slice (exclusive)')
      .option('--out <dir>', 'output folder (default <buffer>-convexified_<s>_<e>)'),
  ).action((o: CommonOptions & { buffer: string; start: string; end: string; out?: string }) =>
    runCommand('convexify', o, async ({ log }) => {
      const r = await convexifyBuffer(o.buffer, num('--start', o.start)!, num('--end', o.end)!, o.out);
      log(`${r.dir}: ${r.manifest.experts.length} shortcut trajectories`);
      return { dir: r.dir, manifest: r.manifest };
    }),
  );

  withCommon(withForce(
    withData(program.command('distill').description('distil a synthetic set with phased teachers (resumable)'))
      .option('--iterations <n>', 'iterations of every phase')
      .option('--buffer <dir>', 'the expert buffer (default: the one `ptmst buffer` makes for this config)')
      .option('--out <dir>', 'run folder (default runs/<name>)')
      .option('--workers <n>', 'worker threads (phases run side by side)'),
  )).action((o: DataFlags & CommonOptions & { iterations?: string; buffer?: string; out?: string; workers?: string }) =>
    runCommand('distill', o, async ({ progress, log }) => {
      const c = merge(base(o), dataOverrides(o));
      const its = num('--iterations', o.iterations);
      const d = (c.distill ?? {}) as { phases?: Record<string, unknown>[] | Record<string, unknown> };
      // --iterations sets every phase's count, or an adaptive schedule's
      const withIts = (p: Record<string, unknown>[] | Record<string, unknown>) => (Array.isArray(p) ? p.map((q) => ({ ...q, iterations: its })) : { ...p, iterations: its });
      // distribution matching with random heads reads no buffer (unless --buffer names one): the model section sizes the heads
      const noExperts = o.buffer === undefined && !readsExperts((c.distill ?? {}) as Parameters<typeof readsExperts>[0]);
      const experts = noExperts ? undefined : expertBufferOf(c, o.buffer);
      const cfg = merge(pick(c, ['name', 'data', 'distill', 'workspace', ...(noExperts ? ['model'] : [])]), {
        expertBuffer: experts?.dir,
        numExperts: experts?.numExperts,
        distill: its !== undefined && d.phases ? { phases: withIts(d.phases) } : undefined,
        out: o.out,
        workers: num('--workers', o.workers),
        force: o.force,
      });
      const r = await distill(cfg, progress, { log });
      log(`${r.file}: ${r.phases.map((p) => `${p.size} pairs (${p.iterations} its, loss ${p.finalLoss.toFixed(3)})`).join(' + ')}`);
      return r;
    }),
  );

  withCommon(
    withData(program.command('coreset').description('choose N real training pairs with a coreset rule; write their caption indices (for eval --indices)'))
      .requiredOption('--method <name>', `the rule: ${CORESET_NAMES.map((n) => `${n} (${CORESETS[n]!.description})`).join('; ')}`)
      .requiredOption('--size <n>', 'pairs to choose')
      .option('--seed <n>', 'seed of randomised rules (default: the config\'s eval.seed, else 0; the draw of evaluation run 0)')
      .option('--buffer <dir>', 'the expert buffer (loss-hard, loss-easy: its teacher; forgetting: its forgetting events)')
      .requiredOption('--out <file>', 'the JSON array of caption indices'),
  ).action((o: DataFlags & CommonOptions & { method: string; size: string; seed?: string; buffer?: string; out: string }) =>
    runCommand('coreset', o, async ({ log }) => {
      const c = merge(base(o), dataOverrides(o));
      const cfg = merge(pick(c, ['data', 'model', 'workspace']), {
        method: o.method,
        buffer: o.buffer,
        size: num('--size', o.size),
        seed: num('--seed', o.seed) ?? (c.eval as { seed?: unknown } | undefined)?.seed,
        out: o.out,
      });
      const r = await coresetStage(cfg);
      log(`${r.method}: ${r.description}`);
      log(`${r.file}: ${r.size} caption indices (selected in ${r.selectSeconds.toFixed(1)} s)`);
      return r;
    }),
  );

  withCommon(withForce(
    withData(program.command('eval').description('train fresh students on a training set and score retrieval'))
      .option('--synthetic <file>', 'a distilled set (synthetic.safetensors)')
      .option('--random <n>', 'a random coreset of n real pairs (a fresh draw per run)')
      .option('--indices <file>', 'a coreset given as a JSON array of caption indices')
      .option('--full', 'the full-data teacher (read from the expert buffer)')
      .option('--buffer <dir>', 'with --full: the expert buffer (default: the one `ptmst buffer` makes for this config)')
      .option('--runs <n>', 'students per method')
      .option('--out <dir>', 'folder for per-run records, so an interrupted evaluation resumes (default runs/eval/<key>)'),
  )).action((o: DataFlags & CommonOptions & { synthetic?: string; random?: string; indices?: string; full?: boolean; buffer?: string; runs?: string; out?: string }) =>
    runCommand('eval', o, async ({ progress, log }) => {
      const picked = [o.synthetic, o.random, o.indices, o.full].filter((v) => v !== undefined);
      if (picked.length !== 1) throw new ConfigError('give exactly one of --synthetic, --random, --indices, --full');
      const method = o.synthetic
        ? { kind: 'synthetic', file: o.synthetic }
        : o.random
          ? { kind: 'coreset', selection: 'random', size: num('--random', o.random) }
          : o.indices
            ? { kind: 'coreset', selection: 'indices', indices: readIndices(o.indices) }
            : { kind: 'full', ...(({ dir, numExperts }) => ({ buffer: dir, numExperts }))(expertBufferOf(merge(base(o), dataOverrides(o)), o.buffer)) };
      const cfg = merge(pick(base(o), ['data', 'model', 'eval', 'realLoss', 'workspace']), {
        ...dataOverrides(o),
        eval: { runs: num('--runs', o.runs) },
        method,
        force: o.force,
      });
      // per-run records under a folder named by the evaluation's config (each record is keyed by the synthetic
      // set's content too, so a changed file is never scored from stale records)
      const fingerprint = artefactKey({ ...cfg, eval: { ...(cfg.eval as object), runs: undefined }, force: undefined }).slice(0, 16);
      const r = await evaluateMethod({ ...cfg, out: o.out ?? join('runs', 'eval', fingerprint) }, progress, log);
      for (const [sel, s] of Object.entries(r.selections)) log(`${SELECTION_LABELS[sel as keyof typeof SELECTION_LABELS]}: r_mean ${fmt(s.rMean)}`);
      return { method: r.method, runs: r.runs, pairs: r.pairs, selections: r.selections, checkpoints: r.checkpoints };
    }),
  );

  withCommon(withForce(
    withData(program.command('repro').description('features → buffer → convexify → distill → eval for every method of a config, then the table'))
      .option('--workers <n>', 'worker threads'),
  )).action((o: DataFlags & CommonOptions & { workers?: string }) =>
    runCommand('repro', o, async ({ progress, log }) => {
      const cfg = merge(readConfigFile(o.config ?? 'shapes-quick'), { ...dataOverrides(o), workers: num('--workers', o.workers), force: o.force });
      const r = await repro(cfg, progress, log);
      process.stdout.write(r.table + '\n');
      log(`results: ${r.json}, ${r.markdown}, ${r.csv}`);
      return { results: r.json, table: r.markdown, csv: r.csv, methods: r.methods };
    }),
  );
}

/** The step hook's defaults are the distiller's and the model's (config/schemas.ts), never copies. */
const STEP_DEFAULTS = {
  loss: DistillConfig.shape.loss.parse(undefined),
  gradient: DistillConfig.shape.gradient.parse(undefined),
  temperature: ModelConfig.shape.temperature.parse(undefined),
};

export function registerStep(program: Command): void {
  withCommon(
    program
      .command('step')
      .description('parity hook: one distillation iteration from a state file, every gradient to safetensors')
      .option('--state <file>', 'state file (see src/distill/parity.ts for its tensors)')
      .option('--out <file>', 'where the loss and gradients go')
      .option('--example <file>', 'write a small example state file and exit')
      .option('--loss <name>', `loss (default ${STEP_DEFAULTS.loss}, the distillation default; the reference distils with wbce)`)
      .option('--mode <mode>', `tesla or full (default ${STEP_DEFAULTS.gradient})`)
      .option('--temperature <t>', `logit temperature (default ${STEP_DEFAULTS.temperature})`),
  ).action((o: CommonOptions & { state?: string; out?: string; example?: string; loss?: string; mode?: string; temperature?: string }) =>
    runCommand('step', o, async ({ log }) => {
      if (o.example) {
        await writeExampleState(o.example);
        log(`example state written to ${o.example}`);
        return { example: o.example };
      }
      if (!o.state || !o.out) throw new ConfigError('step needs --state FILE and --out FILE (or --example FILE)');
      const loss = o.loss ?? STEP_DEFAULTS.loss;
      const mode = o.mode ?? STEP_DEFAULTS.gradient;
      if (!(LOSS_NAMES as string[]).includes(loss)) throw new ConfigError(`option --loss: "${loss}" is not one of ${LOSS_NAMES.join(', ')}`);
      if (mode !== 'tesla' && mode !== 'full') throw new ConfigError(`option --mode: "${mode}" is not tesla or full`);
      const temperature = num('--temperature', o.temperature) ?? STEP_DEFAULTS.temperature;
      if (!(temperature > 0)) throw new ConfigError(`option --temperature: ${temperature} must be > 0 (logits are divided by it)`);
      const r = await parityStep(o.state, o.out, { loss: loss as LossName, mode, temperature });
      log(`matching loss ${r.loss}; gradients in ${o.out}`);
      return { state: o.state, out: o.out, loss: r.loss };
    }),
  );
}

/** `--indices FILE`: a JSON array of distinct caption indices. */
function readIndices(file: string): number[] {
  let v: unknown;
  try {
    v = JSON.parse(readFileOrFail(file).toString('utf8'));
  } catch (e) {
    if (e instanceof MissingFileError) throw e;
    throw new ConfigError(`option --indices: ${file} is not valid JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(v) || !v.every((i) => Number.isInteger(i) && i >= 0)) {
    throw new ConfigError(`option --indices: ${file} must hold a JSON array of caption indices (non-negative integers)`);
  }
  return v as number[];
}

function readFileOrFail(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new MissingFileError(file, `cannot read (${(e as Error).message})`);
  }
}
