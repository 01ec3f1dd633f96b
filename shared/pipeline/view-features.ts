import type { Backbone } from '../backbone/index.js';
import { DatasetError } from '../dataset/dataset-errors.js';
import { encodeFeatures } from '../dataset/feature-file.js';
import { type DualExtractor, encodeSpatialFeatures, spatialFeatureKey } from '../finetune/index.js';
import { decodeImage, type ImageView } from '../image/index.js';
import { layout } from '../layout/index.js';
import { type ObjectStore, PreconditionFailedError } from '../store/index.js';
import { createFeatureBatcher, type FeatureBatcher } from './feature-batcher.js';

interface DualFeatures {
  pooled: Float32Array;
  spatial: Float32Array;
}

/** A backbone (and its fine-tuning trunk, when published) behind batchers: what extraction runs photos through. */
export interface ViewExtractors {
  backbone: Backbone;
  batcher: FeatureBatcher;
  dual?: { trunkId: string; batcher: FeatureBatcher<DualFeatures> };
}

export function createViewExtractors(options: {
  backbone: Backbone;
  batcher?: FeatureBatcher;
  dual?: DualExtractor;
}): ViewExtractors {
  const { backbone, dual } = options;
  if (dual && dual.backboneId !== backbone.manifest.id) {
    throw new DatasetError(
      'trunk_mismatch',
      `the trunk extractor runs backbone '${dual.backboneId}', not '${backbone.manifest.id}'`,
    );
  }
  return {
    backbone,
    batcher: options.batcher ?? createFeatureBatcher(backbone),
    ...(dual
      ? {
          dual: {
            trunkId: dual.trunkId,
            batcher: createFeatureBatcher<DualFeatures>({
              extract: async (images) => {
                const { pooled, spatial } = await dual.extract(images);
                return pooled.map((p, i) => ({ pooled: p, spatial: spatial[i]! }));
              },
            }),
          },
        }
      : {}),
  };
}

/** What to cache of each photo of a project: its views, and whether the trunk's activation too. */
export interface ViewRequest {
  views: readonly ImageView[];
  trunk: boolean;
  maxPixels?: number;
}

/**
 * Caches the features of one photo that are not cached yet: each view's pooled feature under the backbone's id
 * and, for the plain view when asked and published, the trunk's activation. Content-addressed and written
 * create-if-absent, so the same photo twice, or two writers at once, extract once. Returns how many objects it
 * wrote; an undecodable photo throws its ImageError.
 */
export async function cacheViewFeatures(
  store: ObjectStore,
  x: ViewExtractors,
  photo: { body: Uint8Array; sha256: string },
  want: ViewRequest,
): Promise<number> {
  const id = x.backbone.manifest.id;
  const trunkId = want.trunk ? x.dual?.trunkId : undefined;
  let computed = 0;
  const putOnce = async (key: string, body: Uint8Array) => {
    try {
      await store.put(key, body, { ifNoneMatch: '*' });
      computed++;
    } catch (err) {
      if (!(err instanceof PreconditionFailedError)) throw err;
    }
  };
  for (const view of want.views) {
    const featureKey = layout.feature(id, photo.sha256, view);
    // Fine-tuning reads only the plain photo's activation; augmented views train heads alone.
    const spatialKey = view === 'identity' && trunkId ? spatialFeatureKey(trunkId, photo.sha256) : undefined;
    const [hasPooled, hasSpatial] = await Promise.all([
      store.head(featureKey),
      spatialKey ? store.head(spatialKey) : true,
    ]);
    if (hasPooled && hasSpatial) continue;
    const decoded = await decodeImage(photo.body, {
      size: x.backbone.inputSize,
      policy: x.backbone.manifest.preprocessing.resize,
      view,
      ...(want.maxPixels ? { maxPixels: want.maxPixels } : {}),
    });
    if (spatialKey && trunkId && x.dual) {
      const { pooled, spatial } = await x.dual.batcher.extract(decoded.data);
      if (!hasPooled) await putOnce(featureKey, encodeFeatures(id, pooled));
      if (!hasSpatial) await putOnce(spatialKey, encodeSpatialFeatures(trunkId, spatial));
    } else {
      await putOnce(featureKey, encodeFeatures(id, await x.batcher.extract(decoded.data)));
    }
  }
  return computed;
}
