import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { type Backbone, loadBackbone } from '../../shared/backbone/index.js';
import { createDatasetIndex, type DatasetIndex } from '../../shared/dataset/dataset-index.js';
import { decodeFeatures } from '../../shared/dataset/feature-file.js';
import { listQuarantine, readQuarantine } from '../../shared/dataset/quarantine.js';
import { layout } from '../../shared/layout/index.js';
import { readPointer } from '../../shared/models/index.js';
import { createUploadExtractor } from '../../shared/pipeline/extract-uploads.js';
import { createRetrainRequester, readRetrainRequest } from '../../shared/pipeline/retrain-requests.js';
import {
  createProjectTrainer,
  type TrainOutcome,
  trainingBackbone,
} from '../../shared/pipeline/train-project.js';
import { createFsStore, type ObjectStore } from '../../shared/store/index.js';
import { initTf } from '../../shared/tf/tf-runtime.js';
import { clothingMini, fixturesDir } from '../../test/support/fixtures.js';
import { motoBucket } from '../../test/support/moto.js';
import {
  encodeEventKey,
  lambdaContext,
  nextSequencer,
  rawSqsRecord,
  s3EventRecord,
  sqsEvent,
} from '../../test/support/s3-events.js';
import { fsRawPut, type RawPut, recordingReads, s3RawPut } from '../../test/support/store-wrappers.js';
import { testBackbone } from '../../test/support/test-backbone.js';
import { createTrainHandler } from '../train/train-handler.js';
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

