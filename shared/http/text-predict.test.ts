import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { aPhoto, type EdgeFixture, edgeFixture } from '../../test/support/edge-test-support.js';
import { publishTestModel } from '../../test/support/publish-test-model.js';
import { publishTextModel, tinyTextBackbone } from '../../test/support/text-project.js';
import type { ObjectStore } from '../store/index.js';
import { readTextBackbone, type TextBackbone } from '../text/index.js';
import { createApp } from './app.js';
import type { EdgeApp } from './edge-env.js';

let fx: EdgeFixture;
let store: ObjectStore;
let text: TextBackbone;
let version: string;
let app: EdgeApp;
const LABELS = ['card_arrival', 'exchange_rate', 'lost_card'];

beforeAll(async () => {
  fx = await edgeFixture();
  store = await fx.newStore();
  const tiny = await tinyTextBackbone();
  text = tiny.backbone;
  version = await publishTextModel(store, 'intents', { backbone: fx.backbone, text: tiny });
  await publishTestModel(store, 'clothing', fx.trained, { version: 'v1' });
  app = createApp({ store, backbone: async () => fx.backbone, config: { requireKeys: false } });
});

const plain = (body: string): RequestInit => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
});
const json = (body: unknown): RequestInit => ({
  method: 'POST',
  body: JSON.stringify(body),
  headers: { 'content-type': 'application/json' },
});

interface Answer {
  predictions: { label: string; score: number }[];
  unknown: boolean | null;
  outlierScore: number | null;
}

async function expectError(res: Response, status: number, code: string): Promise<string> {
  const body = (await res.json()) as { error: { code: string; message: string } };
  expect(res.status, JSON.stringify(body)).toBe(status);
  expect(body.error.code).toBe(code);
  return body.error.message;
}

