import type { DatasetIndex } from '../dataset/dataset-index.js';
import { listQuarantine, UNSORTED } from '../dataset/quarantine.js';
import type { UploadEvent } from '../dataset/s3-events.js';
import { localSequencer } from '../dataset/sequencer.js';
import { layout } from '../layout/index.js';
import type { UploadOutcome } from '../pipeline/extract-uploads.js';
import type { ObjectStore } from '../store/index.js';

/**
 * The local stand-in for S3 event notifications: compares a listing of `uploads/` (keys with ETags) with what
 * the dataset index has seen and emits created/removed events for the differences. What the index has seen is
 * read once, at the first pass, and then kept in memory from each event's outcome, so a pass over an unchanged
 * store is one LIST and no GET whatever the number of photos. Because the memory starts from the index rather
 * than from remembered events, files added, replaced or deleted while Headstart was stopped are picked up at
 * the next start, and a pass interrupted half-way simply resumes on the next one.
 *
 * One event's failure never stops a pass: it is logged with its key and retried with a growing delay (sooner if
 * the object changes), while the other events of the pass go on.
 */
export interface UploadReconciler {
  /** One pass; returns the events it emitted. */
  scan(): Promise<UploadEvent[]>;
  /** When the earliest failed event is due for another try (epoch ms), if any. */
  nextRetryAt(): number | undefined;
}

export interface UploadReconcilerOptions {
  store: ObjectStore;
  index: DatasetIndex;
  /** Handles one event; a throw is that event's failure only. */
  handle: (event: UploadEvent) => Promise<UploadOutcome>;
  /** Runs after the events of a pass (the retrain requests are written here). */
  afterPass?: () => Promise<void>;
  log?: (line: string) => void;
  now?: () => Date;
  /** Delay before the n-th retry of a failed event. Default 5 s doubling up to 5 minutes. */
  retryDelayMs?: (failures: number) => number;
}

interface Failure {
  failures: number;
  retryAt: number;
  /** The ETag the failed attempt saw: a replaced object is tried again at once. */
  etag: string | undefined;
}

const defaultDelay = (failures: number) => Math.min(5_000 * 2 ** (failures - 1), 300_000);

async function loadSeen(store: ObjectStore, index: DatasetIndex): Promise<Map<string, string | undefined>> {
  const seen = new Map<string, string | undefined>();
  const projects = new Set<string>();
  for await (const o of store.list(layout.datasetsPrefix)) {
    const p = o.key.split('/')[1];
    if (p) projects.add(p);
  }
  for (const project of projects) {
    for (const [key, e] of await index.entries(project)) {
      if (e.state !== 'deleted') seen.set(key, 'etag' in e ? e.etag : undefined);
    }
  }
  // Keys with no valid project are never indexed; their quarantine records say which ETag was set aside.
  for (const r of await listQuarantine(store, UNSORTED)) seen.set(r.key, r.etag);
  return seen;
}

export function createUploadReconciler(options: UploadReconcilerOptions): UploadReconciler {
  const { store, index } = options;
  const now = options.now ?? (() => new Date());
  const log = options.log ?? (() => {});
  const delay = options.retryDelayMs ?? defaultDelay;
  let seen: Map<string, string | undefined> | undefined;
  const failed = new Map<string, Failure>();

  const due = (key: string, etag: string | undefined, at: number) => {
    const f = failed.get(key);
    return !f || f.etag !== etag || f.retryAt <= at;
  };

  const run = async (event: UploadEvent, etag: string | undefined, memory: typeof seen & {}) => {
    try {
      const outcome = await options.handle(event);
      failed.delete(event.key);
      if (event.type === 'removed') memory.delete(event.key);
      else if (outcome.status !== 'missing') memory.set(event.key, etag);
    } catch (err) {
      const failures = (failed.get(event.key)?.failures ?? 0) + 1;
      const wait = delay(failures);
      failed.set(event.key, { failures, retryAt: Date.now() + wait, etag });
      log(
        `could not process ${JSON.stringify(event.key)} (${event.type}): ${(err as Error).message}; retrying in ${Math.round(wait / 1000)} s`,
      );
    }
  };

  return {
    async scan() {
      seen ??= await loadSeen(store, index);
      const memory = seen;
      const listed = new Map<string, string>();
      const sizes = new Map<string, number>();
      for await (const o of store.list(layout.uploadsPrefix)) {
        listed.set(o.key, o.etag);
        sizes.set(o.key, o.size);
      }
      const at = now().toISOString();
      const clock = Date.now();
      const work: { event: UploadEvent; etag: string | undefined }[] = [];
      for (const [key, etag] of listed) {
        if (memory.has(key) && memory.get(key) === etag) continue;
        if (!due(key, etag, clock)) continue;
        // Like an S3 event, the listing's ETag and size travel with it: an oversized or unreadable upload is then
        // set aside without being read.
        const event: UploadEvent = { type: 'created', key, sequencer: localSequencer(), eventTime: at, etag };
        const size = sizes.get(key);
        work.push({ event: size === undefined ? event : { ...event, size }, etag });
      }
      for (const key of memory.keys()) {
        if (listed.has(key) || !due(key, undefined, clock)) continue;
        work.push({
          event: { type: 'removed', key, sequencer: localSequencer(), eventTime: at },
          etag: undefined,
        });
      }
      for (const key of failed.keys()) if (!listed.has(key) && !memory.has(key)) failed.delete(key);
      if (work.length === 0) return [];
      await Promise.all(work.map((w) => run(w.event, w.etag, memory)));
      try {
        await options.afterPass?.();
      } catch (err) {
        log(`could not request retraining: ${(err as Error).message}; retrying at the next change`);
      }
      return work.map((w) => w.event);
    },
    nextRetryAt() {
      let next: number | undefined;
      for (const f of failed.values()) if (next === undefined || f.retryAt < next) next = f.retryAt;
      return next;
    },
  };
}
