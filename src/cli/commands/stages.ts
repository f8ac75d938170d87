/** CLI commands for the pipeline stages: buffer, convexify, distill, eval, repro. */
import type { Command } from 'commander';
import { ConfigError } from '../../config/parse';
import { distill } from '../../distill';
import { parityStep, writeExampleState } from '../../distill/parity';
import { LOSS_NAMES, type LossName } from '../../model/losses';
import { evaluateMethod } from '../../evaluate';
import { SELECTION_LABELS } from '../../evaluate/summary';
import { fmt } from '../../figures/tables';
import { repro } from '../../pipeline/repro';
import { buildBuffer } from '../../trajectory/buffer';
import { convexifyBuffer } from '../../trajectory/convexify';
import { merge, num, readConfigFile } from '../config-file';
import { type CommonOptions, runCommand } from '../run';

interface DataFlags {
  config?: string;
  dataset?: string;
  dataRoot?: string;
  cacheDir?: string;
}

const withCommon = (c: Command) =>
  c.option('--json <path>', 'write a machine-readable summary here').option('--no-progress', 'no progress bars');

const withData = (c: Command) =>
  c
    .option('--config <file>', 'JSON config (a path, or a name in configs/)')
    .option('--dataset <name>', 'dataset (flickr8k, flickr30k, coco, shapes)')
    .option('--data-root <dir>', 'folder holding <dataset>/ (default: $PTMST_DATA_ROOT)')
    .option('--cache-dir <dir>', 'features and generated data (default: data)');

function dataOverrides(o: DataFlags): Record<string, unknown> {
  return { data: { dataset: o.dataset, dataRoot: o.dataRoot, cacheDir: o.cacheDir } };
}

const base = (o: DataFlags) => (o.config ? readConfigFile(o.config) : {});

/** Only the sections a stage's schema knows (a repro config holds more). */
function pick(c: Record<string, unknown>, keys: readonly string[]): Record<string, unknown> {
  return Object.fromEntries(keys.filter((k) => c[k] !== undefined).map((k) => [k, c[k]]));
}

