import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type Backbone, loadBackbone } from '../../shared/backbone/index.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { decodeFeatures } from '../../shared/dataset/feature-file.js';
import { listQuarantine } from '../../shared/dataset/quarantine.js';
import { layout } from '../../shared/models/model-layout.js';
import { createUploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { createRetrainRequester, readRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { clothingMini, fixturesDir } from '../../test/support/fixtures.js';
import { motoBucket } from '../../test/support/moto.js';
import {
  lambdaContext,
  nextSequencer,
  rawSqsRecord,
  s3EventRecord,
  sqsEvent,
} from '../../test/support/s3-events.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { createPrecomputeHandler } from './precompute-handler.js';

let backbone: Backbone;
beforeAll(async () => {
  await initTf();
  backbone = await loadBackbone(await testBackbone());
});

const malformed = (name: string) => new Uint8Array(readFileSync(join(fixturesDir, 'malformed', name)));

async function countKeys(store: ObjectStore, prefix: string): Promise<number> {
  let n = 0;
  for await (const _ of store.list(prefix)) n++;
  return n;
}

function harness(store: ObjectStore) {
  const index: DatasetIndex = createDatasetIndex(store);
  const nudged: string[] = [];
  const retrain = createRetrainRequester(store, { notify: async (p) => void nudged.push(p) });
  const extractor = createUploadExtractor({
    store,
    backbone,
    index,
    requestRetrain: (p) => retrain.request(p),
  });
  const handler = createPrecomputeHandler({
    extractor: async () => extractor,
    retrain,
    logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
  });
  return {
    index,
    nudged,
    handler: (records: Parameters<typeof sqsEvent>[0]) => handler(sqsEvent(records), lambdaContext),
  };
}

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`precompute handler (${name})`, () => {
    it('indexes 17 good uploads and sets aside 3 bad ones with their reasons', async () => {
      const store = await makeStore();
      const { index, nudged, handler } = harness(store);
      const good = clothingMini('train').slice(0, 17);
      const bad: [string, Uint8Array, string][] = [
        ['uploads/wardrobe/hat/truncated.jpg', malformed('truncated.jpg'), 'corrupt_image'],
        ['uploads/wardrobe/shoes/notes.jpg', malformed('not-an-image.jpg'), 'unsupported_format'],
        ['uploads/wardrobe/pants/empty.jpg', malformed('empty.jpg'), 'empty_image'],
      ];
      const keys: string[] = [];
      for (const g of good) {
        const key = `uploads/wardrobe/${g.label}/${g.path.split('/').pop()}`;
        await store.put(key, g.bytes);
        keys.push(key);
      }
      for (const [key, bytes] of bad) await store.put(key, bytes);
      const res = await handler([...keys, ...bad.map((b) => b[0])].map((k) => s3EventRecord('created', k)));

      expect(res.batchItemFailures).toEqual([]);
      expect(await countKeys(store, `features/${backbone.manifest.id}/`)).toBe(17);
      const snapshot = await index.snapshot('wardrobe');
      expect(snapshot.map((e) => e.key).sort()).toEqual(keys.sort());
      const q = await listQuarantine(store, 'wardrobe');
      expect(q.map((r) => [r.key, r.code]).sort()).toEqual(bad.map((b) => [b[0], b[2]]).sort());
      expect(q.every((r) => r.message.length > 10)).toBe(true);
      // The bad bytes are kept beside the reason, and the original upload stays where the user put it.
      expect(await countKeys(store, 'quarantine/wardrobe/')).toBe(3 + 2);
      expect(await store.head(bad[0]![0])).toBeDefined();
      // One nudge for the burst, not one per image.
      expect(nudged).toEqual(['wardrobe']);
      expect((await readRetrainRequest(store, 'wardrobe'))?.project).toBe('wardrobe');
      const f = await store.get(layout.feature(backbone.manifest.id, snapshot[0]!.sha256));
      expect(decodeFeatures(f!.body, backbone.manifest.id).dim).toBe(backbone.featureDim);
    });

    it('extracts the same bytes once under two names and keeps both examples', async () => {
      const store = await makeStore();
      const { index, handler } = harness(store);
      const photo = clothingMini('train')[0]!;
      await store.put('uploads/twins/hat/a.jpg', photo.bytes);
      await store.put('uploads/twins/hat/b copy+1.jpg', photo.bytes);
      await handler([s3EventRecord('created', 'uploads/twins/hat/a.jpg')]);
      await handler([s3EventRecord('created', 'uploads/twins/hat/b copy+1.jpg')]);
      expect(await countKeys(store, `features/${backbone.manifest.id}/`)).toBe(1);
      expect((await index.snapshot('twins')).map((e) => e.key)).toEqual([
        'uploads/twins/hat/a.jpg',
        'uploads/twins/hat/b copy+1.jpg',
      ]);
    });

    it('leaves the same state when events are duplicated or a delete arrives before its create', async () => {
      const store = await makeStore();
      const { index, handler } = harness(store);
      const [p1, p2] = clothingMini('train');
      await store.put('uploads/order/hat/keep.jpg', p1!.bytes);
      const create = s3EventRecord('created', 'uploads/order/hat/keep.jpg');
      await handler([create, { ...create, messageId: 'dup' }]);
      await handler([create]);
      // gone.jpg: created, then deleted; the delete is delivered first, the create after it.
      await store.put('uploads/order/hat/gone.jpg', p2!.bytes);
      const createSeq = nextSequencer();
      await store.delete('uploads/order/hat/gone.jpg');
      const deleteSeq = nextSequencer();
      await handler([s3EventRecord('removed', 'uploads/order/hat/gone.jpg', deleteSeq)]);
      await store.put('uploads/order/hat/gone.jpg', p2!.bytes); // the object is even back, as if read late
      await handler([s3EventRecord('created', 'uploads/order/hat/gone.jpg', createSeq)]);
      expect((await index.snapshot('order')).map((e) => e.key)).toEqual(['uploads/order/hat/keep.jpg']);
    });

    it('removes a deleted upload from the dataset and relabels a moved one', async () => {
      const store = await makeStore();
      const { index, handler } = harness(store);
      const [a, b] = clothingMini('train');
      await store.put('uploads/moves/hat/a.jpg', a!.bytes);
      await store.put('uploads/moves/hat/b.jpg', b!.bytes);
      await handler([
        s3EventRecord('created', 'uploads/moves/hat/a.jpg'),
        s3EventRecord('created', 'uploads/moves/hat/b.jpg'),
      ]);
      await store.delete('uploads/moves/hat/a.jpg');
      await store.put('uploads/moves/shoes/b.jpg', b!.bytes);
      await store.delete('uploads/moves/hat/b.jpg');
      await handler([
        s3EventRecord('removed', 'uploads/moves/hat/a.jpg'),
        s3EventRecord('created', 'uploads/moves/shoes/b.jpg'),
        s3EventRecord('removed', 'uploads/moves/hat/b.jpg'),
      ]);
      expect((await index.snapshot('moves')).map((e) => [e.key, e.label])).toEqual([
        ['uploads/moves/shoes/b.jpg', 'shoes'],
      ]);
    });

    it('fails only the record that cannot be processed', async () => {
      const store = await makeStore();
      const { index, handler } = harness(store);
      await store.put('uploads/partial/hat/ok.jpg', clothingMini('train')[0]!.bytes);
      const bad = rawSqsRecord('{"this is": "not an S3 event"');
      const res = await handler([s3EventRecord('created', 'uploads/partial/hat/ok.jpg'), bad]);
      expect(res.batchItemFailures).toEqual([{ itemIdentifier: bad.messageId }]);
      expect((await index.snapshot('partial')).length).toBe(1);
    });

    it('refuses badly named uploads with a reason and clears a quarantine when a good file replaces a bad one', async () => {
      const store = await makeStore();
      const { index, handler } = harness(store);
      const photo = clothingMini('train')[0]!;
      await store.put('uploads/names/too/deep/a.jpg', photo.bytes);
      await store.put('uploads/names/hat/x.jpg', malformed('truncated.jpg'));
      await handler([
        s3EventRecord('created', 'uploads/names/too/deep/a.jpg'),
        s3EventRecord('created', 'uploads/names/hat/x.jpg'),
      ]);
      expect((await listQuarantine(store, 'names')).map((r) => r.code).sort()).toEqual([
        'corrupt_image',
        'key_too_deep',
      ]);
      await store.put('uploads/names/hat/x.jpg', photo.bytes);
      await handler([s3EventRecord('created', 'uploads/names/hat/x.jpg')]);
      expect((await listQuarantine(store, 'names')).map((r) => r.code)).toEqual(['key_too_deep']);
      expect((await index.snapshot('names')).map((e) => e.key)).toEqual(['uploads/names/hat/x.jpg']);
    });
  });
}

suite('file-system store', async () =>
  createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-precompute-')) }));

const endpoint = inject('motoEndpoint');
if (!endpoint) {
  console.warn(`[precompute handler] S3 variant skipped: ${inject('motoSkipReason')}`);
  describe.skip('precompute handler (S3 via moto_server)', () => {
    it('needs moto_server', () => {});
  });
} else {
  suite('S3 via moto_server', async () => (await motoBucket(endpoint, 'hs-pre')).store);
}
