import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, inject, it } from 'vitest';
import { motoBucket } from '../../test/support/moto.js';
import { wrapStore } from '../../test/support/store-wrappers.js';
import { layout } from '../layout/index.js';
import { createFsStore, type ObjectStore, StoreUnavailableError } from '../store/index.js';
import { flipPointer, readPointer, rollback, writeVersion } from './model-store.js';
import { VERSION_STAGE_TAG } from './version-stage.js';

const endpoint = inject('motoEndpoint');
if (!endpoint) console.warn(`[model-store tests] S3 variant skipped: ${inject('motoSkipReason')}`);

const roots: string[] = [];
afterAll(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

const P = 'closet';
const FILES = ['head.json', 'head.bin', 'evaluation.json'];

async function write(store: ObjectStore, version: string) {
  return writeVersion(
    store,
    {
      schemaVersion: 1,
      project: P,
      version,
      createdAt: new Date().toISOString(),
      labels: ['hat', 'shoes'],
      backbone: { id: 'bb', weightsSha256: 'b'.repeat(64), inputSize: 224, featureDim: 4 },
      head: { format: 'tfjs-layers', type: 'softmax' },
      metrics: { accuracy: 1, macroF1: 1, n: 4 },
      datasetSnapshot: 'd'.repeat(64),
      training: {},
    },
    { 'head.json': '{}', 'head.bin': new Uint8Array([1, 2, 3]), 'evaluation.json': `{"v":"${version}"}` },
  );
}

/** The stage tag of every file of a version, manifest included. */
async function stages(store: ObjectStore, version: string): Promise<Record<string, string | undefined>> {
  const out: Record<string, string | undefined> = {};
  for (const name of ['manifest.json', ...FILES]) {
    out[name] = (await store.getTags(layout.versionFile(P, version, name)))?.[VERSION_STAGE_TAG];
  }
  return out;
}
const all = (stage: string) => Object.fromEntries(['manifest.json', ...FILES].map((n) => [n, stage]));

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`model version stages (${name})`, () => {
    it('tags every file of a written version, manifest included, as a candidate', async () => {
      const store = await makeStore();
      await write(store, 'v1');
      expect(await stages(store, 'v1')).toEqual(all('candidate'));
    });

    it('retags a version promoted before the pointer names it, for every reason', async () => {
      for (const reason of ['promoted', 'forced', 'rollback'] as const) {
        const base = await makeStore();
        // Records the version's tags at the moment the pointer is written.
        let tagsAtFlip: Record<string, string | undefined> | undefined;
        const store = wrapStore(base, {
          async put(key, body, options) {
            if (key === layout.currentPointer(P)) tagsAtFlip = await stages(base, 'v1');
            return base.put(key, body, options);
          },
        });
        await write(store, 'v1');
        await flipPointer(store, P, 'v1', reason, undefined);
        expect(tagsAtFlip, reason).toEqual(all('promoted'));
        expect(await stages(store, 'v1'), reason).toEqual(all('promoted'));
        // Flipping again to the same version is harmless.
        const current = await readPointer(store, P);
        await flipPointer(store, P, 'v1', reason, current?.etag);
        expect(await stages(store, 'v1'), reason).toEqual(all('promoted'));
      }
    });

    it('keeps a version held back from the pointer a candidate, and the current one promoted', async () => {
      const store = await makeStore();
      await write(store, 'v1');
      await flipPointer(store, P, 'v1', 'promoted', undefined);
      await write(store, 'v2'); // the promotion gate said no: nothing flips
      expect(await stages(store, 'v1')).toEqual(all('promoted'));
      expect(await stages(store, 'v2')).toEqual(all('candidate'));
    });

    it('promotes an old candidate that is rolled back to, and keeps the version rolled away from', async () => {
      const store = await makeStore();
      await write(store, 'v1');
      await write(store, 'v2');
      await flipPointer(store, P, 'v2', 'promoted', undefined);
      expect(await stages(store, 'v1')).toEqual(all('candidate'));
      await rollback(store, P, 'v1');
      expect((await readPointer(store, P))?.pointer).toMatchObject({ version: 'v1', reason: 'rollback' });
      expect(await stages(store, 'v1')).toEqual(all('promoted'));
      expect(await stages(store, 'v2')).toEqual(all('promoted'));
    });

    it('leaves the pointer alone when the version cannot be retagged', async () => {
      const base = await makeStore();
      await write(base, 'v1');
      await flipPointer(base, P, 'v1', 'promoted', undefined);
      await write(base, 'v2');
      const before = await readPointer(base, P);
      const failing = wrapStore(base, {
        putTags: async () => {
          throw new StoreUnavailableError('simulated outage');
        },
      });
      await expect(rollback(failing, P, 'v2')).rejects.toBeInstanceOf(StoreUnavailableError);
      expect((await readPointer(base, P))?.etag).toBe(before?.etag);
    });
  });
}

suite('FS store', async () => {
  const root = await mkdtemp(path.join(tmpdir(), 'headstart-model-store-'));
  roots.push(root);
  return createFsStore({ root });
});

describe.skipIf(!endpoint)('against moto_server', () => {
  suite('S3 store', async () => (await motoBucket(endpoint, 'hs-models')).store);
});
