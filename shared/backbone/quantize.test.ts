import { describe, expect, it } from 'vitest';
import type { NamedWeights } from './headstart-graph.js';
import { decodeWeights, encodeWeights, fromFloat16, toFloat16 } from './quantize.js';

function weights(): NamedWeights {
  // Channels with very different ranges, as batch-norm folding produces: per-tensor scales crush the small ones.
  const shape = [3, 3, 4, 8];
  const values = new Float32Array(3 * 3 * 4 * 8);
  for (let i = 0; i < values.length; i++) values[i] = Math.sin(i * 1.7) * 10 ** ((i % 8) - 4);
  return new Map([
    ['conv/kernel', { shape, values }],
    ['conv/bias', { shape: [8], values: Float32Array.from([0.1, -2, 3e-5, 4, 5, 6, 7, 8]) }],
  ]);
}

describe('weight encoding', () => {
  it('converts float16 exactly for representable values and rounds to nearest otherwise', () => {
    for (const v of [0, 1, -2, 0.5, 65504, 2 ** -24, -0.333251953125])
      expect(fromFloat16(toFloat16(v))).toBe(v);
    expect(fromFloat16(toFloat16(1 / 3))).toBeCloseTo(1 / 3, 3);
    expect(fromFloat16(toFloat16(1e6))).toBe(Number.POSITIVE_INFINITY);
    expect(Number.isNaN(fromFloat16(toFloat16(Number.NaN)))).toBe(true);
  });

  it('keeps every channel within half a step of its own scale with per-channel int8', () => {
    const w = weights();
    const { specs, data } = encodeWeights(w, { mode: 'int8-per-channel' });
    const back = decodeWeights(specs, data);
    const src = w.get('conv/kernel')!.values;
    const got = back.get('conv/kernel')!.values;
    const scales = specs.find((s) => s.name === 'conv/kernel')!.scales!;
    expect(scales).toHaveLength(8);
    for (let i = 0; i < src.length; i++) {
      expect(Math.abs(got[i]! - src[i]!)).toBeLessThanOrEqual(scales[i % 8]! / 2 + 1e-12);
    }
  });

  it('keeps biases in float32 exactly', () => {
    const w = weights();
    const { specs, data } = encodeWeights(w, { mode: 'int8-per-channel' });
    expect(specs.find((s) => s.name === 'conv/bias')!.dtype).toBe('float32');
    expect(decodeWeights(specs, data).get('conv/bias')!.values).toEqual(w.get('conv/bias')!.values);
  });

  it('loses small channels entirely with per-tensor uint8, which per-channel int8 keeps', () => {
    const w = weights();
    const src = w.get('conv/kernel')!.values;
    const err = (mode: 'uint8-per-tensor' | 'int8-per-channel') => {
      const { specs, data } = encodeWeights(w, { mode });
      const got = decodeWeights(specs, data).get('conv/kernel')!.values;
      let worst = 0;
      for (let i = 0; i < src.length; i += 8) worst = Math.max(worst, Math.abs(got[i]! - src[i]!) / 1e-4);
      return worst; // relative error on channel 0, whose values are ~1e-4
    };
    expect(err('int8-per-channel')).toBeLessThan(0.01);
    expect(err('uint8-per-tensor')).toBeGreaterThan(10);
  });

  it('sizes int8 kernels at a quarter of float32 plus scales', () => {
    const w = weights();
    const f32 = encodeWeights(w, { mode: 'float32' }).data.byteLength;
    const i8 = encodeWeights(w, { mode: 'int8-per-channel' }).data.byteLength;
    const f16 = encodeWeights(w, { mode: 'float16' }).data.byteLength;
    expect(f32).toBe((288 + 8) * 4);
    expect(i8).toBe(288 + 8 * 4);
    expect(f16).toBe((288 + 8) * 2);
  });

  it('refuses a weights file shorter than its specs', () => {
    const { specs, data } = encodeWeights(weights(), { mode: 'float16' });
    expect(() => decodeWeights(specs, data.subarray(0, 100))).toThrow(/runs past the end/);
  });
});
