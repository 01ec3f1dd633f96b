import { workerData } from 'node:worker_threads';
import { loadBackbone, readBackbone } from '../backbone/index.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { createUploadExtractor } from '../pipeline/extract-uploads.js';
import { writeRetrainRequest } from '../pipeline/retrain-requests.js';
import { dualExtractorFromStore } from '../pipeline/trunk-deps.js';
import { openStore } from '../store/index.js';
import { readTextBackbone, type TextBackbone } from '../text/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { ensureTextBackbone } from './ensure-text-backbone.js';
import { createUploadReconciler } from './upload-reconciler.js';
import { post, runPasses, workerLog } from './worker-loop.js';
import type { ExtractWorkerConfig } from './worker-protocol.js';

/**
 * The local stack's extraction thread: the reconciler over uploads/ and the extractor with its own tfjs and
 * backbone, so decoding and the backbone never hold up the API's event loop.
 */
async function main(config: ExtractWorkerConfig): Promise<void> {
  const store = openStore(config.store);
  await initTf();
  const pkg = await readBackbone(store, config.backboneId);
  const [backbone, dual] = await Promise.all([loadBackbone(pkg), dualExtractorFromStore(store, pkg)]);
  const index = createDatasetIndex(store);
  let text: Promise<TextBackbone> | undefined;
  // Built into the store at its first start (about 3 s, once per store, off the API thread), before the worker
  // says it is ready, so nothing a stack does after starting races the build; one that failed is tried again by
  // the next text upload.
  const textBackbone = () => {
    text ??= ensureTextBackbone(store, { log: workerLog }).then((id) => readTextBackbone(store, id));
    text.catch(() => {
      text = undefined;
    });
    return text;
  };
  const pending = new Set<string>();
  const extractor = createUploadExtractor({
    store,
    backbone,
    ...(dual ? { dual } : {}),
    textBackbone,
    index,
    requestRetrain: async (p) => {
      pending.add(p);
    },
  });
  const reconciler = createUploadReconciler({
    store,
    index,
    log: workerLog,
    retryDelayMs: (failures) =>
      Math.min(config.retryBaseMs * 2 ** (failures - 1), Math.max(config.retryBaseMs, 300_000)),
    handle: async (event) => {
      const outcome = await extractor.handle(event);
      post({ type: 'upload', outcome });
      return outcome;
    },
    // One request per project and pass; a project whose request could not be written stays pending.
    afterPass: async () => {
      const written: string[] = [];
      for (const p of [...pending]) {
        await writeRetrainRequest(store, p);
        pending.delete(p);
        written.push(p);
      }
      if (written.length) post({ type: 'retrain-requested', projects: written });
    },
  });
  // Only published here; its table is loaded by the first text upload, so a photo-only stack never holds it.
  await ensureTextBackbone(store, { log: workerLog }).catch((err: Error) =>
    workerLog(`the text backbone could not be built (a text upload tries again): ${err.message}`),
  );
  runPasses({
    config,
    watchPrefix: 'uploads',
    pass: async () => {
      await reconciler.scan();
    },
    nextDueAt: () => reconciler.nextRetryAt(),
  });
  post({ type: 'ready' });
}

main(workerData as ExtractWorkerConfig).catch((err) => {
  post({ type: 'init-failed', message: (err as Error).message });
});
