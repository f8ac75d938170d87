/**
 * Wall time of the feature-space coresets (herding, k-center, k-means) on a generated feature set:
 * `node dist/bench/coreset-scale.js N [size] [dImg] [dTxt] [rules]`. The set is paired Gaussian clusters (64 of
 * them; each pair's image and caption rows are its cluster's centre plus noise), generated row by row from a
 * seed, so the run needs only the feature bytes. Prints one JSON line per rule: seconds and peak RSS. The rule `kmeans-minibatch` runs
 * mini-batch k-means at any N (the k-means rule uses it only above KMEANS_EXACT_MAX_ROWS pairs).
 */
import { ready } from '../src/backend';
import { selectCoreset } from '../src/coreset';
import { kMeansCoresetOf } from '../src/coreset/kmeans';
import type { FeatureSet } from '../src/features/feature-set';
import { normal, rng } from '../src/util/random';

function generated(n: number, dImg: number, dTxt: number, seed: number): FeatureSet {
  const r = rng(seed);
  const clusters = 64;
  const ci = Float32Array.from({ length: clusters * dImg }, () => normal(r));
  const ct = Float32Array.from({ length: clusters * dTxt }, () => normal(r));
  const img = new Float32Array(n * dImg);
  const txt = new Float32Array(n * dTxt);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r.next() * clusters);
    for (let q = 0; q < dImg; q++) img[i * dImg + q] = ci[c * dImg + q]! + 1.5 * normal(r);
    for (let q = 0; q < dTxt; q++) txt[i * dTxt + q] = ct[c * dTxt + q]! + 1.5 * normal(r);
  }
  const captionToImage = Int32Array.from({ length: n }, (_, j) => j);
  const imageToCaptions = Array.from({ length: n }, (_, i) => [i]);
  return { dataset: 'generated', split: 'train', imageEncoder: 'gen', textEncoder: 'gen', digest: `gen-${n}`, numImages: n, numCaptions: n, dImg, dTxt, img, txt, captionToImage, imageToCaptions };
}

async function main(): Promise<void> {
  const [nArg, sizeArg, dImgArg, dTxtArg, rulesArg] = process.argv.slice(2);
  const n = Number(nArg ?? 10000);
  const size = Number(sizeArg ?? 100);
  const dImg = Number(dImgArg ?? 2304);
  const dTxt = Number(dTxtArg ?? 768);
  const rules = (rulesArg ?? 'kcenter,herding,kmeans').split(',');
  await ready(() => {});
  const t0 = performance.now();
  const set = generated(n, dImg, dTxt, 1);
  const genSeconds = (performance.now() - t0) / 1000;
  for (const rule of rules) {
    const t = performance.now();
    // kmeans-minibatch: the mini-batch path whatever N (the rule switches to it above KMEANS_EXACT_MAX_ROWS)
    const picked = rule === 'kmeans-minibatch' ? kMeansCoresetOf(set, size, rng(7), 0) : selectCoreset(rule, { train: set }, size, rng(7));
    const seconds = (performance.now() - t) / 1000;
    const head = Array.from(picked.subarray(0, 5));
    console.log(JSON.stringify({ rule, n, size, dImg, dTxt, seconds: +seconds.toFixed(2), genSeconds: +genSeconds.toFixed(1), peakRssGiB: +(process.resourceUsage().maxRSS / 2 ** 20).toFixed(2), head }));
  }
}

main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
