import * as tf from '@tensorflow/tfjs-core';
import * as tfl from '@tensorflow/tfjs-layers';

/**
 * A small MobileNet-style CNN with genuinely float32 weights (conv + batch norm + ReLU6, depthwise, residual add,
 * global pooling), trained briefly so batch norm carries real statistics. The bundled default backbone is already
 * uint8 per tensor, so the quantizer is proven on this too. Training needs gradient kernels the wasm backend
 * lacks: call on the cpu backend.
 */
export async function trainTinyCnn(images: readonly Uint8Array[], labels: readonly number[], size: number) {
  const input = tfl.input({ shape: [size, size, 3] });
  const convBn = (x: tfl.SymbolicTensor, filters: number, name: string, strides = 1) =>
    tfl.layers
      .batchNormalization({ name: `${name}_bn` })
      .apply(
        tfl.layers
          .conv2d({ filters, kernelSize: 3, strides, padding: 'same', useBias: false, name })
          .apply(x),
      ) as tfl.SymbolicTensor;
  const relu6 = (x: tfl.SymbolicTensor, name: string) =>
    tfl.layers.reLU({ maxValue: 6, name }).apply(x) as tfl.SymbolicTensor;
  const stem = relu6(convBn(input, 16, 'stem', 2), 'stem_relu');
  const dw = tfl.layers
    .batchNormalization({ name: 'dw_bn' })
    .apply(
      tfl.layers.depthwiseConv2d({ kernelSize: 3, padding: 'same', useBias: false, name: 'dw' }).apply(stem),
    );
  const proj = convBn(relu6(dw as tfl.SymbolicTensor, 'dw_relu'), 16, 'project');
  const sum = tfl.layers.add({ name: 'residual_add' }).apply([stem, proj]) as tfl.SymbolicTensor;
  const feat = tfl.layers.globalAveragePooling2d({ name: 'features' }).apply(sum) as tfl.SymbolicTensor;
  const k = Math.max(...labels) + 1;
  const out = tfl.layers
    .dense({ units: k, activation: 'softmax', name: 'logits' })
    .apply(feat) as tfl.SymbolicTensor;
  const model = tfl.model({ inputs: input, outputs: out });
  model.compile({ optimizer: tf.train.adam(0.01), loss: 'categoricalCrossentropy' });
  const px = size * size * 3;
  const buf = new Float32Array(images.length * px);
  images.forEach((img, i) => {
    for (let j = 0; j < px; j++) buf[i * px + j] = img[j]! / 255;
  });
  const xs = tf.tensor4d(buf, [images.length, size, size, 3]);
  const ys = tf.tidy(() => tf.oneHot(tf.tensor1d(Array.from(labels), 'int32'), k));
  await model.fit(xs, ys, { epochs: 4, batchSize: 8, verbose: 0 });
  xs.dispose();
  ys.dispose();
  return model;
}
