import { fromFloat16, toFloat16 } from '../backbone/quantize.js';
import { FeatureFileError } from './dataset-errors.js';

/**
 * Cached features, content-addressed at `features/<backbone-id>/<sha256>[.<view>]`. A small header makes a file
 * self-describing, so features of one backbone can never be read as another's:
 *
 *   0  4  magic "HSF1"
 *   4  1  dtype: 1 float32, 2 float16
 *   5  1  number of vectors (views of a crop are separate files; spatial caches may hold several)
 *   6  2  length of the backbone id in bytes (little endian)
 *   8  4  dimension per vector (little endian)
 *  12  n  backbone id, UTF-8, then zero padding to a multiple of 4
 *   …     the values, little endian
 *
 * Sparse features (dtype 3, text backbones' hashed n-grams: a few hundred non-zeros in 16k columns) have, after
 * the id, the number of non-zeros (u32), their ascending columns (u32 each), then their float32 values.
 */
const MAGIC = [0x48, 0x53, 0x46, 0x31];
const DTYPES = { float32: 1, float16: 2 } as const;
export type FeatureDtype = keyof typeof DTYPES;

export interface FeatureFile {
  backboneId: string;
  dtype: FeatureDtype;
  dim: number;
  values: Float32Array;
}

export function encodeFeatures(
  backboneId: string,
  values: Float32Array,
  dtype: FeatureDtype = 'float32',
): Uint8Array {
  const id = new TextEncoder().encode(backboneId);
  const headerLen = 12 + Math.ceil(id.byteLength / 4) * 4;
  const width = dtype === 'float32' ? 4 : 2;
  const out = new Uint8Array(headerLen + values.length * width);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, DTYPES[dtype]);
  view.setUint8(5, 1);
  view.setUint16(6, id.byteLength, true);
  view.setUint32(8, values.length, true);
  out.set(id, 12);
  for (let i = 0; i < values.length; i++) {
    if (dtype === 'float32') view.setFloat32(headerLen + i * 4, values[i]!, true);
    else view.setUint16(headerLen + i * 2, toFloat16(values[i]!), true);
  }
  return out;
}

export function decodeFeatures(bytes: Uint8Array, expectBackboneId?: string): FeatureFile {
  if (bytes.byteLength < 12 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new FeatureFileError('not a Headstart feature file (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const code = view.getUint8(4);
  const dtype: FeatureDtype | undefined = code === 1 ? 'float32' : code === 2 ? 'float16' : undefined;
  if (code === SPARSE_DTYPE) throw new FeatureFileError('a sparse (text) feature file read as a dense one');
  if (!dtype) throw new FeatureFileError(`unknown feature dtype code ${code}`);
  const count = view.getUint8(5);
  const idLen = view.getUint16(6, true);
  const dim = view.getUint32(8, true);
  const headerLen = 12 + Math.ceil(idLen / 4) * 4;
  const width = dtype === 'float32' ? 4 : 2;
  const n = dim * count;
  if (bytes.byteLength !== headerLen + n * width) {
    throw new FeatureFileError(
      `feature file has ${bytes.byteLength} bytes, its header implies ${headerLen + n * width}`,
    );
  }
  const backboneId = new TextDecoder().decode(bytes.subarray(12, 12 + idLen));
  if (expectBackboneId !== undefined && backboneId !== expectBackboneId) {
    throw new FeatureFileError(
      `features were computed by backbone '${backboneId}', not '${expectBackboneId}'`,
    );
  }
  const values = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    values[i] =
      dtype === 'float32'
        ? view.getFloat32(headerLen + i * 4, true)
        : fromFloat16(view.getUint16(headerLen + i * 2, true));
  }
  return { backboneId, dtype, dim, values };
}

const SPARSE_DTYPE = 3;

/** A sparse feature row: `values[p]` at column `indices[p]` of `dim`, the rest zero. */
export interface SparseFeatureFile {
  backboneId: string;
  dim: number;
  indices: Int32Array;
  values: Float32Array;
}

export function encodeSparseFeatures(
  backboneId: string,
  f: { dim: number; indices: Int32Array; values: Float32Array },
): Uint8Array {
  const id = new TextEncoder().encode(backboneId);
  const headerLen = 12 + Math.ceil(id.byteLength / 4) * 4;
  const nnz = f.indices.length;
  const out = new Uint8Array(headerLen + 4 + nnz * 8);
  const view = new DataView(out.buffer);
  out.set(MAGIC, 0);
  view.setUint8(4, SPARSE_DTYPE);
  view.setUint8(5, 1);
  view.setUint16(6, id.byteLength, true);
  view.setUint32(8, f.dim, true);
  out.set(id, 12);
  view.setUint32(headerLen, nnz, true);
  for (let p = 0; p < nnz; p++) {
    view.setUint32(headerLen + 4 + p * 4, f.indices[p]!, true);
    view.setFloat32(headerLen + 4 + nnz * 4 + p * 4, f.values[p]!, true);
  }
  return out;
}

export function decodeSparseFeatures(bytes: Uint8Array, expectBackboneId?: string): SparseFeatureFile {
  if (bytes.byteLength < 16 || MAGIC.some((m, i) => bytes[i] !== m)) {
    throw new FeatureFileError('not a Headstart feature file (bad magic)');
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (view.getUint8(4) !== SPARSE_DTYPE) throw new FeatureFileError('not a sparse feature file');
  const idLen = view.getUint16(6, true);
  const dim = view.getUint32(8, true);
  const headerLen = 12 + Math.ceil(idLen / 4) * 4;
  const nnz = bytes.byteLength >= headerLen + 4 ? view.getUint32(headerLen, true) : -1;
  if (nnz < 0 || bytes.byteLength !== headerLen + 4 + nnz * 8) {
    throw new FeatureFileError(
      `sparse feature file has ${bytes.byteLength} bytes, its header implies more or fewer`,
    );
  }
  const backboneId = new TextDecoder().decode(bytes.subarray(12, 12 + idLen));
  if (expectBackboneId !== undefined && backboneId !== expectBackboneId) {
    throw new FeatureFileError(
      `features were computed by backbone '${backboneId}', not '${expectBackboneId}'`,
    );
  }
  const indices = new Int32Array(nnz);
  const values = new Float32Array(nnz);
  for (let p = 0; p < nnz; p++) {
    indices[p] = view.getUint32(headerLen + 4 + p * 4, true);
    if (indices[p]! >= dim) throw new FeatureFileError(`column ${indices[p]} is outside the ${dim} columns`);
    values[p] = view.getFloat32(headerLen + 4 + nnz * 4 + p * 4, true);
  }
  return { backboneId, dim, indices, values };
}
