import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createFsStore } from './fs-store.js';
import type { ObjectStore } from './object-store.js';
import { InvalidOptionsError, NoSuchKeyError } from './store-errors.js';
import { replaceTags } from './tags.js';

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

async function fsStore(): Promise<ObjectStore> {
  const root = await mkdtemp(path.join(tmpdir(), 'headstart-tags-'));
  roots.push(root);
  return createFsStore({ root });
}

/** A wrapper written before tags existed: it forwards the original six methods only. */
function withoutTagging(inner: ObjectStore): ObjectStore & { puts: number } {
  const wrapper = {
    puts: 0,
    description: inner.description,
    get: (k: string) => inner.get(k),
    getIfChanged: (k: string, e: string) => inner.getIfChanged(k, e),
    head: (k: string) => inner.head(k),
    put: (...args: Parameters<ObjectStore['put']>) => {
      wrapper.puts++;
      return inner.put(...args);
    },
    delete: (k: string) => inner.delete(k),
    list: (p: string, o?: { startAfter?: string }) => inner.list(p, o),
  };
  return wrapper;
}

describe('replaceTags', () => {
  it("uses the store's own putTags when it has one", async () => {
    const store = await fsStore();
    await store.put('k', 'v', { tags: { stage: 'candidate' } });
    await replaceTags(store, 'k', { stage: 'promoted' });
    expect(await store.getTags!('k')).toEqual({ stage: 'promoted' });
  });

  it('retags through a wrapper without putTags by putting the same object back with the new tags', async () => {
    const inner = await fsStore();
    const wrapper = withoutTagging(inner);
    const { etag } = await inner.put('k', 'bytes', {
      contentType: 'application/json',
      metadata: { label: 'cat' },
      tags: { stage: 'candidate' },
    });
    await replaceTags(wrapper, 'k', { stage: 'promoted' });
    expect(wrapper.puts).toBe(1);
    expect(await inner.getTags!('k')).toEqual({ stage: 'promoted' });
    const got = await inner.get('k');
    expect(got).toMatchObject({ etag, contentType: 'application/json', metadata: { label: 'cat' } });
    expect(new TextDecoder().decode(got!.body)).toBe('bytes');
  });

  it('never creates an object, and validates the tags, with or without putTags', async () => {
    const inner = await fsStore();
    for (const store of [inner, withoutTagging(inner)]) {
      await expect(replaceTags(store, 'missing', { stage: 'promoted' })).rejects.toBeInstanceOf(
        NoSuchKeyError,
      );
      await expect(replaceTags(store, 'missing', { 'aws:x': 'y' })).rejects.toBeInstanceOf(
        InvalidOptionsError,
      );
      expect(await inner.head('missing')).toBeUndefined();
    }
  });
});
