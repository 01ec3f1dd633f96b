import { Logger } from '@aws-lambda-powertools/logger';
import { readBackboneManifest } from '../../shared/backbone/index.js';
import { readEnv } from '../../shared/config.js';
import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import {
  backboneIdFromStore,
  retrainTriggerFromEnv,
  storeFromEnv,
  textTrainingBackboneFromStore,
} from '../../shared/pipeline/cloud-deps.js';
import { createProjectTrainer } from '../../shared/pipeline/train-project.js';
import { trunkDepsFromStore } from '../../shared/pipeline/trunk-deps.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { createTrainHandler } from './train-handler.js';

const env = readEnv();
const store = storeFromEnv(env);

export const handler = createTrainHandler({
  trainer: async () => {
    await initTf(env.HEADSTART_WASM_DIR ? { wasmDir: env.HEADSTART_WASM_DIR } : {});
    const id = await backboneIdFromStore(store, env);
    const [m, trunk] = await Promise.all([readBackboneManifest(store, id), trunkDepsFromStore(store, id)]);
    return createProjectTrainer({
      store,
      index: createDatasetIndex(store),
      backbone: {
        id: m.id,
        weightsSha256: m.weightsSha256,
        inputSize: m.inputSize,
        featureDim: m.feature.dim,
      },
      ...(trunk ? { trunk } : {}),
      textBackbone: textTrainingBackboneFromStore(store),
      quietSeconds: env.HEADSTART_RETRAIN_QUIET_SECONDS,
    });
  },
  trigger: retrainTriggerFromEnv(env),
  logger: new Logger({ serviceName: 'headstart-train' }),
});
