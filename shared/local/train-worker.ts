import { existsSync } from 'node:fs';
import { workerData } from 'node:worker_threads';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { textTrainingBackboneFromStore } from '../pipeline/cloud-deps.js';
import { createProjectTrainer } from '../pipeline/train-project.js';
import { trunkDepsFromStore } from '../pipeline/trunk-deps.js';
import { openStore } from '../store/index.js';
import { initTf } from '../tf/tf-runtime.js';
import { createTrainScheduler } from './train-scheduler.js';
import { post, runPasses, syncWithExtraction, workerLog } from './worker-loop.js';
import type { TrainWorkerConfig } from './worker-protocol.js';

/** Blocks this thread without spinning, as a long synchronous tfjs step would, until `file` exists. */
function blockUntilExists(file: string): void {
  const cell = new Int32Array(new SharedArrayBuffer(4));
  while (!existsSync(file)) Atomics.wait(cell, 0, 0, 20);
}

/**
 * The local stack's training thread: the scheduler and the trainer with its own tfjs, so a fine-tuning (seconds
 * to minutes of synchronous tensor work) never holds up predictions. The parent may terminate this thread
 * mid-training: versions are written before the pointer flips, so that loses nothing.
 */
async function main(config: TrainWorkerConfig): Promise<void> {
  const store = openStore(config.store);
  await initTf();
  const trunk = await trunkDepsFromStore(store, config.backboneId);
  const index = createDatasetIndex(store);
  const { trainingGate } = config;
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: config.backbone,
    ...(trunk ? { trunk } : {}),
    textBackbone: textTrainingBackboneFromStore(store),
    quietSeconds: config.quietSeconds,
    owner: config.owner,
    ...(trainingGate ? { beforeFlip: async () => blockUntilExists(trainingGate) } : {}),
  });
  const scheduler = createTrainScheduler({
    store,
    trainer: {
      run: async (project) => {
        // As a single-threaded stack did: uploads made before the request are extracted before it trains.
        await syncWithExtraction();
        post({ type: 'training-started', project });
        try {
          return await trainer.run(project);
        } finally {
          post({ type: 'training-ended', project });
        }
      },
    },
    onOutcome: (outcome) => post({ type: 'training', outcome }),
    onError: (project, err) => workerLog(`training of ${project} failed: ${(err as Error).message}`),
  });
  runPasses({
    config,
    watchPrefix: 'training',
    pass: async () => {
      await scheduler.tick();
    },
    nextDueAt: () => scheduler.nextDueAt(),
  });
  post({ type: 'ready' });
}

main(workerData as TrainWorkerConfig).catch((err) => {
  post({ type: 'init-failed', message: (err as Error).message });
});
