import { z } from 'zod';
import { exactArrayBuffer } from '../bytes.js';
import { InvalidBackboneError } from './backbone-errors.js';
import type { Quantization } from './backbone-manifest.js';
import type { NamedWeights } from './headstart-graph.js';

export const weightSpecSchema = z.object({
  name: z.string(),
  shape: z.array(z.number().int().nonnegative()),
  dtype: z.enum(['float32', 'float16', 'int8', 'uint8']),
  byteOffset: z.number().int().nonnegative(),
  byteLength: z.number().int().nonnegative(),
  /** int8: symmetric per output channel; the channel of flat index i is i % scales.length. */
  scales: z.array(z.number()).optional(),
  /** uint8: one affine map for the whole tensor, value = q * scale + min. */
  min: z.number().optional(),
  scale: z.number().optional(),
});
export type WeightSpec = z.infer<typeof weightSpecSchema>;

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** IEEE 754 binary16 from binary32, round to nearest even. */
export function toFloat16(value: number): number {
  f32[0] = value;
  const x = u32[0]!;
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let half = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const mid = 1 << (shift - 1);
    if (rem > mid || (rem === mid && half & 1)) half++;
    return sign | half;
  }
  let half = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++;
  return sign | half;
}

export function fromFloat16(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 0x1f) return mant ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

function channelCount(name: string, shape: number[], depthwise?: ReadonlySet<string>): number {
  return shape.length === 4 && depthwise?.has(name) ? shape[2]! * shape[3]! : shape[shape.length - 1]!;
}

export interface EncodeOptions {
  mode: Quantization;
  /** Which kernels are depthwise (their channels span the last two axes). */
  depthwise?: ReadonlySet<string>;
}

/**
 * Encodes float32 weights in one of the storage modes. 1-D tensors (biases) stay float32 (float16 in float16
 * mode): they are tiny, and quantizing them costs accuracy for no size gain.
 */
export function encodeWeights(
  weights: NamedWeights,
  options: EncodeOptions,
): { specs: WeightSpec[]; data: Uint8Array } {
  const parts: Uint8Array[] = [];
  const specs: WeightSpec[] = [];
  let offset = 0;
  const add = (spec: Omit<WeightSpec, 'byteOffset' | 'byteLength'>, bytes: Uint8Array) => {
    // Keep every tensor 4-byte aligned so float32 views need no copy.
    const pad = (4 - (bytes.byteLength % 4)) % 4;
    specs.push({ ...spec, byteOffset: offset, byteLength: bytes.byteLength });
    parts.push(bytes);
    if (pad) parts.push(new Uint8Array(pad));
    offset += bytes.byteLength + pad;
  };
  for (const [name, w] of weights) {
    const v = w.values;
    const isKernel = w.shape.length > 1;
    if (options.mode === 'float32' || (!isKernel && options.mode !== 'float16')) {
      add({ name, shape: w.shape, dtype: 'float32' }, new Uint8Array(v.slice().buffer));
    } else if (options.mode === 'float16') {
      const h = new Uint16Array(v.length);
      for (let i = 0; i < v.length; i++) h[i] = toFloat16(v[i]!);
      add({ name, shape: w.shape, dtype: 'float16' }, new Uint8Array(h.buffer));
    } else if (options.mode === 'uint8-per-tensor') {
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const x of v) {
        if (x < min) min = x;
        if (x > max) max = x;
      }
      // As tfjs' converter does: widen the range to include 0 so zero stays exactly representable.
      min = Math.min(min, 0);
      max = Math.max(max, 0);
      const scale = (max - min) / 255 || 1;
      const q = new Uint8Array(v.length);
      for (let i = 0; i < v.length; i++) q[i] = Math.round((v[i]! - min) / scale);
      add({ name, shape: w.shape, dtype: 'uint8', min, scale }, q);
    } else {
      const channels = channelCount(name, w.shape, options.depthwise);
      const maxAbs = new Float32Array(channels);
      for (let i = 0; i < v.length; i++) {
        const a = Math.abs(v[i]!);
        const c = i % channels;
        if (a > maxAbs[c]!) maxAbs[c] = a;
      }
      const scales = Array.from(maxAbs, (m) => (m > 0 ? m / 127 : 1));
      const q = new Int8Array(v.length);
      for (let i = 0; i < v.length; i++) q[i] = Math.round(v[i]! / scales[i % channels]!);
      add({ name, shape: w.shape, dtype: 'int8', scales }, new Uint8Array(q.buffer));
    }
  }
  const data = new Uint8Array(offset);
  let at = 0;
  for (const p of parts) {
    data.set(p, at);
    at += p.byteLength;
  }
  return { specs, data };
}

/** Dequantizes stored weights back to float32. Runs once at load time, never per request. */
export function decodeWeights(specs: readonly WeightSpec[], data: Uint8Array): NamedWeights {
  const out: NamedWeights = new Map();
  for (const spec of specs) {
    const count = spec.shape.reduce((a, b) => a * b, 1);
    if (spec.byteOffset + spec.byteLength > data.byteLength) {
      throw new InvalidBackboneError(`weight '${spec.name}' runs past the end of the weights file`);
    }
    const bytes = data.subarray(spec.byteOffset, spec.byteOffset + spec.byteLength);
    const values = new Float32Array(count);
    const expect = { float32: 4, float16: 2, int8: 1, uint8: 1 }[spec.dtype] * count;
    if (bytes.byteLength !== expect) {
      throw new InvalidBackboneError(
        `weight '${spec.name}' has ${bytes.byteLength} bytes, expected ${expect}`,
      );
    }
    const copy = new Uint8Array(exactArrayBuffer(bytes));
    switch (spec.dtype) {
      case 'float32':
        values.set(new Float32Array(copy.buffer));
        break;
      case 'float16': {
        const h = new Uint16Array(copy.buffer);
        for (let i = 0; i < count; i++) values[i] = fromFloat16(h[i]!);
        break;
      }
      case 'uint8': {
        const min = spec.min ?? 0;
        const scale = spec.scale ?? 1;
        for (let i = 0; i < count; i++) values[i] = copy[i]! * scale + min;
        break;
      }
      case 'int8': {
        const q = new Int8Array(copy.buffer);
        const scales = spec.scales;
        if (!scales?.length) throw new InvalidBackboneError(`int8 weight '${spec.name}' has no scales`);
        const n = scales.length;
        for (let i = 0; i < count; i++) values[i] = q[i]! * scales[i % n]!;
        break;
      }
    }
    out.set(spec.name, { shape: spec.shape, values });
  }
  return out;
}
