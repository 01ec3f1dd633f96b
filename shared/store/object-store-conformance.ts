import { createHash, randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { isNotModified, type ObjectInfo, type ObjectStore } from './object-store.js';
import {
  InvalidKeyError,
  InvalidOptionsError,
  NoSuchKeyError,
  PreconditionFailedError,
} from './store-errors.js';

/**
 * The behaviour every ObjectStore must share, registered as vitest tests. Each test works under its own random
 * prefix, so one store (one bucket, one root) serves the whole suite and leftovers from other runs do not matter.
 */
export interface ConformanceOptions {
  /**
   * Whether the server behind the store decides concurrent conditional writes atomically, as S3 and the FS
   * store's per-key locks do. moto_server does not: it checks If-None-Match and stores the object without a lock
   * across its request threads, so under load two concurrent creators can both succeed there. Default true.
   */
  atomicConcurrentWrites?: boolean;
}

export function describeObjectStoreConformance(
  name: string,
  makeStore: () => Promise<ObjectStore>,
  options: ConformanceOptions = {},
): void {
  const atomic = options.atomicConcurrentWrites ?? true;
  describe(`${name} conforms to ObjectStore`, () => {
    let store: ObjectStore;
    beforeAll(async () => {
      store = await makeStore();
    });
    const scope = () => `conformance-${randomBytes(5).toString('hex')}/`;

    it('round-trips binary bytes, content type and metadata', async () => {
      const key = `${scope()}blob.bin`;
      const body = Uint8Array.from({ length: 256 }, (_, i) => 255 - i);
      const metadata = { label: 'cat', 'source-name': 'IMG 0001.JPG', 'x.y': 'a=b; c' };
      const { etag } = await store.put(key, body, { contentType: 'image/jpeg', metadata });
      expect(etag).toBe(`"${createHash('md5').update(body).digest('hex')}"`);

      const got = await store.get(key);
      expect(got).toBeDefined();
      expect(Buffer.from(got!.body).equals(Buffer.from(body))).toBe(true);
      expect(got).toMatchObject({ key, etag, contentType: 'image/jpeg', metadata });
      expect(got!.lastModified).toBeInstanceOf(Date);
      expect(Number.isNaN(got!.lastModified.getTime())).toBe(false);

      expect(await store.head(key)).toMatchObject({ key, size: 256, etag });
    });

    it('stores a string body as UTF-8 with the default content type and empty metadata', async () => {
      const key = `${scope()}text`;
      await store.put(key, 'héllo ✓');
      const got = await store.get(key);
      expect(new TextDecoder().decode(got!.body)).toBe('héllo ✓');
      expect(got!.contentType).toBe('application/octet-stream');
      expect(got!.metadata).toEqual({});
    });

    it('reports a missing key as undefined from get, head and getIfChanged', async () => {
      const key = `${scope()}missing`;
      expect(await store.get(key)).toBeUndefined();
      expect(await store.head(key)).toBeUndefined();
      expect(await store.getIfChanged(key, '"0123"')).toBeUndefined();
    });

    it('deletes idempotently', async () => {
      const key = `${scope()}gone`;
      await store.put(key, 'x');
      await store.delete(key);
      await store.delete(key);
      await store.delete(`${scope()}never-existed`);
      expect(await store.get(key)).toBeUndefined();
    });

    it('replaces an object with a plain put', async () => {
      const key = `${scope()}replaced`;
      await store.put(key, 'one', { metadata: { v: '1' } });
      const { etag } = await store.put(key, 'two');
      const got = await store.get(key);
      expect(new TextDecoder().decode(got!.body)).toBe('two');
      expect(got!.etag).toBe(etag);
      expect(got!.metadata).toEqual({});
    });

    it('lists only keys under the prefix, in byte order, with size and etag', async () => {
      const base = scope();
      const keys = ['p/a/1', 'p/a/2', 'p/ab', 'p/b/1', 'q/1', 'p/a-b', 'p/a.b'];
      const etags = new Map<string, string>();
      for (const k of keys) etags.set(k, (await store.put(base + k, k)).etag);

      const under = async (prefix: string) => (await collect(store.list(base + prefix))).map((o) => o.key);
      expect(await under('p/a')).toEqual(['p/a-b', 'p/a.b', 'p/a/1', 'p/a/2', 'p/ab'].map((k) => base + k));
      expect(await under('p/a/')).toEqual(['p/a/1', 'p/a/2'].map((k) => base + k));
      expect(await under('')).toEqual([...keys].sort().map((k) => base + k));
      expect(await under('nothing-here')).toEqual([]);

      const [first] = await collect(store.list(`${base}q/`));
      expect(first).toMatchObject({ key: `${base}q/1`, size: 3, etag: etags.get('q/1') });
      expect(first!.lastModified).toBeInstanceOf(Date);
    });

    it('lists past 1,000 keys across pages without gaps or duplicates', async () => {
      const base = scope();
      const keys = Array.from({ length: 1005 }, (_, i) => `${base}k${String(i).padStart(5, '0')}`);
      await mapLimit(keys, 32, (k) => store.put(k, k));
      const listed = (await collect(store.list(base))).map((o) => o.key);
      expect(listed).toEqual(keys);

      // Resuming after the 999th key crosses the first page boundary of S3-style pagination.
      const resumed = (await collect(store.list(base, { startAfter: keys[998]! }))).map((o) => o.key);
      expect(resumed).toEqual(keys.slice(999));
    });

    it('starts listing strictly after startAfter, which need not exist', async () => {
      const base = scope();
      for (const k of ['a', 'b', 'c', 'd', 'e']) await store.put(base + k, k);
      const keysAfter = async (startAfter: string) =>
        (await collect(store.list(base, { startAfter }))).map((o) => o.key.slice(base.length));
      expect(await keysAfter(`${base}c`)).toEqual(['d', 'e']);
      expect(await keysAfter(`${base}bb`)).toEqual(['c', 'd', 'e']);
      expect(await keysAfter(`${base}e`)).toEqual([]);
      expect(await keysAfter('')).toEqual(['a', 'b', 'c', 'd', 'e']);
    });

    it('creates only if absent: succeeds once, then fails with PreconditionFailedError', async () => {
      const key = `${scope()}once`;
      await store.put(key, 'first', { ifNoneMatch: '*' });
      await expect(store.put(key, 'second', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(
        PreconditionFailedError,
      );
      expect(new TextDecoder().decode((await store.get(key))!.body)).toBe('first');
    });

    it('replaces only when the ETag matches, and fails with a stale one', async () => {
      const key = `${scope()}cas`;
      const v1 = await store.put(key, 'v1');
      const v2 = await store.put(key, 'v2', { ifMatch: v1.etag });
      await expect(store.put(key, 'v3', { ifMatch: v1.etag })).rejects.toMatchObject({
        name: 'PreconditionFailedError',
        code: 'precondition_failed',
      });
      // Unquoted ETags are accepted the way S3 accepts them.
      await store.put(key, 'v4', { ifMatch: v2.etag.replaceAll('"', '') });
      expect(new TextDecoder().decode((await store.get(key))!.body)).toBe('v4');
    });

    it('fails a replace-if-ETag-matches on a missing key', async () => {
      await expect(
        store.put(`${scope()}absent`, 'x', { ifMatch: '"0123456789abcdef"' }),
      ).rejects.toBeInstanceOf(PreconditionFailedError);
    });

    it('refuses all but the winners of concurrent create-if-absent calls, and exactly one wins where writes are atomic', async () => {
      for (let round = 0; round < 5; round++) {
        const key = `${scope()}race`;
        const contenders = Array.from({ length: 8 }, (_, i) => `writer-${i}`);
        const results = await Promise.allSettled(
          contenders.map((c) => store.put(key, c, { ifNoneMatch: '*' })),
        );
        const winners = contenders.filter((_, i) => results[i]!.status === 'fulfilled');
        if (atomic) expect(winners).toHaveLength(1);
        else expect(winners.length).toBeGreaterThanOrEqual(1);
        for (const r of results) {
          if (r.status === 'rejected') expect(r.reason).toBeInstanceOf(PreconditionFailedError);
        }
        const stored = new TextDecoder().decode((await store.get(key))!.body);
        if (atomic) expect(stored).toBe(winners[0]);
        else expect(winners).toContain(stored);
      }
    });

    it('answers a conditional GET with not-modified for the current ETag and the object for a stale one', async () => {
      const key = `${scope()}cond`;
      const old = await store.put(key, 'old');
      const current = await store.put(key, 'new');

      const same = await store.getIfChanged(key, current.etag);
      expect(isNotModified(same)).toBe(true);
      expect(same).toEqual({ notModified: true, etag: current.etag });
      expect(isNotModified(await store.getIfChanged(key, current.etag.replaceAll('"', '')))).toBe(true);

      const changed = await store.getIfChanged(key, old.etag);
      expect(isNotModified(changed)).toBe(false);
      expect(changed).toMatchObject({ key, etag: current.etag });
      expect(new TextDecoder().decode((changed as { body: Uint8Array }).body)).toBe('new');
    });

    it('shows concurrent readers one complete version or the other while a 2 MB object is replaced', async () => {
      const key = `${scope()}atomic.bin`;
      const a = new Uint8Array(randomBytes(2 * 1024 * 1024));
      const b = a.map((x) => x ^ 0xff);
      const versions = [Buffer.from(a), Buffer.from(b)];
      await store.put(key, a);

      let writing = true;
      const writer = (async () => {
        try {
          for (let i = 0; i < 12; i++) await store.put(key, i % 2 === 0 ? b : a);
        } finally {
          writing = false;
        }
      })();
      const seen: string[] = [];
      const reader = async () => {
        while (writing) {
          const got = await store.get(key);
          const body = Buffer.from(got!.body);
          const which = versions.findIndex((v) => v.equals(body));
          seen.push(which === -1 ? `torn read of ${body.length} bytes` : `version ${which}`);
        }
      };
      await Promise.all([writer, reader(), reader(), reader()]);
      expect(seen.length).toBeGreaterThan(0);
      expect(seen.filter((s) => !s.startsWith('version'))).toEqual([]);
    });

    it('stores the tags given to put, and none when a plain put replaces the object', async () => {
      const key = `${scope()}tagged`;
      const tags = { 'headstart-stage': 'candidate', 'team name': 'Vision é/1+2=3 @x:y', empty: '' };
      await store.put(key, 'v1', { tags, ifNoneMatch: '*' });
      expect(await store.getTags(key)).toEqual(tags);
      await store.put(key, 'v2');
      expect(await store.getTags(key)).toEqual({});
      expect(await store.getTags(`${scope()}missing`)).toBeUndefined();
    });

    it("replaces an object's tags without touching its body, ETag, metadata or last-modified time", async () => {
      const key = `${scope()}retag`;
      const { etag } = await store.put(key, 'bytes', {
        contentType: 'application/json',
        metadata: { label: 'cat' },
        tags: { 'headstart-stage': 'candidate', other: 'x' },
      });
      const before = await store.get(key);
      await new Promise((r) => setTimeout(r, 1100)); // S3 times have second resolution
      await store.putTags(key, { 'headstart-stage': 'promoted' });
      await store.putTags(key, { 'headstart-stage': 'promoted' }); // idempotent
      expect(await store.getTags(key)).toEqual({ 'headstart-stage': 'promoted' });
      const after = await store.get(key);
      expect(after).toMatchObject({ etag, contentType: 'application/json', metadata: { label: 'cat' } });
      expect(new TextDecoder().decode(after!.body)).toBe('bytes');
      expect(after!.lastModified.getTime()).toBe(before!.lastModified.getTime());
    });

    it('refuses to tag a missing key with NoSuchKeyError, and does not create it', async () => {
      const key = `${scope()}never-written`;
      await expect(store.putTags(key, { 'headstart-stage': 'promoted' })).rejects.toBeInstanceOf(
        NoSuchKeyError,
      );
      expect(await store.head(key)).toBeUndefined();
    });

    it('rejects tag sets S3 would refuse, on put and on retagging', async () => {
      const key = `${scope()}bad-tags`;
      const eleven = Object.fromEntries(Array.from({ length: 11 }, (_, i) => [`k${i}`, 'v']));
      const bad: Record<string, string>[] = [
        eleven,
        { ['k'.repeat(129)]: 'v' },
        { k: 'v'.repeat(257) },
        { 'aws:reserved': 'v' },
        { k: 'semi;colon' },
        { '': 'v' },
      ];
      for (const tags of bad) {
        await expect(store.put(key, 'x', { tags }), JSON.stringify(tags)).rejects.toBeInstanceOf(
          InvalidOptionsError,
        );
      }
      expect(await store.head(key)).toBeUndefined();
      await store.put(key, 'x', {
        tags: { ...Object.fromEntries(Object.entries(eleven).slice(2)), ['k'.repeat(128)]: 'v'.repeat(256) },
      });
      expect(Object.keys((await store.getTags(key))!)).toHaveLength(10);
      for (const tags of [...bad, {}]) {
        await expect(store.putTags(key, tags), JSON.stringify(tags)).rejects.toBeInstanceOf(
          InvalidOptionsError,
        );
      }
    });

    it('rejects keys no store can hold and metadata S3 would mangle', async () => {
      await expect(store.put('', 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.get(`${scope()}nul\u0000byte`)).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.put(`${scope()}${'x'.repeat(1025)}`, 'x')).rejects.toBeInstanceOf(InvalidKeyError);
      const key = `${scope()}meta`;
      await expect(store.put(key, 'x', { metadata: { Label: 'cat' } })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      await expect(store.put(key, 'x', { metadata: { snake_case: 'v' } })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      await expect(store.put(key, 'x', { metadata: { label: 'chat noir é' } })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      await expect(store.put(key, 'x', { metadata: { label: ' padded' } })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      await expect(store.put(key, 'x', { ifNoneMatch: '*', ifMatch: '"a"' })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      expect(await store.head(key)).toBeUndefined();
    });
  });
}

async function collect(iterable: AsyncIterable<ObjectInfo>): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const item of iterable) out.push(item);
  return out;
}

async function mapLimit<T>(items: T[], limit: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
