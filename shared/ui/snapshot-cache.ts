import { createDatasetIndex, type Example } from '../dataset/dataset-index.js';
import { layout } from '../layout/index.js';
import type { SnapshotReader } from '../pipeline/project-status.js';
import type { ObjectStore } from '../store/index.js';

/**
 * The dataset index of each project, read again only when a shard changed: one listing of the project's shards
 * (a page per 1,000 shards, not per photo) tells whether the snapshot in memory is still the index's. A shard
 * written between the listing and the read only makes the next request read again.
 */
export function createSnapshotCache(store: ObjectStore, maxProjects = 16): SnapshotReader {
  const index = createDatasetIndex(store);
  const cached = new Map<string, { version: string; examples: Example[] }>();
  return async (project) => {
    const etags: string[] = [];
    for await (const o of store.list(layout.datasetShardPrefix(project))) etags.push(`${o.key}=${o.etag}`);
    const version = etags.join('\n');
    const hit = cached.get(project);
    if (hit && hit.version === version) return hit.examples;
    const examples = await index.snapshot(project);
    cached.delete(project);
    cached.set(project, { version, examples });
    if (cached.size > maxProjects) cached.delete(cached.keys().next().value!);
    return examples;
  };
}
