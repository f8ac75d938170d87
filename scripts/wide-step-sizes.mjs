// Step sizes at the paper's CC3M head sizes (2304-d images, 768-d text, d = 2048) on planted data: paired Gaussian
// clusters (a latent z per pair, z = μ_k + ½ε, mapped by fixed random matrices into both feature spaces, plus
// noise), so retrieval is learnable. Trains a few experts, distils one phase per step-size setting, reports the
// matching loss (first, last, max, NaN) and the validation split's r_mean of students trained on each set.
// Run after `npm run build`:  node scripts/wide-step-sizes.mjs [iterations] [settings...]
// A setting is name=lrX,lrY,lrAlpha,lrS (default: the project's defaults and the paper's reference values).
import * as P from '../dist/src/index.js';

const D_IMG = 2304, D_TXT = 768, D_OUT = 2048, LATENT = 32, K = 16, NOISE = Number(process.env.NOISE ?? 3);
const [iterArg, ...settingArgs] = process.argv.slice(2);
const ITER = Number(iterArg ?? 30);

function planted(n, seed, mats) {
  const r = P.rng(seed);
  const g = () => { const u = Math.max(r.next(), 1e-12); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r.next()); };
  const img = new Float32Array(n * D_IMG), txt = new Float32Array(n * D_TXT);
  for (let i = 0; i < n; i++) {
    const k = i % K;
    const z = Float64Array.from({ length: LATENT }, (_, j) => mats.mu[k * LATENT + j] + 0.5 * g());
    for (const [out, A, d] of [[img, mats.A, D_IMG], [txt, mats.B, D_TXT]]) {
      for (let c = 0; c < d; c++) {
        let s = 0;
        for (let j = 0; j < LATENT; j++) s += A[c * LATENT + j] * z[j];
        out[i * d + c] = s / Math.sqrt(LATENT) + NOISE * g();
      }
    }
  }
  return {
    dataset: 'planted-wide', split: String(seed), imageEncoder: 'planted', textEncoder: 'planted', digest: `planted-${seed}-${n}`,
    numImages: n, numCaptions: n, dImg: D_IMG, dTxt: D_TXT, img, txt,
    captionToImage: Int32Array.from({ length: n }, (_, i) => i), imageToCaptions: Array.from({ length: n }, (_, i) => [i]),
  };
}

const r0 = P.rng(1);
const g0 = () => { const u = Math.max(r0.next(), 1e-12); return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * r0.next()); };
const mats = { mu: Float64Array.from({ length: K * LATENT }, g0), A: Float64Array.from({ length: D_IMG * LATENT }, g0), B: Float64Array.from({ length: D_TXT * LATENT }, g0) };
const train = planted(1024, 11, mats), val = planted(256, 12, mats), test = planted(256, 13, mats);

const model = P.ModelConfig.parse({ dOut: D_OUT });
const buf = P.BufferConfig.parse({ numExperts: 2, epochs: 4 });
const t0 = Date.now();
const trajectories = [];
for (let e = 0; e < buf.numExperts; e++) {
  const t = await P.trainExpert(train, { val }, { epochs: buf.epochs, lrImg: buf.lrImg, lrTxt: buf.lrTxt, batchSize: buf.batchSize, dropout: model.dropout, loss: buf.loss, dOut: D_OUT, temperature: model.temperature, label: `expert ${e}` }, P.rng(100 + e));
  trajectories.push({ ...t, snapshots: buf.epochs + 1 });
  console.log(`expert ${e}: val r_mean by epoch ${t.retrievalVal.map((x) => x.rMean.toFixed(1)).join(' ')} (${((Date.now() - t0) / 1000).toFixed(0)} s)`);
}
const shape = P.dualShape(D_IMG, D_TXT, D_OUT);
const settings = settingArgs.length ? settingArgs : ['defaults=30,30,1e-5,0.03', 'paper-flickr=1000,1000,0.01,10', 'paper-cc3m=1000,1000,0.01,50'];
const evalCfg = P.EvalConfig.parse({ runs: 1, epochs: 20, evalEvery: 10, decayEpoch: 15 });
const student = async (subset, label) => {
  const run = await P.trainStudent([subset], { val, test }, shape, model, evalCfg, P.rng(7), label);
  return Math.max(...run.checkpoints.map((c) => c.val.rMean));
};
const SIZE = 32;
// baseline: random real pairs, identity S, the experts' learning rate
{
  const idx = Array.from({ length: SIZE }, (_, i) => (i * 31) % train.numCaptions);
  const x = new Float32Array(SIZE * D_IMG), y = new Float32Array(SIZE * D_TXT);
  idx.forEach((c, i) => { x.set(train.img.subarray(c * D_IMG, (c + 1) * D_IMG), i * D_IMG); y.set(train.txt.subarray(c * D_TXT, (c + 1) * D_TXT), i * D_TXT); });
  console.log(`random-${SIZE} (no distillation): val r_mean ${(await student({ n: SIZE, x, y, lrImg: 0.1, lrTxt: 0.1, loss: 'infonce' }, 'random')).toFixed(2)}`);
}
for (const s of settings) {
  const [name, v] = s.split('=');
  const [lrX, lrY, lrAlpha, lrS] = v.split(',').map(Number);
  const config = P.DistillConfig.parse({ phases: [{ source: 'experts', start: [0, 2], size: SIZE, iterations: ITER }], batchSyn: 16, synSteps: 8, lrX, lrY, lrAlpha, lrS });
  const t1 = Date.now();
  let line;
  try {
    const out = await P.distillPhase({ index: 0, phase: config.phases[0], config, train, trajectories, shape, temperature: model.temperature, dropout: model.dropout });
    const L = Array.from(out.losses);
    const st = out.state;
    const [lrImg, lrTxt] = [st.lrImg.dataSync()[0], st.lrTxt.dataSync()[0]];
    const subset = { n: SIZE, x: st.x.dataSync(), y: st.y.dataSync(), s: st.sFull?.dataSync(), lrImg, lrTxt, loss: config.loss };
    const rm = await student(subset, name);
    line = `loss first ${L[0].toFixed(4)} min ${Math.min(...L).toFixed(4)} last ${L[L.length - 1].toFixed(4)} max ${Math.max(...L).toFixed(4)}; α ${lrImg.toFixed(4)}/${lrTxt.toFixed(4)}; val r_mean ${rm.toFixed(2)}`;
  } catch (e) {
    line = `FAILED: ${e.constructor.name}: ${e.message.split('\n')[0]}`;
  }
  console.log(`${name} (lrX ${lrX}, lrY ${lrY}, lrAlpha ${lrAlpha}, lrS ${lrS}), ${ITER} iterations: ${line} (${((Date.now() - t1) / 1000).toFixed(0)} s)`);
}