export function register(program: Command): void {
  withCommon(
    withData(program.command('buffer').description('train expert trajectories (resumes at the next unfinished expert)'))
      .option('--experts <n>', 'number of experts')
      .option('--epochs <n>', 'epochs per expert')
      .option('--seed <n>', 'seed')
      .option('--d <n>', 'head output size')
      .option('--workers <n>', 'worker threads')
      .option('--out <dir>', 'buffer folder'),
  ).action((o: DataFlags & CommonOptions & { experts?: string; epochs?: string; seed?: string; d?: string; workers?: string; out?: string }) =>
    runCommand('buffer', o, async ({ progress, log }) => {
      const cfg = merge(pick(base(o), ['data', 'model', 'buffer']), {
        ...dataOverrides(o),
        model: { dOut: num('--d', o.d) },
        buffer: { numExperts: num('--experts', o.experts), epochs: num('--epochs', o.epochs), seed: num('--seed', o.seed), workers: num('--workers', o.workers) },
        out: o.out,
      });
      const r = await buildBuffer(cfg, progress);
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

  withCommon(
    withData(program.command('distill').description('distil a synthetic set with phased teachers (resumable)'))
      .option('--iterations <n>', 'iterations of every phase')
      .option('--out <dir>', 'run folder (default runs/<name>)')
      .option('--workers <n>', 'worker threads (phases run side by side)'),
  ).action((o: DataFlags & CommonOptions & { iterations?: string; out?: string; workers?: string }) =>
    runCommand('distill', o, async ({ progress, log }) => {
      const c = base(o);
      const its = num('--iterations', o.iterations);
      const d = (c.distill ?? {}) as { phases?: Record<string, unknown>[] };
      const cfg = merge(pick(c, ['name', 'data', 'model', 'buffer', 'distill']), {
        ...dataOverrides(o),
        distill: its !== undefined && d.phases ? { phases: d.phases.map((p) => ({ ...p, iterations: its })) } : undefined,
        out: o.out,
        workers: num('--workers', o.workers),
      });
      const r = await distill(cfg, progress);
      log(`${r.file}: ${r.phases.map((p) => `${p.size} pairs (${p.iterations} its, loss ${p.finalLoss.toFixed(3)})`).join(' + ')}`);
      return r;
    }),
  );

  withCommon(
    withData(program.command('eval').description('train fresh students on a training set and score retrieval'))
      .option('--synthetic <file>', 'a distilled set (synthetic.safetensors)')
      .option('--random <n>', 'a random coreset of n real pairs (a fresh draw per run)')
      .option('--indices <file>', 'a coreset given as a JSON array of caption indices')
      .option('--full', 'the full-data teacher (read from the expert buffer)')
      .option('--runs <n>', 'students per method'),
  ).action((o: DataFlags & CommonOptions & { synthetic?: string; random?: string; indices?: string; full?: boolean; runs?: string }) =>
    runCommand('eval', o, async ({ progress, log }) => {
      const picked = [o.synthetic, o.random, o.indices, o.full].filter((v) => v !== undefined);
      if (picked.length !== 1) throw new Error('give exactly one of --synthetic, --random, --indices, --full');
      const method = o.synthetic
        ? { kind: 'synthetic', file: o.synthetic }
        : o.random
          ? { kind: 'coreset', selection: 'random', size: num('--random', o.random) }
          : o.indices
            ? { kind: 'coreset', selection: 'indices', indices: readConfigFile(o.indices) }
            : { kind: 'full' };
      const cfg = merge(pick(base(o), ['data', 'model', 'buffer', 'eval', 'realLoss']), { ...dataOverrides(o), eval: { runs: num('--runs', o.runs) }, method });
      const r = await evaluateMethod(cfg, progress);
      for (const [sel, s] of Object.entries(r.selections)) log(`${SELECTION_LABELS[sel as keyof typeof SELECTION_LABELS]}: r_mean ${fmt(s.rMean)}`);
      return { method: r.method, runs: r.runs, pairs: r.pairs, selections: r.selections, checkpoints: r.checkpoints };
    }),
  );

  withCommon(
    withData(program.command('repro').description('features → buffer → convexify → distill → eval for every method of a config, then the table'))
      .option('--workers <n>', 'worker threads'),
  ).action((o: DataFlags & CommonOptions & { workers?: string }) =>
    runCommand('repro', o, async ({ progress, log }) => {
      const cfg = merge(readConfigFile(o.config ?? 'shapes-quick'), { ...dataOverrides(o), workers: num('--workers', o.workers) });
      const r = await repro(cfg, progress, log);
      process.stdout.write(r.table + '\n');
      log(`results: ${r.json}, ${r.markdown}`);
      return { results: r.json, table: r.markdown, methods: r.methods };
    }),
  );
}

export function registerStep(program: Command): void {
  withCommon(
    program
      .command('step')
      .description('parity hook: one distillation iteration from a state file, every gradient to safetensors')
      .option('--state <file>', 'state file (see src/distill/parity.ts for its tensors)')
      .option('--out <file>', 'where the loss and gradients go')
      .option('--example <file>', 'write a small example state file and exit')
      .option('--loss <name>', 'loss', 'wbce')
      .option('--mode <mode>', 'tesla or full', 'tesla')
      .option('--temperature <t>', 'logit temperature', '0.07'),
  ).action((o: CommonOptions & { state?: string; out?: string; example?: string; loss: string; mode: string; temperature: string }) =>
    runCommand('step', o, async ({ log }) => {
      if (o.example) {
        await writeExampleState(o.example);
        log(`example state written to ${o.example}`);
        return { example: o.example };
      }
      if (!o.state || !o.out) throw new ConfigError('step needs --state FILE and --out FILE (or --example FILE)');
      if (!(LOSS_NAMES as string[]).includes(o.loss)) throw new ConfigError(`option --loss: "${o.loss}" is not one of ${LOSS_NAMES.join(', ')}`);
      if (o.mode !== 'tesla' && o.mode !== 'full') throw new ConfigError(`option --mode: "${o.mode}" is not tesla or full`);
      const r = await parityStep(o.state, o.out, { loss: o.loss as LossName, mode: o.mode, temperature: num('--temperature', o.temperature)! });
      log(`matching loss ${r.loss}; gradients in ${o.out}`);
      return { state: o.state, out: o.out, loss: r.loss };
    }),
  );
}
