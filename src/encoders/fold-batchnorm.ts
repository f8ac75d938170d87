/**
 * Inference for a frozen Keras CNN with its batch normalisations folded into the convolutions before them.
 *
 * At inference a BatchNormalization after a convolution is a per-channel affine map, y = s·(conv(x) − μ) + β with
 * s = γ / √(σ² + ε), so it equals one convolution with kernel W·s and bias β − μ·s (plus s·b for a conv bias); the
 * ReLU / ReLU6 after it becomes the fused convolution's activation. tfjs-layers runs the three as separate
 * kernels; on tfjs-wasm the batch normalisation alone took 43 of the 112 ms per MobileNetV2 image, and ReLU and its
 * clip 6 more. `foldedForward` walks the model's layer graph once, precomputes the folded kernels, and runs a
 * chain conv → BN (→ activation) as one `tf.fused.conv2d` / `tf.fused.depthwiseConv2d`; every other layer runs as
 * its own `apply`. The result equals the model's up to float32 rounding (test/encoders/fold-batchnorm.test.ts).
 */
import { tf } from '../backend';

type Layer = tf.layers.Layer;
type FusedActivation = 'linear' | 'relu' | 'relu6';

interface FoldedConv {
  readonly kind: 'conv' | 'depthwise';
  readonly filter: tf.Tensor4D;
  readonly bias: tf.Tensor1D;
  readonly strides: [number, number];
  readonly pad: 'valid' | 'same';
  readonly dilations: [number, number];
  readonly activation: FusedActivation;
}

const inbound = (layer: Layer): Layer[] => (layer.inboundNodes[0]?.inboundLayers ?? []) as Layer[];

/** The fused activation an activation layer amounts to, or undefined when it is not one tf.fused supports. */
function activationOf(layer: Layer): FusedActivation | undefined {
  const config = layer.getConfig() as { activation?: string; maxValue?: number | null; threshold?: number; negativeSlope?: number };
  if (layer.getClassName() === 'Activation') return config.activation === 'relu' ? 'relu' : config.activation === 'linear' ? 'linear' : undefined;
  if (layer.getClassName() !== 'ReLU' || (config.threshold ?? 0) !== 0 || (config.negativeSlope ?? 0) !== 0) return undefined;
  return config.maxValue == null ? 'relu' : config.maxValue === 6 ? 'relu6' : undefined;
}

/** The conv's kernel and bias with the batch normalisation `bn` folded in (per output channel). */
function fold(conv: Layer, bn: Layer): { filter: tf.Tensor4D; bias: tf.Tensor1D } | undefined {
  const c = bn.getConfig() as { axis: number | number[]; epsilon: number; center: boolean; scale: boolean };
  const axis = Array.isArray(c.axis) ? c.axis : [c.axis];
  if (axis.length !== 1 || (axis[0] !== -1 && axis[0] !== 3)) return undefined;
  const w = bn.getWeights();
  let i = 0;
  const gamma = c.scale ? w[i++]! : undefined;
  const beta = c.center ? w[i++]! : undefined;
  const mean = w[i++]!;
  const variance = w[i++]!;
  const convWeights = conv.getWeights();
  const kernel = convWeights[0] as tf.Tensor4D;
  const convBias = convWeights[1];
  return tf.tidy(() => {
    const s = tf.div(gamma ?? tf.onesLike(variance), tf.sqrt(tf.add(variance, c.epsilon)));
    // Conv2D kernels are [h, w, in, out]; depthwise ones [h, w, in, multiplier], output channel = in · multiplier + m
    const filter = tf.mul(kernel, tf.reshape(s, conv.getClassName() === 'DepthwiseConv2D' ? [1, 1, kernel.shape[2], kernel.shape[3]] : [1, 1, 1, -1])) as tf.Tensor4D;
    const shift = tf.sub(beta ?? tf.zerosLike(mean), tf.mul(mean, s));
    const bias = (convBias ? tf.add(tf.mul(convBias, s), shift) : shift) as tf.Tensor1D;
    return { filter, bias };
  });
}

