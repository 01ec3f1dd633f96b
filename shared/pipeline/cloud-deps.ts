import { SQSClient } from '@aws-sdk/client-sqs';
import { type Backbone, loadBackbone, readBackbone, readDefaultBackboneId } from '../backbone/index.js';
import type { Env } from '../config.js';
import { ConfigError } from '../config.js';
import type { DualExtractor } from '../finetune/dual-extractor.js';
import { type ObjectStore, openStore } from '../store/index.js';
import {
  readDefaultTextBackboneId,
  readTextBackbone,
  readTextBackboneManifest,
  type TextBackbone,
  TextBackboneNotFoundError,
} from '../text/index.js';
import { initTf } from '../tf/tf-runtime.js';
import type { RetrainTrigger } from './retrain-requests.js';
import { createSqsTrigger } from './sqs-trigger.js';
import { type TextTrainingBackbone, textTrainingBackbone } from './train-project.js';
import { dualExtractorFromStore } from './trunk-deps.js';

/** The S3 store a cloud function works on, from its environment. */
export function storeFromEnv(env: Env): ObjectStore {
  if (!env.HEADSTART_BUCKET) throw new ConfigError('HEADSTART_BUCKET is not set');
  return openStore({
    kind: 's3',
    bucket: env.HEADSTART_BUCKET,
    region: env.AWS_REGION,
    ...(env.S3_ENDPOINT ? { endpoint: env.S3_ENDPOINT } : {}),
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

/** The configured backbone's id, or the store's default. */
export async function backboneIdFromStore(store: ObjectStore, env: Env): Promise<string> {
  const id = env.HEADSTART_BACKBONE ?? (await readDefaultBackboneId(store));
  if (!id) {
    throw new ConfigError(`no backbone configured and ${store.description} has no backbones/default.json`);
  }
  return id;
}

/**
 * Loads the configured (or the store's default) backbone, and with it the fine-tuning trunk's dual extractor
 * when the store has one for that backbone.
 */
export async function extractorsFromStore(
  store: ObjectStore,
  env: Env,
): Promise<{ backbone: Backbone; dual?: DualExtractor }> {
  await initTf(env.HEADSTART_WASM_DIR ? { wasmDir: env.HEADSTART_WASM_DIR } : {});
  const pkg = await readBackbone(store, await backboneIdFromStore(store, env));
  const [backbone, dual] = await Promise.all([loadBackbone(pkg), dualExtractorFromStore(store, pkg)]);
  return dual ? { backbone, dual } : { backbone };
}

/**
 * The store's default text backbone, read once on first use (the cloud store gets it at synth; a missing one
 * fails the upload for a retry, never quarantines it).
 */
export function textBackboneFromStore(store: ObjectStore): () => Promise<TextBackbone> {
  let loaded: Promise<TextBackbone> | undefined;
  return () => {
    loaded ??= readDefaultTextBackboneId(store).then((id) => {
      if (!id) throw new TextBackboneNotFoundError(`${store.description} has no default text backbone`);
      return readTextBackbone(store, id);
    });
    // A failed read is tried again by the next upload.
    loaded.catch(() => {
      loaded = undefined;
    });
    return loaded;
  };
}

/** What a trainer needs of the store's default text backbone, once there is one (read again until then). */
export function textTrainingBackboneFromStore(
  store: ObjectStore,
): () => Promise<TextTrainingBackbone | undefined> {
  let found: TextTrainingBackbone | undefined;
  return async () => {
    if (found) return found;
    const id = await readDefaultTextBackboneId(store);
    if (!id) return undefined;
    found = textTrainingBackbone(await readTextBackboneManifest(store, id));
    return found;
  };
}
