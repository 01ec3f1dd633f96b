import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import {
  type EdgeFixture,
  edgeFixture,
  evalPhotos,
  manualClock,
  testApp,
} from '../../test/support/edge-test-support.js';
import { clothingMini } from '../../test/support/fixtures.js';
import { motoBucket } from '../../test/support/moto.js';
import { publishTestModel } from '../../test/support/publish-test-model.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import type { UploadEvent } from '../dataset/s3-events.js';
import { localSequencer } from '../dataset/sequencer.js';
import { layout } from '../layout/index.js';
import { createUploadExtractor } from '../pipeline/extract-uploads.js';
import { type ReviewSettings, updateProjectSettings } from '../pipeline/project-settings.js';
import { createRetrainRequester } from '../pipeline/retrain-requests.js';
import { createProjectTrainer, trainingBackbone } from '../pipeline/train-project.js';
import {
  discardReviewItem,
  labelReviewItem,
  listReviewItems,
  ReviewAlreadyLabelledError,
  ReviewItemNotFoundError,
} from '../review/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { createEdgeApp, type EdgeApp } from './app.js';
import { createJsonLogger } from './edge-logger.js';
import { reviewReason } from './review-recorder.js';

const P = 'closet';
let fx: EdgeFixture;

beforeAll(async () => {
  fx = await edgeFixture();
});

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

async function predict(app: EdgeApp, image: Uint8Array, project = P) {
  const res = await app.request(`/v1/projects/${project}/predict?topK=1`, {
    method: 'POST',
    body: image,
    headers: { 'content-type': 'image/jpeg' },
  });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return JSON.parse(text) as { predictions: { label: string; score: number }[]; model: { version: string } };
}

async function enable(store: ObjectStore, review: Partial<ReviewSettings>, project = P) {
  await updateProjectSettings(store, project, () => ({
    review: { enabled: true, below: 0.5, sample: 0, ...review },
  }));
}

async function keysUnder(store: ObjectStore, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}

describe('which photos the API keeps for review', () => {
  const on: ReviewSettings = { enabled: true, below: 0.5, sample: 0 };
  const never = () => 0.99;

  it('keeps unknown photos and low scores, samples the rest at the rate asked, and nothing when off', () => {
    expect(reviewReason(on, { unknown: true, score: 0.99 }, never)).toBe('unknown');
    expect(reviewReason(on, { unknown: false, score: 0.49 }, never)).toBe('low_score');
    expect(reviewReason(on, { unknown: null, score: 0.51 }, never)).toBeUndefined();
    expect(reviewReason({ ...on, sample: 0.1 }, { unknown: false, score: 0.9 }, () => 0.05)).toBe('sample');
    expect(reviewReason({ ...on, sample: 0.1 }, { unknown: false, score: 0.9 }, () => 0.15)).toBeUndefined();
    expect(reviewReason({ ...on, enabled: false }, { unknown: true, score: 0.1 }, () => 0)).toBeUndefined();
  });
});

