import type { OutlierMethod } from './outlier-detector.js';
import { OutlierError } from './outlier-errors.js';

/**
 * How a detector narrows a wide, mostly-zero row (a text version's sentence feature: pooled word vectors, then
 * thousands of hashed n-gram buckets) before it scores it: the leading `keep` columns stay as they are, and every
 * later column is added, with a random sign, into one of `sketch` columns (a count sketch, fixed by `seed`).
 * Stored in the detector's descriptor, so training (on sparse rows) and serving (on the dense rows the head takes)
 * reduce a row the same way; nothing but these four numbers is needed to rebuild it.
 */
export interface SketchSpec {
  /** Width of the rows the version's head takes. */
  inputDim: number;
  /** Leading columns kept as they are. */
  keep: number;
  /** Columns the rest is hashed into; 0 drops the rest. */
  sketch: number;
  seed: number;
}

/** Width of a row after the sketch. */
export const sketchedDim = (s: SketchSpec): number => s.keep + s.sketch;

/** Compressed sparse rows, as `stackFeatures` (shared/text) makes them. */
export interface SparseRows {
  indptr: Int32Array;
  indices: Int32Array;
  values: Float32Array;
}

// A 32-bit integer mix (murmur3's finalizer): which sketch column, and which sign, a column goes to.
function mix(x: number): number {
  let h = x >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

function checkSpec(s: SketchSpec): void {
  const ok = [s.inputDim, s.keep, s.sketch, s.seed].every(Number.isInteger);
  if (!ok || s.keep < 0 || s.sketch < 0 || s.keep + s.sketch === 0 || s.keep > s.inputDim) {
    throw new OutlierError('outlier_sketch', `not a usable sketch: ${JSON.stringify(s)}`);
  }
}

/** Adds `value` of column `col` into row `out` at `base`. */
function add(s: SketchSpec, out: Float32Array, base: number, col: number, value: number): void {
  if (col < s.keep) {
    out[base + col]! += value;
    return;
  }
  if (s.sketch === 0) return;
  const h = mix(col ^ Math.imul(s.seed, 0x9e3779b1));
  out[base + s.keep + (h % s.sketch)]! += h & 0x80000000 ? -value : value;
}

/** n dense rows of `inputDim` (row-major), each narrowed to `sketchedDim(s)` columns. */
export function sketchDenseRows(rows: Float32Array, n: number, s: SketchSpec): Float32Array {
  checkSpec(s);
  if (rows.length !== n * s.inputDim) {
    throw new OutlierError(
      'outlier_input',
      `expected ${n} x ${s.inputDim} features, got ${rows.length} values`,
    );
  }
  const width = sketchedDim(s);
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    const from = i * s.inputDim;
    for (let c = 0; c < s.inputDim; c++) {
      const v = rows[from + c]!;
      if (v !== 0) add(s, out, i * width, c, v);
    }
  }
  return out;
}

/** Sparse rows (columns below `inputDim`) narrowed the same way as `sketchDenseRows` narrows their dense form. */
export function sketchSparseRows(rows: SparseRows, s: SketchSpec): Float32Array {
  checkSpec(s);
  const n = rows.indptr.length - 1;
  const width = sketchedDim(s);
  const out = new Float32Array(n * width);
  for (let i = 0; i < n; i++) {
    for (let p = rows.indptr[i]!; p < rows.indptr[i + 1]!; p++) {
      const c = rows.indices[p]!;
      if (c >= s.inputDim) {
        throw new OutlierError(
          'outlier_input',
          `row ${i} has column ${c}, beyond the ${s.inputDim} expected`,
        );
      }
      add(s, out, i * width, c, rows.values[p]!);
    }
  }
  return out;
}

/**
 * What a text version's detector reads, and how (chosen by `npm run bench:ood:text` on banking77; see the README):
 * the pooled word vectors (plus the n-gram buckets hashed into `sketch` columns when `sketch` > 0; they measured
 * worse), scored by the cosine distance to the 5th nearest training text in their top principal components.
 */
export const TEXT_OUTLIER = {
  method: 'knn',
  components: 64,
  sketch: 0,
} as const satisfies { method: OutlierMethod; components: number; sketch: number };

/** The sketch of a text version's feature: its dense block kept, its n-grams hashed (all hashed without one). */
export function textSketch(feature: { inputDim: number; denseDim: number }): SketchSpec {
  const sketch = feature.denseDim === 0 ? Math.max(TEXT_OUTLIER.sketch, 64) : TEXT_OUTLIER.sketch;
  return { inputDim: feature.inputDim, keep: feature.denseDim, sketch, seed: 1 };
}
