import * as tf from '@tensorflow/tfjs-core';
// tfjs-core's node bundle registers no gradients; tfjs-layers' bundle registers them all in tfjs' global registry.
import '@tensorflow/tfjs-layers';

/**
 * Convolutions with hand-written gradients built only from kernels tfjs-backend-wasm has. Its autodiff of
 * conv2d and depthwiseConv2d needs Conv2DBackpropFilter and the DepthwiseConv2dNativeBackprop kernels, which the
 * wasm backend lacks, and its matMul with a transposed operand (what autodiff uses for every matrix gradient)
 * runs on a path about 10x slower than transposing first. So:
 *
 * - a 1x1 convolution is a matrix product; the filter gradient is `transpose(x) @ g`, the input gradient
 *   `g @ transpose(w)`;
 * - a depthwise convolution runs forward as the fused kernel; its filter gradient is a multiply and sum per tap
 *   (k*k of them) over shifted views of the padded input, and its input gradient is the forward depthwise kernel
 *   again, on the zero-upsampled output gradient with the filter flipped (a transposed convolution).
 *
 * Bias and activation are part of each op, so one graph node is one differentiable call, as in the fused
 * inference graph.
 */
export type Activation = 'linear' | 'relu' | 'relu6';

/** [[top, bottom], [left, right]] */
export type ExplicitPad = [[number, number], [number, number]];

export interface DepthwiseSpec {
  strides: [number, number];
  /** 'same' follows TensorFlow's rule (extra padding at the bottom and right). */
  pad: 'same' | 'valid' | ExplicitPad;
}

type Saver = (tensors: tf.Tensor[]) => void;
interface CustomOp<T extends tf.Tensor> {
  value: T;
  gradFunc: (dy: T, saved: tf.Tensor[]) => tf.Tensor[];
}

/** tf.customGrad with its variadic (inputs..., save) signature spelled out, so each op is type-checked. */
function custom<T extends tf.Tensor>(
  arity: number,
  f: (inputs: tf.Tensor[], save: Saver) => CustomOp<T>,
): (...inputs: tf.Tensor[]) => T {
  return tf.customGrad((...args: unknown[]) =>
    f(args.slice(0, arity) as tf.Tensor[], args[arity] as Saver),
  ) as (...inputs: tf.Tensor[]) => T;
}

/** The gradient that survives the activation, computed from its output (which is cheaper to keep than its input). */
function activationGrad(dy: tf.Tensor, y: tf.Tensor, activation: Activation): tf.Tensor {
  if (activation === 'linear') return dy;
  if (activation === 'relu') return tf.mul(dy, tf.step(y));
  // 0 < y < 6 exactly where y * (6 - y) > 0: two arithmetic ops, where comparisons and a logical and take four
  // (boolean kernels are several times slower on wasm).
  return tf.mul(dy, tf.step(tf.mul(y, tf.sub(6, y))));
}

/**
 * `act(x @ w + b)` over the channels of an NHWC tensor, i.e. a 1x1 convolution with stride 1. With
 * `inputGrad: false` the input is treated as a constant (the first op above a frozen trunk), saving a product.
 */
export function pointwiseConv(
  x: tf.Tensor4D,
  w: tf.Tensor2D,
  b: tf.Tensor1D,
  activation: Activation,
  options: { inputGrad?: boolean } = {},
): tf.Tensor4D {
  const [n, h, wd, cin] = x.shape;
  const cout = w.shape[1];
  const forward = (x2: tf.Tensor2D, wt: tf.Tensor2D, bt: tf.Tensor1D): tf.Tensor2D =>
    tf.fused.matMul({ a: x2, b: wt, bias: bt, activation }) as tf.Tensor2D;
  const x2 = tf.reshape(x, [n * h * wd, cin]) as tf.Tensor2D;
  if (options.inputGrad === false) {
    const op = custom<tf.Tensor2D>(2, ([wt, bt], save) => {
      const y = forward(x2, wt as tf.Tensor2D, bt as tf.Tensor1D);
      save([y]);
      return {
        value: y,
        gradFunc: (dy, saved) => {
          const g = activationGrad(dy as tf.Tensor, saved[0]!, activation) as tf.Tensor2D;
          return [tf.matMul(tf.transpose(x2), g), tf.sum(g, 0)];
        },
      };
    });
    return tf.reshape(op(w, b), [n, h, wd, cout]);
  }
  const op = custom<tf.Tensor2D>(3, ([xt, wt, bt], save) => {
    const y = forward(xt as tf.Tensor2D, wt as tf.Tensor2D, bt as tf.Tensor1D);
    save([xt!, wt!, y]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, ws, ys] = saved as [tf.Tensor2D, tf.Tensor2D, tf.Tensor2D];
        const g = activationGrad(dy as tf.Tensor, ys, activation) as tf.Tensor2D;
        return [tf.matMul(g, tf.transpose(ws)), tf.matMul(tf.transpose(xs), g), tf.sum(g, 0)];
      },
    };
  });
  return tf.reshape(op(x2, w, b), [n, h, wd, cout]);
}

