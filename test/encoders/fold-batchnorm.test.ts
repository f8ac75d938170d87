import { strict as assert } from 'node:assert';
import { ready, tf } from '../../src/backend';
import { foldedForward } from '../../src/encoders/fold-batchnorm';
import { FEATURE_LAYER, NSFWJS_MODELS } from '../../src/encoders/nsfwjs';
import { maxAbs, maxAbsDiff } from '../helpers';

/**
 * foldedForward: a Keras CNN with its conv → BN (→ ReLU) chains folded gives the model's own features up to
 * float32 rounding, for both shipped encoders (MobileNetV2: ReLU6 layers, depthwise convolutions, residual adds;
 * InceptionV3: Activation('relu') layers, BN without scale, concatenations).
 */
describe('encoders/fold-batchnorm: foldedForward', function () {
  this.timeout(120_000);
  before(() => ready(() => undefined));

  for (const spec of Object.values(NSFWJS_MODELS)) {
    it(`${spec.nsfwjsName}: every chain folded, features equal the unfolded model's to 1e-4 of their scale`, async () => {
      const core = require('nsfwjs/core') as { load: (n: string, o: object) => Promise<{ model: tf.LayersModel; dispose(): void }> };
      const info = console.info;
      console.info = () => undefined;
      const net = await core.load(spec.nsfwjsName, { size: spec.inputSize, modelDefinitions: [spec.definition()] }).finally(() => (console.info = info));
      const folded = foldedForward(net.model, FEATURE_LAYER);
      try {
        const convs = net.model.layers.filter((l) => l.getClassName() === 'Conv2D' || l.getClassName() === 'DepthwiseConv2D').length;
        assert.equal(folded.folded, convs, 'every convolution of these models is followed by a batch normalisation');
        const before = tf.memory().numTensors;
        const [ours, theirs] = tf.tidy(() => {
          const x = tf.randomUniform([1, spec.inputSize, spec.inputSize, 3], -1, 1, 'float32', 5) as tf.Tensor4D;
          const reference = tf.model({ inputs: net.model.inputs, outputs: net.model.getLayer(FEATURE_LAYER).output });
          return [folded.predict(x).dataSync(), (reference.predict(x) as tf.Tensor).dataSync()];
        });
        assert.equal(tf.memory().numTensors, before, 'no tensor left behind');
        assert.equal(ours.length, theirs.length);
        const scale = maxAbs(theirs);
        const err = maxAbsDiff(ours, theirs);
        assert.ok(scale > 0.1, `non-trivial features (scale ${scale})`);
        assert.ok(err <= 1e-4 * scale, `max error ${err} against a scale of ${scale}`);
      } finally {
        folded.dispose();
        net.dispose();
      }
    });
  }
});
