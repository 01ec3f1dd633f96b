import { type Backbone, loadBackbone, readBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import type { UploadEvent } from '../dataset/s3-events.js';
import { layout } from '../models/model-layout.js';
import { createUploadExtractor, type UploadOutcome } from '../pipeline/extract-uploads.js';
import { createRetrainRequester } from '../pipeline/retrain-requests.js';
import { createProjectTrainer, type TrainOutcome, trainingBackbone } from '../pipeline/train-project.js';
import { dualExtractorFromStore, trunkDepsFromStore } from '../pipeline/trunk-deps.js';
import type { ObjectStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { ensureDefaultBackbone } from './ensure-backbone.js';
import { createTrainScheduler } from './train-scheduler.js';
import { createUploadReconciler } from './upload-reconciler.js';

export interface LocalStackOptions {
  store: ObjectStore;
  /** Serves the prediction API over the same store and backbone; returns its URL. */
  serveApi: (deps: {
    store: ObjectStore;
    backbone: Backbone;
  }) => Promise<{ url: string; close(): Promise<void> }>;
  /** Photos used to check the default backbone's fidelity when it is first built. */
  photosDir: string;
  quietSeconds?: number;
  /** How often uploads/ is compared with the dataset index. Default 1 s. */
  scanIntervalMs?: number;
  log?: (line: string) => void;
  onUpload?: (o: UploadOutcome) => void;
  onTraining?: (o: TrainOutcome) => void;
}

export interface LocalStack {
  url: string;
  backboneId: string;
  /** One reconcile-and-train pass now (tests use it instead of waiting for the timer). */
  tick(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Headstart on one machine: the same extraction and training code as the cloud functions, driven by a
 * reconciler over the store instead of S3 events and by a scheduler instead of SQS, plus the edge app over HTTP.
 * Every step writes new objects before flipping pointers, so stopping at any moment loses nothing: a training
 * cut short leaves the previous version current, and uploads not yet seen are found at the next start.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const { store } = options;
  const log = options.log ?? (() => {});
  await initTf();
  const backboneId = await ensureDefaultBackbone(store, { photosDir: options.photosDir, log });
  // A lease left by a process that was killed mid-training would block training until it expires; locally
  // this process is the only trainer, so any lease found at start is stale.
  for await (const o of store.list('training/')) {
    if (o.key.endsWith('/lease.json')) {
      await store.delete(o.key);
      log(`removed a stale training lease ${o.key}`);
    }
  }
  const backbonePkg = await readBackbone(store, backboneId);
  const [backbone, dual, trunk] = await Promise.all([
    loadBackbone(backbonePkg),
    dualExtractorFromStore(store, backbonePkg),
    trunkDepsFromStore(store, backboneId),
  ]);
  const index = createDatasetIndex(store);
  const retrain = createRetrainRequester(store, { notify: async () => {} });
  const extractor = createUploadExtractor({
    store,
    backbone,
    ...(dual ? { dual } : {}),
    index,
    requestRetrain: (p) => retrain.request(p),
  });
  const reconciler = createUploadReconciler({
    store,
    index,
    handle: async (events: UploadEvent[]) => {
      const outcomes = await Promise.all(events.map((e) => extractor.handle(e)));
      for (const o of outcomes) options.onUpload?.(o);
      await retrain.flush();
    },
  });
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(backbone),
    ...(trunk ? { trunk } : {}),
    quietSeconds: options.quietSeconds ?? 30,
    owner: `local-${process.pid}`,
  });
  const failedAt = new Map<string, number>();
  const scheduler = createTrainScheduler({
    store,
    trainer: {
      run: async (project) => {
        // After a failure, wait a minute before trying the same request again.
        if (Date.now() - (failedAt.get(project) ?? 0) < 60_000)
          return { status: 'too_early', project, retryInSeconds: 60 };
        return trainer.run(project);
      },
    },
    onOutcome: (o) => options.onTraining?.(o),
    onError: (project, err) => {
      failedAt.set(project, Date.now());
      log(`training of ${project} failed: ${(err as Error).message}`);
    },
  });
  const api = await options.serveApi({ store, backbone });

  let running: Promise<void> | undefined;
  const tick = () => {
    running ??= (async () => {
      try {
        await reconciler.scan();
        await scheduler.tick();
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  let stopped = false;
  const timer = setInterval(() => {
    if (!stopped) tick().catch((err) => log(`background pass failed: ${(err as Error).message}`));
  }, options.scanIntervalMs ?? 1000);
  void layout;
  return {
    url: api.url,
    backboneId,
    tick,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running?.catch(() => {});
      await api.close();
    },
  };
}
