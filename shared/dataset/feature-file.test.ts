import { describe, expect, it } from 'vitest';
import { decodeFeatures, encodeFeatures } from './feature-file.js';

describe('feature files', () => {
  const values = Float32Array.from({ length: 576 }, (_, i) => Math.sin(i) * 3);

  it('round-trips float32 exactly with the backbone id in the header', () => {
    const bytes = encodeFeatures('mnv2.b13.224.i8c', values);
    const back = decodeFeatures(bytes, 'mnv2.b13.224.i8c');
    expect(back.dim).toBe(576);
    expect(back.values).toEqual(values);
  });

  it('stores float16 in half the bytes within float16 precision', () => {
    const f32 = encodeFeatures('b', values);
    const f16 = encodeFeatures('b', values, 'float16');
    expect(f16.byteLength - 12 - 4).toBe((f32.byteLength - 12 - 4) / 2);
    const back = decodeFeatures(f16).values;
    for (let i = 0; i < values.length; i++) expect(Math.abs(back[i]! - values[i]!)).toBeLessThan(0.004);
  });

  it("refuses another backbone's features, a truncated file and foreign bytes", () => {
    const bytes = encodeFeatures('a', values);
    expect(() => decodeFeatures(bytes, 'b')).toThrow(/computed by backbone 'a'/);
    expect(() => decodeFeatures(bytes.subarray(0, bytes.byteLength - 4))).toThrow(/header implies/);
    expect(() => decodeFeatures(new TextEncoder().encode('{"not":"features"}'))).toThrow(/bad magic/);
  });
});
