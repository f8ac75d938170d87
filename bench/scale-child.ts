/**
 * A child of the scale benchmark (bench/scale.ts), one stage per process, its summary (wall seconds, peak RSS
 * from `process.resourceUsage().maxRSS`) written as JSON to the last argument:
 * - `write N dImg dTxt dataRoot cacheDir out.json`: generate the planted set (src/features/planted.ts);
 * - `read dataRoot cacheDir out.json`: load and verify its three splits, as every stage does.
 */
import { writeFileSync } from 'node:fs';
import { loadSplit } from '../src/data/registry';
import { loadFeatureSet } from '../src/features/feature-set';
import { PLANTED_DATASET, PLANTED_ENCODERS, writePlanted } from '../src/features/planted';

async function main(): Promise<void> {
  const [mode, ...args] = process.argv.slice(2);
  const out = args.at(-1)!;
  const t0 = performance.now();
  let extra: Record<string, unknown> = {};
  if (mode === 'write') {
    const [n, dImg, dTxt, dataRoot, cacheDir] = args;
    extra = { ...(await writePlanted({ pairs: Number(n), dImg: Number(dImg), dTxt: Number(dTxt), dataRoot: dataRoot!, cacheDir: cacheDir! })) };
  } else if (mode === 'read') {
    const [dataRoot, cacheDir] = args;
    const rows: number[] = [];
    for (const s of ['train', 'val', 'test'] as const) {
      const set = await loadFeatureSet(cacheDir!, await loadSplit(dataRoot!, PLANTED_DATASET, s), PLANTED_ENCODERS.image, PLANTED_ENCODERS.text);
      rows.push(set.numImages);
    }
    extra = { rows };
  } else {
    throw new Error(`scale-child: unknown mode ${mode}`);
  }
  writeFileSync(out, JSON.stringify({ wallSeconds: (performance.now() - t0) / 1000, peakRssMiB: process.resourceUsage().maxRSS / 1024, ...extra }));
}

main().catch((e: unknown) => {
  process.stderr.write(`scale-child: ${(e as Error).message}\n`);
  process.exit(1);
});
