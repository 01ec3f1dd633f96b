import { describe, expect, it } from 'vitest';
import { backboneIdSchema } from '../backbone/backbone-manifest.js';
import { sha256Hex } from '../backbone/backbone-package.js';
import { defaultBackboneId } from '../backbone/default-backbone.js';
import { MNV2_CUT, mnv2BackboneId } from '../backbone/mnv2-backbone.js';
import { FeatureFileError } from '../dataset/dataset-errors.js';
import { trunkBackboneId } from './built-in-trunks.js';
import { InvalidFineTuneInputError } from './finetune-errors.js';
import { midTrunkId } from './mid-trunk.js';
import {
  decodeSpatialFeatures,
  encodeSpatialFeatures,
  MNV2_TRUNK_CUT,
  mnv2TrunkId,
  spatialFeatureKey,
} from './spatial-trunk.js';

const shape = [14, 14, 96] as const;

function activation(seed: number): Float32Array {
  // Post-activation values of a MobileNetV2 block: mostly in [-8, 8], with exact zeros from ReLU6 before the add.
  return Float32Array.from({ length: shape[0] * shape[1] * shape[2] }, (_, i) =>
    i % 7 === 0 ? 0 : Math.sin(i * 0.37 + seed) * 8,
  );
}

describe('spatial feature cache', () => {
  it('keys a trunk activation by content under its own backbone id, beside the pooled feature', () => {
    const bytes = new TextEncoder().encode('a photo');
    const sha = sha256Hex(bytes);
    const trunkId = trunkBackboneId();
    expect(backboneIdSchema.safeParse(trunkId).success).toBe(true);
    expect(trunkId).not.toBe(defaultBackboneId());
    expect(spatialFeatureKey(trunkId, sha)).toBe(`features/${trunkId}/${sha}`);
    expect(spatialFeatureKey(trunkId, sha, 'hflip')).toBe(`features/${trunkId}/${sha}.hflip`);
    // Cuts, sizes and quantizations never share a prefix.
    const ids = new Set([
      trunkBackboneId(),
      defaultBackboneId(),
      midTrunkId({ inputSize: 224 }),
      mnv2TrunkId(),
      mnv2TrunkId({ cut: 'block_11_add' }),
      mnv2TrunkId({ inputSize: 160 }),
      mnv2TrunkId({ quantization: 'float32' }),
      mnv2BackboneId({ cut: MNV2_TRUNK_CUT }),
      mnv2BackboneId({ cut: MNV2_CUT }),
    ]);
    expect(ids.size).toBe(9);
  });

  it('keeps Keras layer names with capitals valid as ids', () => {
    const id = mnv2TrunkId({ cut: 'block_16_project_BN' });
    expect(backboneIdSchema.safeParse(id).success).toBe(true);
  });

  it('round-trips an activation through float16 at half the bytes of float32, within float16 rounding', () => {
    const values = activation(1);
    const id = trunkBackboneId();
    const half = encodeSpatialFeatures(id, values);
    const full = encodeSpatialFeatures(id, values, 'float32');
    expect(half.byteLength).toBeLessThan(full.byteLength * 0.51);
    const back = decodeSpatialFeatures(half, id, shape);
    expect(back).toHaveLength(values.length);
    // float16 keeps 11 significant bits: relative error at most 2^-11.
    let worst = 0;
    for (let i = 0; i < values.length; i++) {
      worst = Math.max(worst, Math.abs(back[i]! - values[i]!) - Math.abs(values[i]!) * 2 ** -11);
    }
    expect(worst).toBeLessThanOrEqual(1e-7);
    expect(Array.from(decodeSpatialFeatures(full, id, shape))).toEqual(Array.from(values));
  });

  it("refuses another trunk's activation and an activation of another shape", () => {
    const bytes = encodeSpatialFeatures(trunkBackboneId(), activation(2));
    expect(() => decodeSpatialFeatures(bytes, mnv2TrunkId({ cut: 'block_11_add' }), shape)).toThrow(
      FeatureFileError,
    );
    expect(() => decodeSpatialFeatures(bytes, trunkBackboneId(), [7, 7, 96])).toThrow(
      InvalidFineTuneInputError,
    );
  });
});
