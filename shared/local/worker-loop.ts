import { join } from 'node:path';
import { parentPort } from 'node:worker_threads';
import { watchFolders } from './watch-folders.js';
import type { FromWorker, ToWorker, WorkerConfig } from './worker-protocol.js';

export function post(message: FromWorker): void {
  parentPort?.postMessage(message);
}

export const workerLog = (line: string) => post({ type: 'log', line });

let nextSync = 0;
const syncs = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
parentPort?.on('message', (m: ToWorker) => {
  if (m.type !== 'synced') return;
  const s = syncs.get(m.id);
  syncs.delete(m.id);
  if (m.error === undefined) s?.resolve();
  else s?.reject(new Error(m.error));
});

/** Resolves once the extraction worker has completed a pass that started after this call. */
export function syncWithExtraction(): Promise<void> {
  return new Promise((resolve, reject) => {
    const id = nextSync++;
    syncs.set(id, { resolve, reject });
    post({ type: 'sync', id });
  });
}

/**
 * Runs a worker's passes: when the parent asks (`tick()`), when the watched part of an FS store changes, when
 * the pass itself says something is due (a retry), and at least every `intervalMs`. Passes never overlap; asks
 * that arrive during a pass get one more pass after it, so a `tick()` always sees changes made before it.
 */
export function runPasses(options: {
  config: WorkerConfig;
  /** Top-level folder under the FS store's objects/ whose changes start a pass. */
  watchPrefix: string;
  pass: () => Promise<void>;
  /** Epoch ms at which the pass wants to run again regardless of changes. */
  nextDueAt: () => number | undefined;
}): void {
  const { config } = options;
  let current: Promise<void> | undefined;
  let queued: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopping = false;

  const schedule = () => {
    clearTimeout(timer);
    if (stopping) return;
    const at = Math.min(Date.now() + config.intervalMs, options.nextDueAt() ?? Number.POSITIVE_INFINITY);
    timer = setTimeout(
      () => {
        request().catch((err) => workerLog(`background pass failed: ${(err as Error).message}`));
      },
      Math.max(at - Date.now(), 50),
    );
  };
  const runOne = (): Promise<void> => {
    const p: Promise<void> = options.pass().finally(() => {
      if (current === p) current = undefined;
      schedule();
    });
    current = p;
    return p;
  };
  const request = (): Promise<void> => {
    if (stopping) return Promise.resolve();
    if (queued) return queued;
    if (!current) return runOne();
    queued = current
      .catch(() => {})
      .then(() => {
        queued = undefined;
        return runOne();
      });
    return queued;
  };

  let watcher: { close(): void } | undefined;
  if (config.watch && config.store.kind === 'fs') {
    let debounce: NodeJS.Timeout | undefined;
    watcher = watchFolders({
      root: join(config.store.root, 'objects'),
      top: options.watchPrefix,
      onChange: () => {
        clearTimeout(debounce);
        debounce = setTimeout(() => {
          request().catch((err) => workerLog(`background pass failed: ${(err as Error).message}`));
        }, 100);
      },
      onError: (err) => workerLog(`watching the store failed (${err.message}); rescanning on a timer`),
    });
  }

  parentPort?.on('message', (m: ToWorker) => {
    if (m.type === 'pass') {
      request().then(
        () => post({ type: 'passed', id: m.id }),
        (err) => post({ type: 'passed', id: m.id, error: (err as Error).message }),
      );
    } else if (m.type === 'wake') {
      request().catch((err) => workerLog(`background pass failed: ${(err as Error).message}`));
    } else if (m.type === 'stop') {
      stopping = true;
      clearTimeout(timer);
      watcher?.close();
      void (current ?? Promise.resolve())
        .catch(() => {})
        .then(() => {
          post({ type: 'stopped' });
          parentPort?.close();
        });
    }
  });
  schedule();
  request().catch((err) => workerLog(`background pass failed: ${(err as Error).message}`));
}
