import { Worker } from 'node:worker_threads';
import { type Backbone, loadBackbone, readBackbone } from '../backbone/index.js';
import type { UploadOutcome } from '../pipeline/extract-uploads.js';
import { type TrainOutcome, trainingBackbone } from '../pipeline/train-project.js';
import { type ObjectStore, openStore, type StoreSpec } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { ensureDefaultBackbone } from './ensure-backbone.js';
import { localTrainerOwner, removeDeadLeases } from './training-leases.js';
import { abandonTrainings } from './training-state.js';
import type { ExtractWorkerConfig, FromWorker, ToWorker, TrainWorkerConfig } from './worker-protocol.js';

export interface LocalStackOptions {
  /** Where the objects live; the API thread and each worker open their own store from it. */
  store: StoreSpec;
  /** Serves the prediction API over the same store and backbone; returns its URL. */
  serveApi: (deps: {
    store: ObjectStore;
    backbone: Backbone;
  }) => Promise<{ url: string; close(): Promise<void> }>;
  /** Photos used to check the default backbone's fidelity when it is first built. */
  photosDir: string;
  quietSeconds?: number;
  /**
   * When the store is not watched (a bucket): how often uploads/ is listed (default 30 s; its listing grows with
   * the photos, one page per 1,000) and training/ (default 5 s; a few keys per project, and a `train` from the
   * CLI waits for it). Uploads made before a training are always extracted before it, whatever the interval.
   * The FS store is watched for changes instead, with a safety rescan every `rescanIntervalMs` (default 5 min).
   */
  scanIntervalMs?: number;
  trainingScanIntervalMs?: number;
  rescanIntervalMs?: number;
  /** First delay before a failed upload is tried again (doubling up to 5 minutes). Default 5 s. */
  retryDelayMs?: number;
  log?: (line: string) => void;
  onUpload?: (o: UploadOutcome) => void;
  onTraining?: (o: TrainOutcome) => void;
  /** Test seam: each training blocks its thread before flipping the pointer until this file exists. */
  trainingGate?: string;
}

export interface LocalStack {
  url: string;
  backboneId: string;
  /** One reconcile-and-train pass now (tests use it instead of waiting for changes to be seen). */
  tick(): Promise<void>;
  /**
   * Stops within a second or two: the extraction worker finishes the batch in hand or is cut off, a training in
   * progress is abandoned (its thread terminated, its lease removed, the previous version left current).
   */
  stop(): Promise<void>;
}

interface StackWorker {
  worker: Worker;
  send(m: ToWorker): void;
  pass(): Promise<void>;
  stopped: Promise<void>;
}

const bootstrap = new URL('./worker-bootstrap.mjs', import.meta.url);

function spawnWorker(
  config: ExtractWorkerConfig | TrainWorkerConfig,
  onMessage: (m: FromWorker) => void,
  log: (line: string) => void,
): Promise<StackWorker> {
  const worker = new Worker(bootstrap, { workerData: config });
  let nextId = 0;
  let stopRequested = false;
  const passes = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let markStopped!: () => void;
  const stopped = new Promise<void>((r) => {
    markStopped = r;
  });
  return new Promise<StackWorker>((resolve, reject) => {
    const handle: StackWorker = {
      worker,
      send: (m) => {
        if (m.type === 'stop') stopRequested = true;
        worker.postMessage(m);
      },
      pass: () =>
        new Promise<void>((res, rej) => {
          const id = nextId++;
          passes.set(id, { resolve: res, reject: rej });
          worker.postMessage({ type: 'pass', id } satisfies ToWorker);
        }),
      stopped,
    };
    worker.on('message', (m: FromWorker) => {
      if (m.type === 'ready') resolve(handle);
      else if (m.type === 'init-failed')
        reject(new Error(`the ${config.role} worker failed to start: ${m.message}`));
      else if (m.type === 'passed') {
        const p = passes.get(m.id);
        passes.delete(m.id);
        if (m.error === undefined) p?.resolve();
        else p?.reject(new Error(m.error));
      } else if (m.type === 'stopped') markStopped();
      else onMessage(m);
    });
    worker.on('error', (err) => {
      log(`the ${config.role} worker failed: ${err.message}`);
      reject(err);
    });
    worker.on('exit', (code) => {
      if (!stopRequested)
        log(`the ${config.role} worker exited unexpectedly (code ${code}); restart Headstart`);
      markStopped();
      for (const p of passes.values()) p.reject(new Error(`the ${config.role} worker exited`));
      passes.clear();
      reject(new Error(`the ${config.role} worker exited while starting`));
    });
  });
}