/** The conv → BN (→ activation) chain that starts at `conv`, folded; undefined when the chain is not foldable. */
function foldChain(conv: Layer, consumers: Map<Layer, Layer[]>): { folded: FoldedConv; covers: Layer[] } | undefined {
  const kind = conv.getClassName() === 'Conv2D' ? 'conv' : conv.getClassName() === 'DepthwiseConv2D' ? 'depthwise' : undefined;
  if (kind === undefined) return undefined;
  const config = conv.getConfig() as {
    strides: [number, number]; padding: string; dilationRate: number | [number, number]; dataFormat: string; activation: string; depthMultiplier?: number;
  };
  if (config.dataFormat !== 'channelsLast' || config.activation !== 'linear' || (config.padding !== 'valid' && config.padding !== 'same')) return undefined;
  const next = consumers.get(conv) ?? [];
  const bn = next[0];
  if (next.length !== 1 || bn === undefined || bn.getClassName() !== 'BatchNormalization') return undefined;
  const weights = fold(conv, bn);
  if (weights === undefined) return undefined;
  const after = consumers.get(bn) ?? [];
  const act = after.length === 1 ? activationOf(after[0]!) : undefined;
  const d = config.dilationRate;
  return {
    folded: {
      kind,
      ...weights,
      strides: config.strides,
      pad: config.padding,
      dilations: typeof d === 'number' ? [d, d] : d,
      activation: act ?? 'linear',
    },
    covers: act !== undefined ? [conv, bn, after[0]!] : [conv, bn],
  };
}

function run(f: FoldedConv, x: tf.Tensor4D): tf.Tensor4D {
  const args = { x, filter: f.filter, strides: f.strides, pad: f.pad, dilations: f.dilations, bias: f.bias, activation: f.activation };
  return f.kind === 'conv' ? tf.fused.conv2d(args) : tf.fused.depthwiseConv2d(args);
}

export interface FoldedModel {
  /** the named layer's output for a batch of inputs (call inside tf.tidy) */
  predict(x: tf.Tensor4D): tf.Tensor;
  /** how many conv → BN (→ activation) chains were folded */
  readonly folded: number;
  /** the folded kernels and biases (the model's own weights stay with the model) */
  dispose(): void;
}

/** An inference function for `model` up to layer `outputLayer`, with conv → BN (→ ReLU) chains folded. */
export function foldedForward(model: tf.LayersModel, outputLayer: string): FoldedModel {
  const layers = model.layers as Layer[];
  const consumers = new Map<Layer, Layer[]>();
  for (const layer of layers) for (const from of inbound(layer)) consumers.set(from, [...(consumers.get(from) ?? []), layer]);
  // each layer: run it, a folded chain it starts, or nothing (covered by the chain of an earlier layer)
  const plan = new Map<Layer, FoldedConv | 'apply' | 'covered'>();
  /** the layer whose output a covered layer's output equals: the chain's last layer maps to its start */
  const chainEnd = new Map<Layer, Layer>();
  for (const layer of layers) {
    if (plan.has(layer)) continue;
    const chain = foldChain(layer, consumers);
    if (chain === undefined) {
      plan.set(layer, 'apply');
      continue;
    }
    plan.set(layer, chain.folded);
    for (const covered of chain.covers.slice(1)) plan.set(covered, 'covered');
    chainEnd.set(chain.covers[chain.covers.length - 1]!, layer);
  }
  const target = model.getLayer(outputLayer) as Layer;
  const foldedConvs = [...plan.values()].filter((p): p is FoldedConv => typeof p === 'object');
  return {
    folded: foldedConvs.length,
    predict(x) {
      const out = new Map<Layer, tf.Tensor>();
      for (const layer of layers) {
        const step = plan.get(layer)!;
        if (layer.getClassName() === 'InputLayer') out.set(layer, x);
        else if (step === 'covered') {
          const start = chainEnd.get(layer);
          if (start !== undefined) out.set(layer, out.get(start)!);
        } else {
          const inputs = inbound(layer).map((l) => {
            const t = out.get(l);
            if (t === undefined) throw new Error(`foldedForward: layer ${layer.name} needs ${l.name}, which has not run (the model's layer order is not topological)`);
            return t;
          });
          out.set(layer, step === 'apply' ? (layer.apply(inputs.length === 1 ? inputs[0]! : inputs) as tf.Tensor) : run(step, inputs[0] as tf.Tensor4D));
        }
        if (layer === target) return out.get(layer)!;
      }
      throw new Error(`foldedForward: layer ${outputLayer} is not in the model`);
    },
    dispose() {
      for (const f of foldedConvs) tf.dispose([f.filter, f.bias]);
    },
  };
}
