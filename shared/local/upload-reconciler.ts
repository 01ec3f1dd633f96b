import type { DatasetIndex } from '../dataset/dataset-index.js';
import { readQuarantine } from '../dataset/quarantine.js';
import type { UploadEvent } from '../dataset/s3-events.js';
import { localSequencer } from '../dataset/sequencer.js';
import { isValidProject } from '../dataset/upload-key.js';
import type { ObjectStore } from '../store/index.js';

/**
 * The local stand-in for S3 event notifications: compares what is under `uploads/` with what the dataset
 * index has seen (by ETag) and emits created/removed events for the differences. Because it diffs against the
 * index rather than remembering events, files added, replaced or deleted while Headstart was stopped are
 * picked up at the next start, and a scan interrupted half-way simply resumes on the next one.
 */
export interface UploadReconciler {
  /** One pass; returns the events it emitted. */
  scan(): Promise<UploadEvent[]>;
}

export function createUploadReconciler(options: {
  store: ObjectStore;
  index: DatasetIndex;
  handle: (events: UploadEvent[]) => Promise<void>;
  now?: () => Date;
}): UploadReconciler {
  const { store, index } = options;
  const now = options.now ?? (() => new Date());
  return {
    async scan() {
      const seen = new Map<string, Map<string, string>>(); // project -> key -> etag
      const unsorted: { key: string; etag: string }[] = [];
      for await (const o of store.list('uploads/')) {
        const project = o.key.split('/')[1] ?? '';
        if (!isValidProject(project)) {
          unsorted.push({ key: o.key, etag: o.etag });
          continue;
        }
        const m = seen.get(project) ?? new Map<string, string>();
        seen.set(project, m);
        m.set(o.key, o.etag);
      }
      const projects = new Set(seen.keys());
      for await (const o of store.list('datasets/')) {
        const p = o.key.split('/')[1];
        if (p) projects.add(p);
      }
      const events: UploadEvent[] = [];
      const at = now().toISOString();
      for (const project of projects) {
        const entries = await index.entries(project);
        const files = seen.get(project) ?? new Map<string, string>();
        for (const [key, etag] of files) {
          const e = entries.get(key);
          const known = e && e.state !== 'deleted' && 'etag' in e && e.etag === etag;
          if (!known) events.push({ type: 'created', key, sequencer: localSequencer(), eventTime: at });
        }
        for (const [key, e] of entries) {
          if (e.state !== 'deleted' && !files.has(key)) {
            events.push({ type: 'removed', key, sequencer: localSequencer(), eventTime: at });
          }
        }
      }
      // Keys with no valid project cannot be indexed; quarantine records them, once per ETag.
      for (const u of unsorted) {
        if ((await readQuarantine(store, u.key))?.etag === u.etag) continue;
        events.push({ type: 'created', key: u.key, sequencer: localSequencer(), eventTime: at });
      }
      if (events.length) await options.handle(events);
      return events;
    },
  };
}