/** Asks a worker to stop; cuts it off if it has not within `graceMs` (0: at once). */
async function stopWorker(w: StackWorker, graceMs: number): Promise<boolean> {
  w.send({ type: 'stop' });
  let timer: NodeJS.Timeout | undefined;
  const cut = new Promise<boolean>((r) => {
    timer = setTimeout(() => r(true), graceMs);
  });
  const terminated = await Promise.race([w.stopped.then(() => false), cut]);
  clearTimeout(timer);
  await w.worker.terminate();
  return terminated;
}

/**
 * Headstart on one machine: the same extraction and training code as the cloud functions, driven by a
 * reconciler over the store instead of S3 events and by a scheduler instead of SQS, plus the edge app over HTTP.
 * Extraction and training each run in a worker thread with their own tfjs, so the API's event loop only serves
 * requests. Every step writes new objects before flipping pointers, so stopping at any moment loses nothing: a
 * training cut short leaves the previous version current, and uploads not yet seen are found at the next start.
 */
export async function startLocalStack(options: LocalStackOptions): Promise<LocalStack> {
  const log = options.log ?? (() => {});
  const store = openStore(options.store);
  await initTf();
  const backboneId = await ensureDefaultBackbone(store, { photosDir: options.photosDir, log });
  // A lease left by a killed stack would block training until it expires; one a live stack holds (on this home
  // or another sharing the bucket) must stay.
  await removeDeadLeases(store, { legacyIsLocal: options.store.kind === 'fs', log });
  const backbone = await loadBackbone(await readBackbone(store, backboneId));
  const watch = options.store.kind === 'fs';
  const base = {
    store: options.store,
    backboneId,
    watch,
  };
  const interval = (unwatched: number) => (watch ? (options.rescanIntervalMs ?? 300_000) : unwatched);
  const owner = localTrainerOwner();
  const training = new Set<string>();
  let trainer: StackWorker | undefined;
  let setExtractor!: (w: StackWorker) => void;
  const extractorReady = new Promise<StackWorker>((r) => {
    setExtractor = r;
  });
  const onMessage = (m: FromWorker) => {
    if (m.type === 'log') log(m.line);
    else if (m.type === 'upload') options.onUpload?.(m.outcome);
    else if (m.type === 'training') options.onTraining?.(m.outcome);
    else if (m.type === 'retrain-requested') trainer?.send({ type: 'wake' });
    else if (m.type === 'training-started') training.add(m.project);
    else if (m.type === 'training-ended') training.delete(m.project);
    else if (m.type === 'sync') {
      const reply = (error?: string) =>
        trainer?.send({ type: 'synced', id: m.id, ...(error !== undefined ? { error } : {}) });
      // Both workers are up before any reply goes out (the training worker may ask before it is ready).
      extractorReady
        .then((w) => w.pass())
        .then(
          () => reply(),
          (err: Error) => reply(err.message),
        );
    }
  };
  const entry = (name: string) => new URL(name, import.meta.url).href;
  const started = await Promise.allSettled([
    spawnWorker(
      {
        ...base,
        intervalMs: interval(options.scanIntervalMs ?? 30_000),
        role: 'extract',
        entry: entry('./extract-worker.ts'),
        retryBaseMs: options.retryDelayMs ?? 5_000,
      },
      onMessage,
      log,
    ),
    spawnWorker(
      {
        ...base,
        intervalMs: interval(options.trainingScanIntervalMs ?? 5_000),
        role: 'train',
        entry: entry('./train-worker.ts'),
        quietSeconds: options.quietSeconds ?? 30,
        owner,
        backbone: trainingBackbone(backbone),
        ...(options.trainingGate ? { trainingGate: options.trainingGate } : {}),
      },
      onMessage,
      log,
    ),
  ]);
  const failed = started.find((s) => s.status === 'rejected');
  if (failed) {
    for (const s of started) if (s.status === 'fulfilled') await s.value.worker.terminate();
    throw failed.reason;
  }
  const [extractWorker, trainWorker] = started.map(
    (s) => (s as PromiseFulfilledResult<StackWorker>).value,
  ) as [StackWorker, StackWorker];
  trainer = trainWorker;
  setExtractor(extractWorker);
  const api = await options.serveApi({ store, backbone });
  let stopping: Promise<void> | undefined;
  return {
    url: api.url,
    backboneId,
    async tick() {
      await extractWorker.pass();
      await trainWorker.pass();
    },
    stop() {
      stopping ??= (async () => {
        const busy = training.size > 0;
        const [, cut] = await Promise.all([
          stopWorker(extractWorker, 1_500),
          stopWorker(trainWorker, busy ? 0 : 1_500),
        ]);
        if (busy || cut)
          await abandonTrainings(store, owner, log).catch((err) => log(`${(err as Error).message}`));
        await api.close();
      })();
      return stopping;
    },
  };
}
