import type { UploadOutcome } from '../pipeline/extract-uploads.js';
import type { TrainOutcome } from '../pipeline/train-project.js';
import type { StoreSpec } from '../store/index.js';

/**
 * Messages between the local stack's API thread and its two workers (structured-clone data only). Errors cross
 * as messages: an Error's class and code do not survive the clone.
 */
export type ToWorker =
  | { type: 'pass'; id: number }
  /** Something changed that the worker should look at soon (a retrain request was written). */
  | { type: 'wake' }
  | { type: 'stop' }
  | { type: 'synced'; id: number; error?: string };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'init-failed'; message: string }
  | { type: 'passed'; id: number; error?: string }
  | { type: 'log'; line: string }
  | { type: 'upload'; outcome: UploadOutcome }
  | { type: 'retrain-requested'; projects: string[] }
  | { type: 'training-started'; project: string }
  | { type: 'training-ended'; project: string }
  | { type: 'training'; outcome: TrainOutcome }
  | { type: 'stopped' }
  /** The training worker asks for an extraction pass first, so a training sees every upload made before it. */
  | { type: 'sync'; id: number };

export interface WorkerConfig {
  entry: string;
  store: StoreSpec;
  /** Passes run at least this often (the safety rescan when the store is watched). */
  intervalMs: number;
  /** Watch the FS store's folder for changes instead of waiting for the interval. */
  watch: boolean;
  backboneId: string;
}

export interface ExtractWorkerConfig extends WorkerConfig {
  role: 'extract';
  /** First delay before a failed upload event is tried again; doubles up to 5 minutes (or this, if longer). */
  retryBaseMs: number;
}

export interface TrainWorkerConfig extends WorkerConfig {
  role: 'train';
  quietSeconds: number;
  owner: string;
  backbone: { id: string; weightsSha256: string; inputSize: number; featureDim: number };
  /**
   * Test seam: before flipping a pointer, the trainer blocks its thread synchronously (as a long tfjs step does)
   * until this file exists.
   */
  trainingGate?: string;
}
