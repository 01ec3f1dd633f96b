import * as tf from '@tensorflow/tfjs-core';

/** Spatial pooling of a backbone's cut: one vector per image. */
export type Pooling = 'avg' | 'grid2' | 'none';

/**
 * Rows (or columns) [start, end) of cell `i` of `cells` over a length: start = floor(i*L/cells),
 * end = ceil((i+1)*L/cells), as adaptive average pooling does. On an odd length the two halves share the centre
 * row (7 -> [0,4) and [3,7)), so the split is mirror-symmetric: a horizontally flipped image gives exactly the
 * left and right cells swapped, which flip views rely on.
 */
export function gridCellBounds(length: number, cells: number, i: number): [number, number] {
  return [Math.floor((i * length) / cells), Math.ceil(((i + 1) * length) / cells)];
}

/**
 * 2x2 grid of averages of an NHWC map: [n, h, w, c] -> [n, 4c], cells concatenated in row-major order
 * (top-left, top-right, bottom-left, bottom-right), so feature `k*c + j` is channel j averaged over cell k.
 */
export function gridAvgPool2(x: tf.Tensor4D): tf.Tensor2D {
  return tf.tidy(() => {
    const [n, h, w, c] = x.shape;
    const cells: tf.Tensor2D[] = [];
    for (let r = 0; r < 2; r++) {
      const [r0, r1] = gridCellBounds(h, 2, r);
      for (let q = 0; q < 2; q++) {
        const [c0, c1] = gridCellBounds(w, 2, q);
        cells.push(tf.mean(tf.slice(x, [0, r0, c0, 0], [n, r1 - r0, c1 - c0, c]), [1, 2]) as tf.Tensor2D);
      }
    }
    return tf.concat(cells, 1);
  });
}

/** Applies a manifest's pooling to a cut's output (rank-4 maps only; vectors pass through). */
export function poolFeatures(y: tf.Tensor, pooling: Pooling): tf.Tensor {
  if (y.rank !== 4 || pooling === 'none') return y;
  return pooling === 'grid2' ? gridAvgPool2(y as tf.Tensor4D) : tf.mean(y, [1, 2]);
}

/** Feature dimension of a [h, w, c] map under a pooling. */
export function pooledDim(shape: readonly number[], pooling: Pooling): number {
  const c = shape[shape.length - 1] ?? 0;
  if (pooling === 'avg') return c;
  if (pooling === 'grid2') return 4 * c;
  return shape.reduce((a, b) => a * b, 1);
}
