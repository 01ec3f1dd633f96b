import { SQSClient } from '@aws-sdk/client-sqs';
import { type Backbone, loadBackbone, readBackbone, readDefaultBackboneId } from '../backbone/index.js';
import type { Env } from '../config.js';
import { ConfigError } from '../config.js';
import { createS3Store, type ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import type { RetrainTrigger } from './retrain-requests.js';
import { createSqsTrigger } from './sqs-trigger.js';

/** The S3 store a cloud function works on, from its environment. */
export function storeFromEnv(env: Env): ObjectStore {
  if (!env.HEADSTART_BUCKET) throw new ConfigError('HEADSTART_BUCKET is not set');
  return createS3Store({
    bucket: env.HEADSTART_BUCKET,
    region: env.AWS_REGION,
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT, forcePathStyle: true } : {}),
  });
}

export function retrainTriggerFromEnv(env: Env): RetrainTrigger {
  if (!env.HEADSTART_TRAINING_QUEUE_URL) throw new ConfigError('HEADSTART_TRAINING_QUEUE_URL is not set');
  return createSqsTrigger({
    client: new SQSClient({ region: env.AWS_REGION }),
    queueUrl: env.HEADSTART_TRAINING_QUEUE_URL,
    delaySeconds: env.HEADSTART_RETRAIN_QUIET_SECONDS,
  });
}

/** Loads the configured (or the store's default) backbone once; later calls share it. */
export async function backboneFromStore(store: ObjectStore, env: Env): Promise<Backbone> {
  await initTf(env.HEADSTART_WASM_DIR ? { wasmDir: env.HEADSTART_WASM_DIR } : {});
  const id = env.HEADSTART_BACKBONE ?? (await readDefaultBackboneId(store));
  if (!id) {
    throw new ConfigError(`no backbone configured and ${store.description} has no backbones/default.json`);
  }
  return loadBackbone(await readBackbone(store, id));
}