function harness(store: ObjectStore, options: { maxUploadBytes?: number } = {}) {
  const index: DatasetIndex = createDatasetIndex(store);
  const nudged: string[] = [];
  const retrain = createRetrainRequester(store, { notify: async (p) => void nudged.push(p) });
  const extractor = createUploadExtractor({
    store,
    backbone,
    index,
    ...options,
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

/** An S3 notification for a created object, with the size and ETag S3 puts in it (ETag unquoted, as S3 sends it). */
function createdRecord(key: string, size: number, etag: string) {
  return rawSqsRecord(
    JSON.stringify({
      Records: [
        {
          eventVersion: '2.1',
          eventSource: 'aws:s3',
          eventTime: new Date().toISOString(),
          eventName: 'ObjectCreated:Put',
          s3: {
            object: {
              key: encodeEventKey(key),
              size,
              eTag: etag.replace(/"/g, ''),
              sequencer: nextSequencer(),
            },
          },
        },
      ],
    }),
  );
}

interface SuiteEnv {
  store: ObjectStore;
  /** Writes an object the way another tool would, bypassing the store's refusal of control characters. */
  rawPut: RawPut;
}

function suite(name: string, makeEnv: () => Promise<SuiteEnv>) {
  const makeStore = async () => (await makeEnv()).store;
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
      // Each photo and its mirror (the default `augmentations: ['hflip']`).
      expect(await countKeys(store, `features/${backbone.manifest.id}/`)).toBe(17 * 2);
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
      expect(await countKeys(store, `features/${backbone.manifest.id}/`)).toBe(1 * 2);
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

    it('refuses an oversized upload from the size its event carries, without reading it, and only once per ETag', async () => {
      const { store: raw } = await makeEnv();
      const { store, reads } = recordingReads(raw);
      const { index, nudged, handler } = harness(store, { maxUploadBytes: 100_000 });
      const key = 'uploads/large/hat/scan.png';
      await raw.put(key, new Uint8Array(150_000));
      const { etag } = (await raw.head(key))!;
      expect((await handler([createdRecord(key, 150_000, etag)])).batchItemFailures).toEqual([]);
      expect(reads).not.toContain(key);
      const record = await readQuarantine(raw, key);
      expect(record).toMatchObject({ code: 'upload_too_large', etag, bytes: 150_000 });
      expect(record!.message).toMatch(/150000 bytes; the limit is 100000.*not copied/);
      expect(await index.entry('large', key)).toMatchObject({ state: 'quarantined', etag });
      // S3 sends another event when the same bytes are put again: nothing new is written or requested.
      expect((await handler([createdRecord(key, 150_000, etag)])).batchItemFailures).toEqual([]);
      expect(await readQuarantine(raw, key)).toEqual(record);
      expect(nudged).toEqual(['large']);
    });

    it('sets aside a key with a control character as invalid_file_name without failing the batch', async () => {
      const { store, rawPut } = await makeEnv();
      const { index, handler } = harness(store);
      const bad = 'uploads/ctl/hat/tab\tname.jpg';
      const photo = clothingMini('train')[0]!;
      await rawPut(bad, photo.bytes);
      await store.put('uploads/ctl/hat/ok.jpg', photo.bytes);
      // The event's ETag is what S3 reports for the object (MD5 of the single-part body).
      const etag = `"${createHash('md5').update(photo.bytes).digest('hex')}"`;
      const res = await handler([
        createdRecord(bad, photo.bytes.byteLength, etag),
        s3EventRecord('created', 'uploads/ctl/hat/ok.jpg'),
      ]);
      expect(res.batchItemFailures).toEqual([]);
      expect(await readQuarantine(store, bad)).toMatchObject({ code: 'invalid_file_name', etag });
      expect(await index.entry('ctl', bad)).toMatchObject({ state: 'quarantined', etag });
      expect((await index.snapshot('ctl')).map((e) => e.key)).toEqual(['uploads/ctl/hat/ok.jpg']);
    });

    it('trains in the training function when the same photo is in two labels, the most recent upload winning', async () => {
      const store = await makeStore();
      const { handler } = harness(store);
      const hats = clothingMini('train')
        .filter((p) => p.label === 'hat')
        .slice(0, 6);
      const shoes = clothingMini('train')
        .filter((p) => p.label === 'shoes')
        .slice(0, 6);
      const keys: string[] = [];
      for (const [label, list] of [
        ['hat', hats],
        ['shoes', shoes],
      ] as const) {
        for (const [i, p] of list.entries()) {
          keys.push(`uploads/pair/${label}/${i}.jpg`);
          await store.put(keys.at(-1)!, p.bytes);
        }
      }
      await handler(keys.map((k) => s3EventRecord('created', k)));
      await new Promise((r) => setTimeout(r, 1100)); // later than S3's one-second Last-Modified
      await store.put('uploads/pair/shoes/moved.jpg', hats[0]!.bytes);
      await handler([s3EventRecord('created', 'uploads/pair/shoes/moved.jpg')]);

      const trainer = createProjectTrainer({
        store,
        index: createDatasetIndex(store),
        backbone: trainingBackbone(backbone),
        quietSeconds: 0,
        trainOptions: { headTypes: ['softmax'], softmaxL2: [1e-2] },
      });
      const outcomes: TrainOutcome[] = [];
      const train = createTrainHandler({
        trainer: async () => ({
          run: async (p) => {
            const o = await trainer.run(p);
            outcomes.push(o);
            return o;
          },
        }),
        trigger: { notify: async () => {} },
        logger: new Logger({ serviceName: 'test', logLevel: 'SILENT' }),
      });
      const res = await train(sqsEvent([rawSqsRecord(JSON.stringify({ project: 'pair' }))]), lambdaContext);
      expect(res.batchItemFailures).toEqual([]);
      expect(outcomes).toEqual([expect.objectContaining({ status: 'promoted' })]);
      const version = (await readPointer(store, 'pair'))!.pointer.version;
      const evaluation = JSON.parse(
        new TextDecoder().decode(
          (await store.get(`${layout.versionPrefix('pair', version)}evaluation.json`))!.body,
        ),
      );
      expect(evaluation.perLabelCounts).toEqual({ hat: 5, shoes: 7 });
      expect(evaluation.conflicts).toEqual([
        expect.objectContaining({
          keys: [
            expect.objectContaining({ key: 'uploads/pair/hat/0.jpg', label: 'hat' }),
            expect.objectContaining({ key: 'uploads/pair/shoes/moved.jpg', label: 'shoes' }),
          ],
          winner: { key: 'uploads/pair/shoes/moved.jpg', label: 'shoes' },
        }),
      ]);
    });
  });
}

suite('file-system store', async () => {
  const root = mkdtempSync(join(tmpdir(), 'headstart-precompute-'));
  return {
    store: createFsStore({ root }),
    rawPut: fsRawPut(root),
  };
});

const endpoint = inject('motoEndpoint');
if (!endpoint) {
  console.warn(`[precompute handler] S3 variant skipped: ${inject('motoSkipReason')}`);
  describe.skip('precompute handler (S3 via moto_server)', () => {
    it('needs moto_server', () => {});
  });
} else {
  suite('S3 via moto_server', async () => {
    const { store, client, bucket } = await motoBucket(endpoint, 'hs-pre');
    return {
      store,
      rawPut: s3RawPut(client, bucket),
    };
  });
}
