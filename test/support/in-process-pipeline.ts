import type { Backbone } from '../../shared/backbone/index.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { createUploadReconciler } from '../../shared/local/upload-reconciler.js';
import { createUploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { createRetrainRequester } from '../../shared/pipeline/retrain-requests.js';
import { createProjectTrainer, trainingBackbone } from '../../shared/pipeline/train-project.js';
import type { ObjectStore } from '../../shared/store/index.js';
import type { TrainOptions } from '../../shared/train/index.js';

export interface InProcessPipeline {
  index: DatasetIndex;
  /** One `scan()` extracts every upload not yet indexed, as the local stack's reconciler does at start. */
  reconciler: ReturnType<typeof createUploadReconciler>;
  trainer: ReturnType<typeof createProjectTrainer>;
}

/**
 * The local stack's pipeline wired in this process, with no quiet window and no trigger: a test (or the
 * screenshots) runs each step when it wants it, instead of waiting for the stack to notice.
 */
export function inProcessPipeline(o: {
  store: ObjectStore;
  backbone: Backbone;
  trainOptions?: TrainOptions;
}): InProcessPipeline {
  const { store, backbone } = o;
  const index = createDatasetIndex(store);
  const retrain = createRetrainRequester(store, { notify: async () => {} });
  const extractor = createUploadExtractor({
    store,
    backbone,
    index,
    requestRetrain: (p) => retrain.request(p),
  });
  const reconciler = createUploadReconciler({
    store,
    index,
    handle: (e) => extractor.handle(e),
    afterPass: async () => {
      await retrain.flush();
    },
  });
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(backbone),
    quietSeconds: 0,
    ...(o.trainOptions ? { trainOptions: o.trainOptions } : {}),
  });
  return { index, reconciler, trainer };
}