/** Resolves 'same' / 'valid' to explicit amounts so the forward op and its gradients agree exactly. */
export function explicitPad(
  inH: number,
  inW: number,
  k: [number, number],
  spec: DepthwiseSpec,
): { pad: ExplicitPad; outH: number; outW: number } {
  const [sh, sw] = spec.strides;
  let pad: ExplicitPad;
  if (spec.pad === 'valid') {
    pad = [
      [0, 0],
      [0, 0],
    ];
  } else if (spec.pad === 'same') {
    const oh = Math.ceil(inH / sh);
    const ow = Math.ceil(inW / sw);
    const th = Math.max((oh - 1) * sh + k[0] - inH, 0);
    const tw = Math.max((ow - 1) * sw + k[1] - inW, 0);
    pad = [
      [Math.floor(th / 2), th - Math.floor(th / 2)],
      [Math.floor(tw / 2), tw - Math.floor(tw / 2)],
    ];
  } else {
    pad = spec.pad;
  }
  const hp = inH + pad[0][0] + pad[0][1];
  const wp = inW + pad[1][0] + pad[1][1];
  return { pad, outH: Math.floor((hp - k[0]) / sh) + 1, outW: Math.floor((wp - k[1]) / sw) + 1 };
}

/** `act(depthwise(x, w) + b)` with a [kh, kw, C, 1] filter. */
export function depthwiseConv(
  x: tf.Tensor4D,
  w: tf.Tensor4D,
  b: tf.Tensor1D,
  activation: Activation,
  spec: DepthwiseSpec,
  options: { inputGrad?: boolean } = {},
): tf.Tensor4D {
  const [n, h, wd, c] = x.shape;
  const kh = w.shape[0];
  const kw = w.shape[1];
  const [sh, sw] = spec.strides;
  const { pad, outH, outW } = explicitPad(h, wd, [kh, kw], spec);
  const tfPad = [[0, 0], pad[0], pad[1], [0, 0]] as unknown as 'valid';
  const forward = (xt: tf.Tensor4D, wt: tf.Tensor4D, bt: tf.Tensor1D) =>
    tf.fused.depthwiseConv2d({ x: xt, filter: wt, strides: [sh, sw], pad: tfPad, bias: bt, activation });

  const filterGrad = (xs: tf.Tensor4D, g: tf.Tensor4D): tf.Tensor4D => {
    // Per tap (i, j): the sum over n, y, x of xpad[n, i + sh*y, j + sw*x, c] * g[n, y, x, c]. The wasm backend
    // copies strided, 6-D and mid-axis slices element by element (10-100x slower than the arithmetic), so:
    // split the padded input into its sh*sw phases (stride 1: one phase, no copy), flatten each phase to rows
    // [n*A*B, c], and lay g out on the same grid with zeros elsewhere. A tap is then one contiguous row range of
    // the flattened phase, offset by (i/sh)*B + j/sw, times the gridded g, summed. Both are kept channel-major
    // ([c, rows]) because the wasm Sum transposes first unless it reduces the innermost axis.
    const rowsPer = Math.ceil((kh - 1) / sh) + outH;
    const colsPer = Math.ceil((kw - 1) / sw) + outW;
    const hq = rowsPer * sh;
    const wq = colsPer * sw;
    let xp: tf.Tensor4D = tf.pad(xs, [
      [0, 0],
      [pad[0][0], Math.max(0, hq - h - pad[0][0])],
      [pad[1][0], Math.max(0, wq - wd - pad[1][0])],
      [0, 0],
    ]);
    if (xp.shape[1] !== hq || xp.shape[2] !== wq) xp = tf.slice(xp, [0, 0, 0, 0], [n, hq, wq, c]);
    const rows = n * rowsPer * colsPer;
    const maxOffset = Math.floor((kh - 1) / sh) * colsPer + Math.floor((kw - 1) / sw);
    const phases = new Map<number, tf.Tensor2D>();
    const phase = (p: number, q: number): tf.Tensor2D => {
      const key = p * sw + q;
      let t = phases.get(key);
      if (!t) {
        let flat: tf.Tensor2D;
        if (sh === 1 && sw === 1) flat = tf.reshape(xp, [rows, c]);
        else {
          const r = tf.slice(tf.reshape(xp, [n * rowsPer, sh, wq, c]), [0, p, 0, 0], [n * rowsPer, 1, wq, c]);
          const rc = tf.slice(tf.reshape(r, [rows, sw, c]), [0, q, 0], [rows, 1, c]);
          flat = tf.reshape(rc, [rows, c]);
        }
        t = tf.transpose(
          tf.pad(flat, [
            [0, maxOffset],
            [0, 0],
          ]),
        );
        phases.set(key, t);
      }
      return t;
    };
    const gridded = tf.transpose(
      tf.reshape(
        tf.pad(g, [
          [0, 0],
          [0, rowsPer - outH],
          [0, colsPer - outW],
          [0, 0],
        ]),
        [rows, c],
      ),
    );
    const taps: tf.Tensor[] = [];
    for (let i = 0; i < kh; i++) {
      for (let j = 0; j < kw; j++) {
        const offset = Math.floor(i / sh) * colsPer + Math.floor(j / sw);
        const view = tf.slice(phase(i % sh, j % sw), [0, offset], [c, rows]);
        taps.push(tf.sum(tf.mul(view, gridded), 1));
      }
    }
    return tf.reshape(tf.stack(taps), [kh, kw, c, 1]);
  };
  const inputGrad = (ws: tf.Tensor4D, g: tf.Tensor4D): tf.Tensor4D => {
    // The transposed convolution: spread g back to the input stride, then correlate with the flipped filter,
    // padded so the result lines up with the unpadded input (no crop needed).
    let up: tf.Tensor4D = g;
    if (sh > 1 || sw > 1) {
      const spread = tf.pad(tf.reshape(g, [n, outH, 1, outW, 1, c]), [
        [0, 0],
        [0, 0],
        [0, sh - 1],
        [0, 0],
        [0, sw - 1],
        [0, 0],
      ]);
      up = tf.slice(
        tf.reshape(spread, [n, outH * sh, outW * sw, c]) as tf.Tensor4D,
        [0, 0, 0, 0],
        [n, (outH - 1) * sh + 1, (outW - 1) * sw + 1, c],
      );
    }
    const uh = up.shape[1];
    const uw = up.shape[2];
    const fullPad = [
      [0, 0],
      [kh - 1 - pad[0][0], h - uh + pad[0][0]],
      [kw - 1 - pad[1][0], wd - uw + pad[1][0]],
      [0, 0],
    ] as unknown as 'valid';
    return tf.depthwiseConv2d(up, tf.reverse(ws, [0, 1]), 1, fullPad);
  };

  if (options.inputGrad === false) {
    const op = custom<tf.Tensor4D>(2, ([wt, bt], save) => {
      const y = forward(x, wt as tf.Tensor4D, bt as tf.Tensor1D);
      save([y]);
      return {
        value: y,
        gradFunc: (dy, saved) => {
          const g = activationGrad(dy as tf.Tensor, saved[0]!, activation) as tf.Tensor4D;
          return [filterGrad(x, g), tf.sum(tf.reshape(g, [-1, c]), 0)];
        },
      };
    });
    return op(w, b) as tf.Tensor4D;
  }
  const op = custom<tf.Tensor4D>(3, ([xt, wt, bt], save) => {
    const y = forward(xt as tf.Tensor4D, wt as tf.Tensor4D, bt as tf.Tensor1D);
    save([xt!, wt!, y]);
    return {
      value: y,
      gradFunc: (dy, saved) => {
        const [xs, ws, ys] = saved as [tf.Tensor4D, tf.Tensor4D, tf.Tensor4D];
        const g = activationGrad(dy as tf.Tensor, ys, activation) as tf.Tensor4D;
        return [inputGrad(ws, g), filterGrad(xs, g), tf.sum(tf.reshape(g, [-1, c]), 0)];
      },
    };
  });
  return op(x, w, b) as tf.Tensor4D;
}