function suite(name: string, makeStore: () => Promise<ObjectStore>) {
  describe(`the review queue (${name})`, () => {
    const withModel = async () => {
      const store = await makeStore();
      await publishTestModel(store, P, fx.trained, { version: 'v1' });
      return store;
    };

    it('keeps the photos scored under the threshold, with their prediction, and not the confident ones', async () => {
      const store = await withModel();
      const photos = evalPhotos().slice(0, 8);
      const plain = testApp(fx, store);
      const scores: number[] = [];
      for (const p of photos) scores.push((await predict(plain.app, p.bytes)).predictions[0]!.score);
      expect(await keysUnder(store, layout.reviewPrefix(P))).toEqual([]);
      const below = [...scores].sort((a, b) => a - b)[3]! + 1e-6;

      await enable(store, { below });
      const { app, reviews } = testApp(fx, store);
      const answers: Awaited<ReturnType<typeof predict>>[] = [];
      for (const p of photos) answers.push(await predict(app, p.bytes));
      await reviews.settle();
      const unsure = photos.filter((_, i) => answers[i]!.predictions[0]!.score < below);
      expect(unsure).toHaveLength(4);
      const { items, total } = await listReviewItems(store, P);
      expect(total).toBe(4);
      expect(items.map((i) => i.id).sort()).toEqual(unsure.map((p) => sha256(p.bytes)).sort());
      for (const item of items) {
        const i = photos.findIndex((p) => sha256(p.bytes) === item.id);
        expect(item).toMatchObject({
          prediction: answers[i]!.predictions[0],
          unknown: null,
          outlierScore: null,
          version: 'v1',
          reason: 'low_score',
        });
        expect(Date.parse(item.createdAt)).not.toBeNaN();
        const image = await store.get(layout.reviewImage(P, item.id));
        expect(image?.body).toEqual(photos[i]!.bytes);
      }
      expect(reviews.stats()).toMatchObject({ written: 4, failed: 0 });
    });

    it('keeps the same bytes once, across requests and across instances', async () => {
      const store = await withModel();
      await enable(store, { below: 1 });
      const photo = evalPhotos()[0]!.bytes;
      const first = testApp(fx, store);
      await predict(first.app, photo);
      await predict(first.app, photo);
      await first.reviews.settle();
      const second = testApp(fx, store);
      await predict(second.app, photo);
      await second.reviews.settle();
      expect((await listReviewItems(store, P)).total).toBe(1);
      expect(await keysUnder(store, layout.reviewPrefix(P))).toEqual([
        layout.reviewImage(P, sha256(photo)),
        layout.reviewItem(P, sha256(photo)),
      ]);
      expect(first.reviews.stats()).toMatchObject({ written: 1, duplicates: 1 });
      expect(second.reviews.stats()).toMatchObject({ written: 0, duplicates: 1 });
    });

    it('keeps the unsure photos of a batch, each as its own item, and none that could not be decoded', async () => {
      const store = await withModel();
      await enable(store, { below: 1 });
      const { app, reviews } = testApp(fx, store);
      const photos = evalPhotos().slice(0, 3);
      const form = new FormData();
      for (const p of photos) form.append('image', new Blob([p.bytes], { type: 'image/jpeg' }));
      form.append('image', new Blob([new Uint8Array([1, 2, 3])], { type: 'image/jpeg' }));
      const res = await app.request(`/v1/projects/${P}/predict/batch`, { method: 'POST', body: form });
      expect(res.status).toBe(200);
      await reviews.settle();
      const { items } = await listReviewItems(store, P);
      expect(items.map((i) => i.id).sort()).toEqual(photos.map((p) => sha256(p.bytes)).sort());
    });

    it('writes at most the per-instance rate cap, and more again as the minute passes', async () => {
      const store = await withModel();
      await enable(store, { below: 1 });
      const clock = manualClock();
      const { app, reviews } = testApp(fx, store, { clock: clock.now, reviewMaxPerMinute: 2 });
      const photos = evalPhotos().slice(0, 6);
      for (const p of photos.slice(0, 4)) await predict(app, p.bytes);
      await reviews.settle();
      expect((await listReviewItems(store, P)).total).toBe(2);
      expect(reviews.stats()).toMatchObject({ written: 2, dropped: 2 });
      clock.advance(30_000);
      for (const p of photos.slice(4)) await predict(app, p.bytes);
      await reviews.settle();
      expect((await listReviewItems(store, P)).total).toBe(3);
    });

    it('keeps no photo over the size cap, and none of a project that has not turned review on', async () => {
      const store = await withModel();
      await publishTestModel(store, 'other', fx.trained, { version: 'v1' });
      await enable(store, { below: 1 });
      const photo = evalPhotos()[0]!.bytes;
      const { app, reviews } = testApp(fx, store, { reviewMaxBytes: photo.length - 1 });
      await predict(app, photo);
      await predict(app, evalPhotos()[1]!.bytes, 'other');
      await reviews.settle();
      expect(await keysUnder(store, 'review/')).toEqual([]);
      expect(reviews.stats()).toMatchObject({ written: 0, dropped: 1 });
    });

    it('still answers 200 when the store refuses review writes, and logs why', async () => {
      const inner = await withModel();
      await enable(inner, { below: 1 });
      const failing: ObjectStore = {
        ...inner,
        description: inner.description,
        get: (k) => inner.get(k),
        getIfChanged: (k, e) => inner.getIfChanged(k, e),
        head: (k) => inner.head(k),
        list: (p, o) => inner.list(p, o),
        putTags: (k, t) => inner.putTags(k, t),
        getTags: (k) => inner.getTags(k),
        delete: (k) => inner.delete(k),
        put: async (k, body, o) => {
          if (k.startsWith('review/')) throw new Error('AccessDenied (simulated)');
          return inner.put(k, body, o);
        },
      };
      const lines: string[] = [];
      const { app, reviews } = createEdgeApp({
        store: failing,
        backbone: async () => fx.backbone,
        config: { requireKeys: false },
        logger: createJsonLogger({ level: 'warn', write: (l) => lines.push(l) }),
      });
      for (const p of evalPhotos().slice(0, 3)) await predict(app, p.bytes);
      await reviews.settle();
      expect(reviews.stats()).toMatchObject({ written: 0, failed: 3 });
      expect(
        lines.filter((l) => l.includes('review item not kept') && l.includes('AccessDenied')),
      ).toHaveLength(3);
      expect(await keysUnder(inner, 'review/')).toEqual([]);
    });

    it('starts keeping photos once an instance re-reads the settings, and stops once disabled', async () => {
      const store = await withModel();
      const clock = manualClock();
      const { app, reviews } = testApp(fx, store, { clock: clock.now, settingsTtlSeconds: 300 });
      const photos = evalPhotos();
      await predict(app, photos[0]!.bytes);
      await enable(store, { below: 1 });
      clock.advance(31_000);
      await predict(app, photos[1]!.bytes);
      await reviews.settle();
      expect((await listReviewItems(store, P)).total).toBe(0);
      clock.advance(300_000);
      await predict(app, photos[2]!.bytes);
      await reviews.settle();
      expect((await listReviewItems(store, P)).items.map((i) => i.id)).toEqual([sha256(photos[2]!.bytes)]);
      await updateProjectSettings(store, P, (s) => ({ review: { ...s.review, enabled: false } }));
      clock.advance(301_000);
      await predict(app, photos[3]!.bytes);
      await reviews.settle();
      expect((await listReviewItems(store, P)).total).toBe(1);
    });

    it('discards an item: record and image gone, and an unknown id is refused', async () => {
      const store = await withModel();
      await enable(store, { below: 1 });
      const { app, reviews } = testApp(fx, store);
      const photo = evalPhotos()[0]!.bytes;
      await predict(app, photo);
      await reviews.settle();
      const id = sha256(photo);
      expect(await discardReviewItem(store, { project: P, id: id.slice(0, 8) })).toEqual({ id });
      expect(await keysUnder(store, 'review/')).toEqual([]);
      await expect(discardReviewItem(store, { project: P, id })).rejects.toThrow(ReviewItemNotFoundError);
    });

    it('labels an item into exactly one upload that the next training counts; labelling again is a no-op', async () => {
      const store = await makeStore();
      const train = clothingMini('train');
      for (const label of ['hat', 'shoes']) {
        for (const p of train.filter((t) => t.label === label).slice(0, 8)) {
          await store.put(layout.upload(P, label, p.path.split('/').pop()!), p.bytes);
        }
      }
      const pipeline = trainingPipeline(store);
      await pipeline.extractAll();
      const v1 = await pipeline.train();
      expect(v1.evaluation.examples).toBe(16);

      await enable(store, { below: 1 });
      const { app, reviews } = testApp(fx, store);
      const hat = evalPhotos().find((p) => p.label === 'hat')!.bytes;
      expect((await predict(app, hat)).model.version).toBe(v1.version);
      await reviews.settle();
      const [item] = (await listReviewItems(store, P)).items;
      expect(item?.id).toBe(sha256(hat));

      const uploadsBefore = await keysUnder(store, layout.projectUploads(P));
      const labelled = await labelReviewItem(store, { project: P, id: item!.id, label: 'hat' });
      expect(labelled).toMatchObject({ created: true, upload: `uploads/${P}/hat/review-${item!.id}.jpg` });
      const uploadsAfter = await keysUnder(store, layout.projectUploads(P));
      expect(uploadsAfter.filter((k) => !uploadsBefore.includes(k))).toEqual([labelled.upload]);
      expect((await store.get(labelled.upload))?.body).toEqual(hat);
      expect((await listReviewItems(store, P)).total).toBe(0);
      expect(await store.head(layout.reviewImage(P, item!.id))).toBeUndefined();

      const again = await labelReviewItem(store, { project: P, id: item!.id, label: 'hat' });
      expect(again).toMatchObject({ created: false, upload: labelled.upload });
      await expect(labelReviewItem(store, { project: P, id: item!.id, label: 'shoes' })).rejects.toThrow(
        ReviewAlreadyLabelledError,
      );
      expect(await keysUnder(store, layout.projectUploads(P))).toEqual(uploadsAfter);

      await pipeline.extractAll();
      const v2 = await pipeline.train();
      expect(v2.version).not.toBe(v1.version);
      expect(v2.evaluation.examples).toBe(17);
      expect(v2.evaluation.perLabelCounts).toEqual({ hat: 9, shoes: 8 });
    });
  });
}

