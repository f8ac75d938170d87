/** `ptmst import-features`: features computed elsewhere (.npy, .npz, .safetensors) into the feature cache. */
import type { Command } from 'commander';
import { importFeatures } from '../../features/import';
import { type CommonOptions, runCommand } from '../run';

interface Options extends CommonOptions {
  dataset: string;
  split: string;
  modality: string;
  file: string;
  key?: string;
  encoder: string;
  provenance?: string;
  ids?: string;
  dataRoot?: string;
  cacheDir?: string;
  workspace?: string;
  force?: boolean;
  cc3mSplit?: string;
  cc3mTestLimit?: string;
}

export function register(program: Command): void {
  program
    .command('import-features')
    .description('import features computed elsewhere (.npy, .npz, .safetensors; float16/32/64) into the cache, under an external encoder name')
    .requiredOption('--dataset <name>', 'dataset whose split order the rows follow')
    .requiredOption('--split <name>', 'train, val or test')
    .requiredOption('--modality <kind>', 'image (one row per image) or text (one row per caption, in annotation order)')
    .requiredOption('--file <path>', 'the .npy, .npz or .safetensors file (PyTorch .pt files are refused)')
    .option('--key <name>', 'the npz array or safetensors tensor (default: the only one)')
    .requiredOption('--encoder <id>', 'the name the features go under (data.imageEncoder / data.textEncoder)')
    .option('--provenance <text>', 'free text recorded in the manifest: model, weights, preprocessing')
    .option('--ids <file>', 'row ids (text, one a line, or a 1-D .npy): image names (for text: the image of each caption) or row indices')
    .option('--data-root <dir>', 'folder holding <dataset>/ (default: $PTMST_DATA_ROOT)')
    .option('--cache-dir <dir>', 'where features/ is written (default data)')
    .option('--workspace <dir>', 'the folder --cache-dir is relative to (default: the current folder)')
    .option('--cc3m-split <rule>', 'cc3m only: 3:1:1 (default) or holdout, as data.cc3mSplit of the later stages')
    .option('--cc3m-test-limit <n>', 'cc3m only: test entries kept, the first ones (default 10000; "all" for every one), as data.cc3mTestLimit')
    .option('--force', 'replace a cache made from another source')
    .option('--json <path>', 'write a machine-readable summary here')
    .option('--no-progress', 'no progress bars or lines')
    .action((o: Options) =>
      runCommand('import-features', o, async ({ log }) => {
        const r = await importFeatures({
          dataset: o.dataset,
          split: o.split as 'train',
          modality: o.modality as 'image',
          file: o.file,
          key: o.key,
          encoder: o.encoder,
          provenance: o.provenance,
          ids: o.ids,
          dataRoot: o.dataRoot,
          cacheDir: o.cacheDir,
          workspace: o.workspace,
          force: o.force ?? false,
          ...(o.cc3mSplit === undefined ? {} : { cc3mSplit: o.cc3mSplit as '3:1:1' }),
          ...(o.cc3mTestLimit === undefined ? {} : { cc3mTestLimit: o.cc3mTestLimit === 'all' ? null : Number(o.cc3mTestLimit) }),
        });
        const m = r.manifest;
        log(`${m.split.padEnd(5)} ${m.modality.padEnd(5)} ${m.count} × ${m.dim}  ${r.reused ? 'already imported' : `imported from ${m.source?.file} (${m.source?.dtype})`}  ${r.paths.file}`);
        return { file: r.paths.file, manifest: r.paths.manifest, reused: r.reused, count: m.count, dim: m.dim, encoder: m.encoder, source: m.source };
      }),
    );
}
