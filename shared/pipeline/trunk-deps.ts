import {
  BackboneNotFoundError,
  type BackbonePackage,
  readBackbone,
  readBackboneManifest,
} from '../backbone/index.js';
import { trunkIdFor } from '../finetune/built-in-trunks.js';
import { type DualExtractor, loadDualExtractor } from '../finetune/dual-extractor.js';
import { FineTuneError } from '../finetune/finetune-errors.js';
import { readSegment } from '../finetune/segment-package.js';
import type { ObjectStore } from '../store/index.js';
import type { TrunkDeps } from './train-project.js';

async function orUndefined<T>(p: Promise<T>): Promise<T | undefined> {
  try {
    return await p;
  } catch (err) {
    if (err instanceof BackboneNotFoundError) return undefined;
    throw err;
  }
}

/**
 * The precompute side of fine-tuning: the backbone and its published trunk as one extractor, or undefined when
 * the backbone has no trunk in the store (then uploads get pooled features only, and projects train heads).
 */
export async function dualExtractorFromStore(
  store: ObjectStore,
  backbone: BackbonePackage,
): Promise<DualExtractor | undefined> {
  const id = trunkIdFor(backbone.manifest.id);
  if (!id) return undefined;
  const trunk = await orUndefined(readBackbone(store, id));
  return trunk ? loadDualExtractor(backbone, trunk) : undefined;
}

/** The training side: the trunk's identity now, its pretrained segment on first use. */
export async function trunkDepsFromStore(
  store: ObjectStore,
  backboneId: string,
): Promise<TrunkDeps | undefined> {
  const id = trunkIdFor(backboneId);
  if (!id) return undefined;
  const m = await orUndefined(readBackboneManifest(store, id));
  if (!m) return undefined;
  let segment: ReturnType<TrunkDeps['segment']> | undefined;
  return {
    id: m.id,
    weightsSha256: m.weightsSha256,
    inputSize: m.inputSize,
    segment: () => {
      segment ??= readSegment(store, id).then((s) => {
        if (!s) throw new FineTuneError('segment_missing', `trunk '${id}' is published without its segment`);
        return s;
      });
      // A failed read is not cached: the next training reads again.
      segment.catch(() => {
        segment = undefined;
      });
      return segment;
    },
  };
}