describe('POST /v1/projects/{project}/predict on a text project', () => {
  it('classifies a text/plain body with the text version, shaped like an image prediction', async () => {
    const res = await app.request('/v1/projects/intents/predict?topK=3', plain('I lost my card'));
    expect(res.status).toBe(200);
    const body = (await res.json()) as Answer & {
      project: string;
      model: Record<string, unknown>;
      mirrored: boolean;
    };
    expect(body.project).toBe('intents');
    expect(body.model).toEqual({
      version,
      backbone: text.manifest.id,
      flip: false,
      flipBelow: null,
      outlierThreshold: expect.any(Number),
    });
    expect(body.mirrored).toBe(false);
    // The fixture's validation split (10 texts) calibrates a detector (text-outlier.test.ts tests what it says).
    expect(typeof body.unknown).toBe('boolean');
    expect(body.outlierScore).toEqual(expect.any(Number));
    expect(body.predictions.map((p) => p.label).sort()).toEqual(LABELS);
    const sum = body.predictions.reduce((s, p) => s + p.score, 0);
    expect(sum).toBeCloseTo(1, 4);
    expect(body.predictions[0]!.score).toBeGreaterThanOrEqual(body.predictions[1]!.score);
  });

  it('answers JSON {"text"} as the same text sent as text/plain', async () => {
    const a = (await (
      await app.request('/v1/projects/intents/predict', plain('what rate for euros?'))
    ).json()) as Answer;
    const b = (await (
      await app.request('/v1/projects/intents/predict', json({ text: 'what rate for euros?' }))
    ).json()) as Answer;
    expect(b.predictions).toEqual(a.predictions);
  });

  it('answers JSON {"texts"} with one result per text in order, each as the text alone is answered', async () => {
    const texts = [
      'Where is my new card?',
      'What is the exchange rate today?',
      'My card was stolen yesterday',
    ];
    const res = await app.request('/v1/projects/intents/predict?topK=1', json({ texts }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: (Answer & { index: number })[] };
    expect(body.results.map((r) => r.index)).toEqual([0, 1, 2]);
    for (const [i, t] of texts.entries()) {
      const alone = (await (
        await app.request('/v1/projects/intents/predict?topK=1', plain(t))
      ).json()) as Answer;
      expect(body.results[i]!.predictions[0]!.label).toBe(alone.predictions[0]!.label);
      expect(body.results[i]!.predictions[0]!.score).toBeCloseTo(alone.predictions[0]!.score, 5);
      expect(body.results[i]!.unknown).toBe(alone.unknown);
      expect(body.results[i]!.outlierScore!).toBeCloseTo(alone.outlierScore!, 4);
    }
  });

  it('answers /predict/batch with JSON {"texts"} as /predict answers the same texts', async () => {
    const texts = ['Where is my new card?', 'My card was stolen yesterday'];
    const batch = await app.request('/v1/projects/intents/predict/batch?topK=2', json({ texts }));
    expect(batch.status).toBe(200);
    const single = await app.request('/v1/projects/intents/predict?topK=2', json({ texts }));
    const a = (await batch.json()) as { results: unknown[]; model: unknown };
    const b = (await single.json()) as { results: unknown[]; model: unknown };
    expect(a.results).toEqual(b.results);
    expect(a.model).toEqual(b.model);
    const many = Array.from({ length: 101 }, (_, i) => `text ${i}`);
    const refused = await app.request('/v1/projects/intents/predict/batch', json({ texts: many }));
    expect(await expectError(refused, 422, 'too_many_texts')).toMatch(/at most 100 texts/);
    const both = await app.request('/v1/projects/intents/predict/batch', json({ texts, images: ['aGk='] }));
    expect(both.status).toBe(400);
  });

  it('refuses more than 100 texts, an empty text and one over 10,000 characters with 422 naming the problem', async () => {
    const many = Array.from({ length: 101 }, (_, i) => `text ${i}`);
    expect(
      await expectError(
        await app.request('/v1/projects/intents/predict', json({ texts: many })),
        422,
        'too_many_texts',
      ),
    ).toMatch(/at most 100 texts.*101/);
    expect(
      await expectError(await app.request('/v1/projects/intents/predict', plain('   ')), 422, 'empty_text'),
    ).toMatch(/empty/);
    expect(
      await expectError(
        await app.request('/v1/projects/intents/predict', json({ text: '' })),
        422,
        'empty_text',
      ),
    ).toMatch(/empty/);
    expect(
      await expectError(
        await app.request('/v1/projects/intents/predict', json({ texts: ['ok', 'a'.repeat(10_001)] })),
        422,
        'text_too_long',
      ),
    ).toMatch(/text 1 is 10001 characters; the limit is 10000/);
  });

  it('refuses an image sent to a text project, and a text sent to an image project, naming the modality', async () => {
    const image = await app.request('/v1/projects/intents/predict', {
      method: 'POST',
      body: aPhoto(),
      headers: { 'content-type': 'image/jpeg' },
    });
    expect(await expectError(image, 415, 'modality_mismatch')).toMatch(
      /'intents' is a text project.*text\/plain/,
    );
    const words = await app.request('/v1/projects/clothing/predict', plain('a red shirt'));
    expect(await expectError(words, 415, 'modality_mismatch')).toMatch(/'clothing' is an image project/);
    const jsonWords = await app.request('/v1/projects/clothing/predict', json({ texts: ['a red shirt'] }));
    expect(await expectError(jsonWords, 415, 'modality_mismatch')).toMatch(/image project/);
  });

  it('refuses a JSON body with both an image and a text', async () => {
    const res = await app.request('/v1/projects/intents/predict', json({ text: 'hi', image: 'aGk=' }));
    expect(await expectError(res, 400, 'ambiguous_body')).toMatch(/exactly one/);
  });

  it('leaves no tensors behind after text predictions', async () => {
    await app.request('/v1/projects/intents/predict', plain('warm up'));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      expect(
        (await app.request('/v1/projects/intents/predict', json({ texts: ['a', 'b card'] }))).status,
      ).toBe(200);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it("loads a text version's text backbone once, and answers 503 while it cannot be loaded", async () => {
    let calls = 0;
    let fail = true;
    const flaky = createApp({
      store,
      backbone: async () => fx.backbone,
      config: { requireKeys: false, pointerTtlSeconds: 0 },
      textBackbone: async (id) => {
        calls++;
        if (fail) throw new Error('the store is down');
        return readTextBackbone(store, id);
      },
    });
    const down = await flaky.request('/v1/projects/intents/predict', plain('I lost my card'));
    expect(await expectError(down, 503, 'backbone_unavailable')).toMatch(/text backbone .*the store is down/);
    fail = false;
    const before = calls;
    for (let i = 0; i < 3; i++) {
      expect((await flaky.request('/v1/projects/intents/predict', plain('I lost my card'))).status).toBe(200);
    }
    expect(calls - before).toBe(1);
  });

  it('documents the text bodies in the OpenAPI document', async () => {
    const doc = (await (await app.request('/openapi.json')).json()) as {
      paths: Record<string, { post: { requestBody: { content: Record<string, unknown> } } }>;
      components: { schemas: Record<string, { properties: Record<string, unknown> }> };
    };
    const content = doc.paths['/v1/projects/{project}/predict']!.post.requestBody.content;
    expect(Object.keys(content)).toContain('text/plain');
    expect(Object.keys(doc.components.schemas.PredictJson!.properties).sort()).toEqual([
      'image',
      'text',
      'texts',
    ]);
  });
});
