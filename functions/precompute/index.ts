import { Logger } from '@aws-lambda-powertools/logger';
import { readEnv } from '../../shared/config.js';
import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import {
  extractorsFromStore,
  retrainTriggerFromEnv,
  storeFromEnv,
  textBackboneFromStore,
} from '../../shared/pipeline/cloud-deps.js';
import { createUploadExtractor, type UploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { createRetrainRequester } from '../../shared/pipeline/retrain-requests.js';
import { createPrecomputeHandler } from './precompute-handler.js';

const env = readEnv();
const store = storeFromEnv(env);
const retrain = createRetrainRequester(store, retrainTriggerFromEnv(env));
let extractor: Promise<UploadExtractor> | undefined;

export const handler = createPrecomputeHandler({
  // Loaded on first use and kept for the life of the instance.
  extractor: () =>
    (extractor ??= extractorsFromStore(store, env).then(({ backbone, dual }) =>
      createUploadExtractor({
        store,
        backbone,
        ...(dual ? { dual } : {}),
        textBackbone: textBackboneFromStore(store),
        index: createDatasetIndex(store),
        maxUploadBytes: env.HEADSTART_MAX_UPLOAD_BYTES,
        maxPixels: env.HEADSTART_MAX_PIXELS,
        requestRetrain: (p) => retrain.request(p),
      }),
    )),
  retrain,
  logger: new Logger({ serviceName: 'headstart-precompute' }),
});