/** The extractor, dataset index and trainer over `store`, as the local stack wires them. */
function trainingPipeline(store: ObjectStore) {
  const index = createDatasetIndex(store);
  const retrain = createRetrainRequester(store, { notify: async () => {} });
  const extractor = createUploadExtractor({
    store,
    backbone: fx.backbone,
    index,
    requestRetrain: (p) => retrain.request(p),
  });
  const trainer = createProjectTrainer({
    store,
    index,
    backbone: trainingBackbone(fx.backbone),
    quietSeconds: 0,
    trainOptions: { headTypes: ['softmax'], softmaxL2: [1e-2] },
  });
  return {
    /** Sends a created event for every upload the index does not know yet, as the local reconciler does. */
    async extractAll() {
      const known = await index.entries(P);
      const events: UploadEvent[] = [];
      const at = new Date().toISOString();
      for await (const o of store.list(layout.projectUploads(P))) {
        if (known.has(o.key)) continue;
        events.push({ type: 'created', key: o.key, sequencer: localSequencer(), eventTime: at });
      }
      for (const e of events) await extractor.handle(e);
      await retrain.flush();
    },
    async train() {
      const outcome = await trainer.run(P);
      expect(outcome.status).toBe('promoted');
      const version = (outcome as { version: string }).version;
      const o = await store.get(layout.versionFile(P, version, 'evaluation.json'));
      const evaluation = JSON.parse(new TextDecoder().decode(o!.body)) as {
        examples: number;
        perLabelCounts: Record<string, number>;
      };
      return { version, evaluation };
    },
  };
}

suite('file-system store', async () =>
  createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-review-')) }));

const endpoint = inject('motoEndpoint');
if (endpoint) {
  suite('S3 via moto_server', async () => (await motoBucket(endpoint, 'hs-review')).store);
} else {
  console.warn(`[review queue] S3 variant skipped: ${inject('motoSkipReason')}`);
}
