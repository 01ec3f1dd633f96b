import { Logger } from '@aws-lambda-powertools/logger';
import { readBackboneManifest, readDefaultBackboneId } from '../../shared/backbone/index.js';
import { ConfigError, readEnv } from '../../shared/config.js';
import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import { retrainTriggerFromEnv, storeFromEnv } from '../../shared/pipeline/cloud-deps.js';
import { createProjectTrainer } from '../../shared/pipeline/train-project.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { createTrainHandler } from './train-handler.js';

const env = readEnv();
const store = storeFromEnv(env);

export const handler = createTrainHandler({
  trainer: async () => {
    await initTf(env.HEADSTART_WASM_DIR ? { wasmDir: env.HEADSTART_WASM_DIR } : {});
    const id = env.HEADSTART_BACKBONE ?? (await readDefaultBackboneId(store));
    if (!id)
      throw new ConfigError(`no backbone configured and ${store.description} has no backbones/default.json`);
    const m = await readBackboneManifest(store, id);
    return createProjectTrainer({
      store,
      index: createDatasetIndex(store),
      backbone: {
        id: m.id,
        weightsSha256: m.weightsSha256,
        inputSize: m.inputSize,
        featureDim: m.feature.dim,
      },
      quietSeconds: env.HEADSTART_RETRAIN_QUIET_SECONDS,
    });
  },
  trigger: retrainTriggerFromEnv(env),
  logger: new Logger({ serviceName: 'headstart-train' }),
});
