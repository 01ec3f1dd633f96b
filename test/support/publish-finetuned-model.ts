import {
  type Backbone,
  type BackbonePackage,
  loadBackbone,
  saveBackbone,
} from '../../shared/backbone/index.js';
import { buildDefaultSegment, type FineTuneResult, fineTune, topFiles } from '../../shared/finetune/index.js';
import { type ModelManifest, TOP_FORMAT, TOP_JSON, TOP_WEIGHTS } from '../../shared/models/index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { datasetSnapshotOf } from '../../shared/train/index.js';
import {
  extractTrainingFeatures,
  type PublishOptions,
  publishVersion,
  type UnwrittenManifest,
} from './publish-test-model.js';
import { testTrunk } from './test-trunk.js';

/** A top fine-tuned on the clothing-mini training photos, with the trunk it runs on. */
export interface FineTunedTestTop {
  trunkPkg: BackbonePackage;
  /** The trunk loaded into the current tfjs backend (shared by the test file; not to be disposed). */
  trunk: Backbone;
  result: FineTuneResult;
  /** sha256 of the sorted `id,label` lines, as head training computes it. */
  datasetSnapshot: string;
}

let memo: Promise<FineTunedTestTop> | undefined;

/**
 * Fine-tunes the default top segment on trunk activations of the clothing-mini training photos, once per test
 * file: one epoch after the warm start, softmax only, so it takes seconds.
 */
export function fineTunedTestTop(): Promise<FineTunedTestTop> {
  memo ??= (async () => {
    await initTf();
    const trunkPkg = await testTrunk();
    const trunk = await loadBackbone(trunkPkg);
    const segment = await buildDefaultSegment();
    const data = await extractTrainingFeatures(trunk);
    const result = await fineTune(data, {
      segment,
      trunkId: trunk.manifest.id,
      headOptions: { headTypes: ['softmax'], softmaxL2: [1e-3] },
      maxEpochs: 1,
      patience: 1,
      batchSize: 16,
    });
    const datasetSnapshot = await datasetSnapshotOf(data.ids, data.labels, data.labelNames);
    return { trunkPkg, trunk, result, datasetSnapshot };
  })();
  return memo;
}

/**
 * Publishes a fine-tuned version of `project`, as fine-tuning training does: the trunk saved as an ordinary
 * stored backbone (not made the default), then top.json, top.bin and evaluation.json under a manifest naming the
 * trunk as its backbone, and (by default) the pointer flipped to it.
 */
export async function publishFineTunedModel(
  store: ObjectStore,
  project: string,
  tuned: FineTunedTestTop,
  options: PublishOptions<typeof TOP_JSON | typeof TOP_WEIGHTS | 'evaluation.json'>,
): Promise<{ version: string; manifest: ModelManifest }> {
  const now = options.now ?? new Date();
  const { trunkPkg, result } = tuned;
  await saveBackbone(store, trunkPkg);
  const trunk = trunkPkg.manifest;
  const { descriptor } = result.top;
  const manifest: UnwrittenManifest = {
    schemaVersion: 1,
    project,
    version: options.version,
    createdAt: now.toISOString(),
    labels: [...descriptor.labels],
    backbone: {
      id: trunk.id,
      weightsSha256: trunk.weightsSha256,
      inputSize: trunk.inputSize,
      featureDim: trunk.feature.dim,
    },
    head: { format: TOP_FORMAT, type: descriptor.classifier.type },
    metrics: { accuracy: result.metrics.accuracy, macroF1: result.metrics.macroF1, n: result.metrics.n },
    datasetSnapshot: tuned.datasetSnapshot,
    training: { mode: 'fine-tune', bestEpoch: result.bestEpoch, stoppedBy: result.stoppedBy },
  };
  const { json, weights } = topFiles(result.top);
  const files = {
    [TOP_JSON]: json,
    [TOP_WEIGHTS]: weights,
    'evaluation.json': JSON.stringify({ metrics: result.metrics, history: result.history }),
  };
  return publishVersion(store, manifest, files, { ...options, now });
}
