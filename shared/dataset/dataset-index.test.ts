import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { wrapStore } from '../../test/support/store-wrappers.js';
import { createFsStore, PreconditionFailedError } from '../store/index.js';
import { createDatasetIndex, shardOf, snapshotHash } from './dataset-index.js';
import { compareSequencers } from './sequencer.js';

const store = () => createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-index-')) });
const example = (key: string, sequencer: string, label = 'hat') => ({
  state: 'example' as const,
  key,
  label,
  sha256: 'a'.repeat(64),
  bytes: 10,
  sequencer,
  at: new Date(0).toISOString(),
});

describe('dataset index', () => {
  it('loses no example when many writers update the same shards at once', async () => {
    const s = store();
    const index = createDatasetIndex(s);
    const keys = Array.from({ length: 300 }, (_, i) => `uploads/p/hat/${i}.jpg`);
    await Promise.all(keys.map((k) => index.apply('p', example(k, '0001'))));
    expect((await index.snapshot('p')).length).toBe(300);
  });

  it('loses no example on a store that does not lock create-if-absent, as moto_server does not', async () => {
    const base = store();
    // Checks for the object, yields, then writes unconditionally: two creators of one shard both "succeed".
    const racy = wrapStore(base, {
      async put(key, body, options) {
        if (options?.ifNoneMatch === '*') {
          if (await base.head(key)) throw new PreconditionFailedError(`${key} exists`);
          await new Promise((r) => setTimeout(r, 5));
          const { ifNoneMatch: _, ...rest } = options;
          return base.put(key, body, rest);
        }
        return base.put(key, body, options);
      },
    });
    const index = createDatasetIndex(racy);
    const keys = Array.from({ length: 40 }, (_, i) => `uploads/p/hat/${i}.jpg`);
    await Promise.all(keys.map((k) => index.apply('p', example(k, '0001'))));
    expect((await index.snapshot('p')).length).toBe(40);
  });

  it('writes one small shard per change instead of one object for the whole project', async () => {
    const s = store();
    const index = createDatasetIndex(s);
    for (let i = 0; i < 2000; i += 100) {
      await Promise.all(
        Array.from({ length: 100 }, (_, j) =>
          index.apply('big', example(`uploads/big/l/${i + j}.jpg`, '01')),
        ),
      );
    }
    let shards = 0;
    let largest = 0;
    for await (const o of s.list('datasets/big/index/')) {
      shards++;
      largest = Math.max(largest, o.size);
    }
    expect(shards).toBeGreaterThan(200);
    // 2,000 examples spread over ~256 shards: no shard holds more than a small fraction of the dataset.
    expect(largest).toBeLessThan(4000);
    expect((await index.snapshot('big')).length).toBe(2000);
  });

  it('ignores a change whose sequencer is not newer than the entry it would replace', async () => {
    const index = createDatasetIndex(store());
    expect((await index.apply('p', example('uploads/p/a/x.jpg', '0005', 'a'))).result).toBe('applied');
    expect((await index.apply('p', example('uploads/p/a/x.jpg', '0003', 'b'))).result).toBe('stale');
    expect((await index.apply('p', example('uploads/p/a/x.jpg', '0005', 'b'))).result).toBe('stale');
    const del = { state: 'deleted' as const, key: 'uploads/p/a/x.jpg', sequencer: '0006', at: '' };
    expect((await index.apply('p', del)).previous?.state).toBe('example');
    expect(await index.snapshot('p')).toEqual([]);
  });

  it('compares S3 sequencers after right-padding the shorter one', () => {
    expect(compareSequencers('0055AED6DCD90281E5', '0055AED6DCD90281E6')).toBeLessThan(0);
    expect(compareSequencers('0055AED6DCD9028', '0055AED6DCD90281E5')).toBeLessThan(0);
    expect(compareSequencers('0055AED6DCD9029', '0055AED6DCD90281E5')).toBeGreaterThan(0);
    expect(compareSequencers('abc', 'ABC0')).toBe(0);
  });

  it('names a dataset by its content, whatever the order it is listed in', () => {
    const a = [example('k1', '1'), example('k2', '1', 'shoes')];
    expect(snapshotHash(a)).toBe(snapshotHash([...a].reverse()));
    expect(snapshotHash(a)).not.toBe(snapshotHash([example('k1', '1'), example('k2', '1', 'hat')]));
    expect(shardOf('uploads/p/a/x.jpg')).toMatch(/^[0-9a-f]{2}$/);
  });
});
