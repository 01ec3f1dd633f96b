import '@tensorflow/tfjs-backend-cpu';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { initTf } from '../tf/tf-runtime.js';
import { createRng } from '../train/numerics.js';
import {
  type Activation,
  type DepthwiseSpec,
  depthwiseConv,
  explicitPad,
  pointwiseConv,
} from './trainable-ops.js';

/**
 * The reference is tfjs' own autodiff of conv2d / depthwiseConv2d on the cpu backend (which has the backprop
 * kernels); the ops under test run on wasm, which does not.
 */
async function onBackend<T>(backend: 'cpu' | 'wasm', fn: () => T): Promise<T> {
  await initTf({ backend });
  let out: T | undefined;
  tf.tidy(() => {
    out = fn();
  });
  return out as T;
}

function seeded(shape: number[], seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => rng() * 4 - 2);
}

function maxAbsDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

const applyActivation = (y: tf.Tensor, activation: Activation) =>
  activation === 'relu6' ? tf.relu6(y) : activation === 'relu' ? tf.relu(y) : y;

afterAll(async () => {
  await initTf();
});

describe('wasm-differentiable convolutions', () => {
  const cases: { name: string; size: number; spec: DepthwiseSpec; activation: Activation }[] = [
    { name: "stride 1, 'same'", size: 6, spec: { strides: [1, 1], pad: 'same' }, activation: 'relu6' },
    {
      name: 'stride 2, explicit (0,1) padding as MobileNetV2 uses',
      size: 6,
      spec: {
        strides: [2, 2],
        pad: [
          [0, 1],
          [0, 1],
        ],
      },
      activation: 'relu6',
    },
    {
      name: "stride 2, 'same' on an odd size",
      size: 7,
      spec: { strides: [2, 2], pad: 'same' },
      activation: 'linear',
    },
  ];

  for (const c of cases) {
    it(`gives a depthwise convolution the gradients tfjs computes on cpu (${c.name})`, async () => {
      const x = seeded([2, c.size, c.size, 3], 1);
      const w = seeded([3, 3, 3, 1], 2);
      const b = seeded([3], 3);
      const { pad, outH } = explicitPad(c.size, c.size, [3, 3], c.spec);
      const up = seeded([2, outH, outH, 3], 4);
      const args = () => [
        tf.tensor4d(x, [2, c.size, c.size, 3]),
        tf.tensor4d(w, [3, 3, 3, 1]),
        tf.tensor1d(b),
      ];
      const reference = await onBackend('cpu', () =>
        tf
          .grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
            const y = tf.add(
              tf.depthwiseConv2d(xx as tf.Tensor4D, ww as tf.Tensor4D, c.spec.strides, [
                [0, 0],
                pad[0],
                pad[1],
                [0, 0],
              ] as unknown as 'valid'),
              bb,
            );
            return tf.sum(tf.mul(applyActivation(y, c.activation), tf.tensor4d(up, [2, outH, outH, 3])));
          })(args())
          .map((g) => g.dataSync() as Float32Array),
      );
      const ours = await onBackend('wasm', () =>
        tf
          .grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) =>
            tf.sum(
              tf.mul(
                depthwiseConv(xx as tf.Tensor4D, ww as tf.Tensor4D, bb as tf.Tensor1D, c.activation, c.spec),
                tf.tensor4d(up, [2, outH, outH, 3]),
              ),
            ),
          )(args())
          .map((g) => g.dataSync() as Float32Array),
      );
      for (let i = 0; i < 3; i++) expect(maxAbsDiff(ours[i]!, reference[i]!)).toBeLessThan(1e-4);
    });
  }

  it('gives a 1x1 convolution the gradients of conv2d, and skips the input gradient when told to', async () => {
    const x = seeded([2, 4, 4, 5], 5);
    const w = seeded([5, 7], 6);
    const b = seeded([7], 7);
    const up = seeded([2, 4, 4, 7], 8);
    const args = () => [tf.tensor4d(x, [2, 4, 4, 5]), tf.tensor2d(w, [5, 7]), tf.tensor1d(b)];
    const reference = await onBackend('cpu', () =>
      tf
        .grads((xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor) => {
          const y = tf.add(
            tf.conv2d(xx as tf.Tensor4D, tf.reshape(ww, [1, 1, 5, 7]) as tf.Tensor4D, 1, 'valid'),
            bb,
          );
          return tf.sum(tf.mul(tf.relu6(y), tf.tensor4d(up, [2, 4, 4, 7])));
        })(args())
        .map((g) => g.dataSync() as Float32Array),
    );
    const [ours, weightsOnly] = await onBackend('wasm', () => {
      const loss = (xx: tf.Tensor, ww: tf.Tensor, bb: tf.Tensor, inputGrad: boolean) =>
        tf.sum(
          tf.mul(
            pointwiseConv(xx as tf.Tensor4D, ww as tf.Tensor2D, bb as tf.Tensor1D, 'relu6', { inputGrad }),
            tf.tensor4d(up, [2, 4, 4, 7]),
          ),
        );
      const [xx, ww, bb] = args();
      const all = tf.grads((a: tf.Tensor, b2: tf.Tensor, c2: tf.Tensor) => loss(a, b2, c2, true))([
        xx!,
        ww!,
        bb!,
      ]);
      const some = tf.grads((b2: tf.Tensor, c2: tf.Tensor) => loss(xx!, b2, c2, false))([ww!, bb!]);
      return [all.map((g) => g.dataSync() as Float32Array), some.map((g) => g.dataSync() as Float32Array)];
    });
    for (let i = 0; i < 3; i++) expect(maxAbsDiff(ours![i]!, reference[i]!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weightsOnly![0]!, reference[1]!)).toBeLessThan(1e-4);
    expect(maxAbsDiff(weightsOnly![1]!, reference[2]!)).toBeLessThan(1e-4);
  });
});
