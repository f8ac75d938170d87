import type { Command } from 'commander';
import { computeFeatures } from '../../features';
import { type CommonOptions, runCommand } from '../run';

interface Options extends CommonOptions {
  dataset?: string;
  dataRoot?: string;
  cacheDir?: string;
  imageEncoder?: string;
  textEncoder?: string;
  splits?: string;
  workers?: string;
  chunkSize?: string;
  force?: boolean;
  workspace?: string;
}

export function register(program: Command): void {
  program
    .command('features')
    .description('encode every split of a dataset with the frozen image and text encoders (cached, resumable)')
    .option('--dataset <name>', 'dataset in the registry (default flickr8k)')
    .option('--data-root <dir>', 'folder holding <dataset>/ (default: $PTMST_DATA_ROOT)')
    .option('--cache-dir <dir>', 'where features/ is written (default data)')
    .option('--workspace <dir>', 'the folder --cache-dir is relative to (default: the current folder)')
    .option('--image-encoder <name>', 'image encoder (default mobilenet_v2)')
    .option('--text-encoder <name>', 'text encoder (default wink-sg-100d)')
    .option('--splits <list>', 'comma-separated splits (default: all)')
    .option('--workers <n>', 'image worker threads (default: cores, at most 2)')
    .option('--chunk-size <n>', 'images per resumable chunk (default 256)')
    .option('--force', 'recompute even when the cache is valid')
    .option('--json <path>', 'write a machine-readable summary here')
    .option('--no-progress', 'no progress bars or lines')
    .action((o: Options) =>
      runCommand('features', o, async ({ progress, log }) => {
        const { config, outputs } = await computeFeatures(
          {
            dataset: o.dataset,
            dataRoot: o.dataRoot,
            cacheDir: o.cacheDir,
            imageEncoder: o.imageEncoder,
            textEncoder: o.textEncoder,
            splits: o.splits?.split(','),
            workers: o.workers,
            chunkSize: o.chunkSize,
            force: o.force ?? false,
            workspace: o.workspace,
          },
          progress,
        );
        for (const r of outputs) {
          const how = r.reused ? 'cached' : r.resumedChunks > 0 ? `computed (resumed ${r.resumedChunks} chunks)` : 'computed';
          log(`${r.split.padEnd(5)} ${r.modality.padEnd(5)} ${r.manifest.count} × ${r.manifest.dim}  ${how}  ${r.paths.file}`);
        }
        return {
          config,
          outputs: outputs.map((r) => ({
            split: r.split,
            modality: r.modality,
            file: r.paths.file,
            count: r.manifest.count,
            dim: r.manifest.dim,
            encoder: r.manifest.encoder,
            reused: r.reused,
            resumedChunks: r.resumedChunks,
            wallSeconds: r.reused ? 0 : r.manifest.wallSeconds,
          })),
        };
      }),
    );
}
