import { beforeAll, describe, expect, it } from 'vitest';
import { type EdgeFixture, edgeFixture, testApp } from '../../test/support/edge-test-support.js';
import { nextSequencer } from '../../test/support/s3-events.js';
import { publishTextModel, tinyTextBackbone } from '../../test/support/text-project.js';
import { createDatasetIndex } from '../dataset/dataset-index.js';
import { decodeTextUpload } from '../dataset/text-upload.js';
import { layout } from '../layout/index.js';
import { createUploadExtractor } from '../pipeline/extract-uploads.js';
import { updateProjectSettings } from '../pipeline/project-settings.js';
import { labelReviewItem, listReviewItems } from '../review/index.js';
import type { ObjectStore } from '../store/index.js';
import type { TextBackbone, TextBackbonePackage } from '../text/index.js';

const P = 'intents';
let fx: EdgeFixture;
let tiny: { pkg: TextBackbonePackage; backbone: TextBackbone };

beforeAll(async () => {
  fx = await edgeFixture();
  tiny = await tinyTextBackbone();
});

async function textProject(): Promise<ObjectStore> {
  const store = await fx.newStore();
  await publishTextModel(store, P, { backbone: fx.backbone, text: tiny });
  // Every answer scores under 1: the queue keeps every text it is sent.
  await updateProjectSettings(store, P, () => ({ review: { enabled: true, below: 1, sample: 0 } }));
  return store;
}

const json = (body: unknown): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

describe('the review queue of a text project', () => {
  it('keeps the texts it was unsure of, with the text in the record, once per text', async () => {
    const store = await textProject();
    const { app, reviews } = testApp(fx, store);
    const texts = ['my card never came', 'is there a fee for euros?'];
    expect((await app.request(`/v1/projects/${P}/predict`, json({ texts }))).status).toBe(200);
    expect((await app.request(`/v1/projects/${P}/predict`, json({ text: texts[0] }))).status).toBe(200);
    await reviews.settle();
    const { items, total } = await listReviewItems(store, P);
    expect(total).toBe(2);
    expect(items.map((i) => i.text).sort()).toEqual([...texts].sort());
    for (const item of items) {
      // Text versions have an outlier detector: an unknown text is kept as such, the others for their score.
      expect(item.reason).toBe(item.unknown ? 'unknown' : 'low_score');
      expect(item.outlierScore).not.toBeNull();
      const body = await store.get(layout.reviewImage(P, item.id));
      expect(decodeTextUpload(body!.body)).toBe(item.text);
    }
  });

  it('labels a text item into a .txt upload of that label, which the extractor takes as a text', async () => {
    const store = await textProject();
    const { app, reviews } = testApp(fx, store);
    await app.request(`/v1/projects/${P}/predict`, json({ text: 'where is my new card' }));
    await reviews.settle();
    const [item] = (await listReviewItems(store, P)).items;
    const done = await labelReviewItem(store, { project: P, id: item!.id, label: 'card_arrival' });
    expect(done.upload).toBe(layout.upload(P, 'card_arrival', `review-${item!.id}.txt`));
    const upload = await store.get(done.upload);
    expect(decodeTextUpload(upload!.body)).toBe('where is my new card');
    expect((await listReviewItems(store, P)).total).toBe(0);
    const extractor = createUploadExtractor({
      store,
      backbone: fx.backbone,
      index: createDatasetIndex(store),
      textBackbone: async () => tiny.backbone,
      requestRetrain: async () => {},
    });
    const out = await extractor.handle({
      type: 'created',
      key: done.upload,
      sequencer: nextSequencer(),
      eventTime: new Date().toISOString(),
    });
    expect(out).toMatchObject({ status: 'indexed', label: 'card_arrival' });
  });
});
