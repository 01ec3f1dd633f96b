import { createHash } from 'node:crypto';
import { z } from 'zod';
import { layout } from '../layout/index.js';
import { mapLimit } from '../map-limit.js';
import { type ObjectStore, PreconditionFailedError, parseJson } from '../store/index.js';
import { IndexContentionError } from './dataset-errors.js';
import { compareSequencers } from './sequencer.js';

/**
 * A project's dataset index, sharded by a hash of the upload key into 256 small JSON objects
 * (`datasets/<project>/index/<00..ff>.json`). An upload rewrites one shard of ~1/256 of the project with a
 * conditional write on its ETag, so 50,000 examples cost ~200 entries per write, concurrent writers never lose
 * each other's changes, and a reader always sees a whole shard.
 *
 * Every entry keeps the S3 sequencer of the event that wrote it. Deletes leave a tombstone, so a delete that
 * arrives before its create, or any duplicate, changes nothing.
 */
const live = z.object({
  state: z.literal('example'),
  label: z.string(),
  sha256: z.string(),
  bytes: z.number().int().nonnegative(),
  /** The upload's ETag when it was read: lets a reconciler see a file replaced while nobody was listening. */
  etag: z.string().optional(),
  /**
   * When the upload was made (the object's last-modified time, refined by the event's time). Entries written
   * before this field existed have none; readers fall back to `at`.
   */
  uploadedAt: z.string().optional(),
  sequencer: z.string(),
  at: z.string(),
});
const quarantined = z.object({
  state: z.literal('quarantined'),
  code: z.string(),
  etag: z.string().optional(),
  sequencer: z.string(),
  at: z.string(),
});
const deleted = z.object({ state: z.literal('deleted'), sequencer: z.string(), at: z.string() });
const entrySchema = z.discriminatedUnion('state', [live, quarantined, deleted]);
const shardSchema = z.object({ schemaVersion: z.literal(1), entries: z.record(z.string(), entrySchema) });

export type IndexEntry = z.infer<typeof entrySchema>;
type Shard = z.infer<typeof shardSchema>;

export interface Example {
  key: string;
  label: string;
  sha256: string;
  bytes: number;
  /** When the upload was made: the entry's `uploadedAt`, or for older entries when it was indexed (`at`). */
  uploadedAt: string;
}

/** A change to one upload's entry: the entry it becomes, and its key. */
export type IndexChange = IndexEntry & { key: string };

export type ApplyResult = { result: 'applied' | 'stale'; previous?: IndexEntry };

export interface DatasetIndex {
  /** The entry for one key, if any (including tombstones and quarantine marks). */
  entry(project: string, key: string): Promise<IndexEntry | undefined>;
  /**
   * Applies a change unless an entry with the same or a later sequencer is there ('stale' then). Returns the
   * entry it replaced, read in the same conditional write.
   */
  apply(project: string, change: IndexChange): Promise<ApplyResult>;
  /** The live examples, sorted by key. Reads every shard once. */
  snapshot(project: string): Promise<Example[]>;
  /** Keys set aside with their codes (full reasons are in quarantine records). */
  quarantined(project: string): Promise<{ key: string; code: string }[]>;
  /** Every entry of a project, tombstones included, by key. */
  entries(project: string): Promise<Map<string, IndexEntry>>;
}

export function shardOf(key: string): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 2);
}

/** A stable name for a dataset: sha256 over the sorted `key,label,sha256` lines. */
export function snapshotHash(examples: readonly Pick<Example, 'key' | 'label' | 'sha256'>[]): string {
  const h = createHash('sha256');
  for (const e of [...examples].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))) {
    h.update(`${e.key}\u0000${e.label}\u0000${e.sha256}\n`);
  }
  return h.digest('hex');
}

class ShardedIndex implements DatasetIndex {
  constructor(
    private readonly store: ObjectStore,
    private readonly maxAttempts: number,
  ) {}

  private async readShard(key: string): Promise<{ shard: Shard; etag?: string }> {
    const o = await this.store.get(key);
    if (!o) return { shard: { schemaVersion: 1, entries: {} } };
    return { shard: parseJson(o.body, shardSchema), etag: o.etag };
  }

  async entry(project: string, key: string): Promise<IndexEntry | undefined> {
    const { shard } = await this.readShard(layout.datasetShard(project, shardOf(key)));
    return shard.entries[key];
  }

  /** The last pending write of each shard this instance is writing. */
  private readonly turns = new Map<string, Promise<unknown>>();

  /**
   * Writers in one process take turns per shard. The conditional write still guards against other processes;
   * the turns spare our own writers a lost race each, and on stores that do not lock create-if-absent (moto_server)
   * two of them creating one shard at once would otherwise both succeed and one entry would be lost.
   */
  apply(project: string, change: IndexChange): Promise<ApplyResult> {
    const shardKey = layout.datasetShard(project, shardOf(change.key));
    const previous = this.turns.get(shardKey) ?? Promise.resolve();
    const run = previous.then(() => this.applyNow(shardKey, change));
    const settled = run.catch(() => {});
    this.turns.set(shardKey, settled);
    void settled.then(() => {
      if (this.turns.get(shardKey) === settled) this.turns.delete(shardKey);
    });
    return run;
  }

  private async applyNow(shardKey: string, change: IndexChange): Promise<ApplyResult> {
    for (let attempt = 0; attempt < this.maxAttempts; attempt++) {
      const { shard, etag } = await this.readShard(shardKey);
      const current = shard.entries[change.key];
      if (current && compareSequencers(current.sequencer, change.sequencer) >= 0) {
        return { result: 'stale', previous: current };
      }
      const { key, ...entry } = change;
      shard.entries[key] = entry;
      try {
        await this.store.put(shardKey, JSON.stringify(shard), {
          contentType: 'application/json',
          ...(etag ? { ifMatch: etag } : { ifNoneMatch: '*' as const }),
        });
        return current ? { result: 'applied', previous: current } : { result: 'applied' };
      } catch (err) {
        if (!(err instanceof PreconditionFailedError)) throw err;
        // Another writer changed this shard first: re-read and decide again.
        await new Promise((r) => setTimeout(r, Math.random() * 20 * (attempt + 1)));
      }
    }
    throw new IndexContentionError(
      `gave up updating ${shardKey} after ${this.maxAttempts} conflicting writes`,
    );
  }

  private async shards(project: string): Promise<Shard[]> {
    const keys: string[] = [];
    for await (const o of this.store.list(layout.datasetShardPrefix(project))) keys.push(o.key);
    return mapLimit(keys, 16, async (k) => (await this.readShard(k)).shard);
  }

  async snapshot(project: string): Promise<Example[]> {
    const out: Example[] = [];
    for (const shard of await this.shards(project)) {
      for (const [key, e] of Object.entries(shard.entries)) {
        if (e.state === 'example') {
          out.push({
            key,
            label: e.label,
            sha256: e.sha256,
            bytes: e.bytes,
            uploadedAt: e.uploadedAt ?? e.at,
          });
        }
      }
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  async entries(project: string): Promise<Map<string, IndexEntry>> {
    const out = new Map<string, IndexEntry>();
    for (const shard of await this.shards(project))
      for (const [k, e] of Object.entries(shard.entries)) out.set(k, e);
    return out;
  }

  async quarantined(project: string): Promise<{ key: string; code: string }[]> {
    const out: { key: string; code: string }[] = [];
    for (const shard of await this.shards(project)) {
      for (const [key, e] of Object.entries(shard.entries))
        if (e.state === 'quarantined') out.push({ key, code: e.code });
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : 1));
  }
}

export function createDatasetIndex(store: ObjectStore, options: { maxAttempts?: number } = {}): DatasetIndex {
  return new ShardedIndex(store, options.maxAttempts ?? 12);
}
