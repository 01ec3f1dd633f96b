import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  aPhoto,
  type EdgeFixture,
  edgeFixture,
  evalPhotos,
  instrument,
  manualClock,
  type TestApp,
  testApp,
} from '../../test/support/edge-test-support.js';
import { fixturesDir } from '../../test/support/fixtures.js';
import { fineTunedTestTop, publishFineTunedModel } from '../../test/support/publish-finetuned-model.js';
import { publishTestModel } from '../../test/support/publish-test-model.js';
import { createKey, revokeKey } from '../auth/index.js';
import type { Backbone } from '../backbone/index.js';
import { decodeImage } from '../image/index.js';
import type { ObjectStore } from '../store/index.js';
import { MAX_BATCH_IMAGES } from './api-schemas.js';
import { createApp } from './app.js';

const PROJECT = 'clothing';
let fx: EdgeFixture;
let store: ObjectStore;
let version: string;

const malformed = (name: string) => new Uint8Array(readFileSync(join(fixturesDir, 'malformed', name)));

beforeAll(async () => {
  fx = await edgeFixture();
  store = await fx.newStore();
  ({ version } = await publishTestModel(store, PROJECT, fx.trained, { version: 'v1' }));
});

interface PredictBody {
  project: string;
  model: { version: string; backbone: string };
  predictions: { label: string; score: number }[];
  mirrored: boolean;
  timingsMs: { decode: number; backbone: number; head: number; total: number };
}

interface ErrorBody {
  error: { code: string; message: string };
}

const jpeg = (body: Uint8Array, headers: Record<string, string> = {}): RequestInit => ({
  method: 'POST',
  body,
  headers: { 'content-type': 'image/jpeg', ...headers },
});

/** Asserts the exact error shape: nothing but code and message, and no stack trace in the message. */
async function expectError(res: Response, status: number, code: string): Promise<string> {
  const text = await res.text();
  expect(res.status, text).toBe(status);
  const body = JSON.parse(text) as ErrorBody;
  expect(Object.keys(body)).toEqual(['error']);
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message']);
  expect(body.error.code).toBe(code);
  expect(body.error.message).not.toMatch(/\n\s+at /);
  expect(res.headers.get('content-type')).toMatch(/application\/json/);
  return body.error.message;
}

describe('POST /v1/projects/{project}/predict', () => {
  it('classifies a raw JPEG: top 3 by default, sorted, with the model and timings', async () => {
    const { app } = testApp(fx, store);
    const res = await app.request(`/v1/projects/${PROJECT}/predict`, jpeg(aPhoto()));
    expect(res.status).toBe(200);
    const body = (await res.json()) as PredictBody;
    expect(body.project).toBe(PROJECT);
    // A version published without an outlier detector: no threshold.
    expect(body.model).toEqual({
      version,
      backbone: fx.pkg.manifest.id,
      flip: false,
      flipBelow: null,
      outlierThreshold: null,
    });
    expect(body.mirrored).toBe(false);
    expect(body.predictions).toHaveLength(3);
    const scores = body.predictions.map((p) => p.score);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
    expect(new Set(body.predictions.map((p) => p.label)).size).toBe(3);
    for (const key of ['decode', 'backbone', 'head', 'total'] as const) {
      expect(body.timingsMs[key]).toBeGreaterThanOrEqual(0);
    }
    expect(body.timingsMs.total).toBeGreaterThanOrEqual(body.timingsMs.backbone);
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('gives scores that sum to 1 over all labels', async () => {
    const { app } = testApp(fx, store);
    for (const photo of evalPhotos().slice(0, 4)) {
      const res = await app.request(`/v1/projects/${PROJECT}/predict?topK=100`, jpeg(photo.bytes));
      const { predictions } = (await res.json()) as PredictBody;
      expect(predictions.map((p) => p.label).sort()).toEqual(['hat', 'pants', 'shoes', 't-shirt']);
      expect(predictions.reduce((s, p) => s + p.score, 0)).toBeCloseTo(1, 5);
    }
  });

  it('honours topK and minScore', async () => {
    const { app } = testApp(fx, store);
    const all = (await (
      await app.request(`/v1/projects/${PROJECT}/predict?topK=4`, jpeg(aPhoto()))
    ).json()) as PredictBody;
    const one = (await (
      await app.request(`/v1/projects/${PROJECT}/predict?topK=1`, jpeg(aPhoto()))
    ).json()) as PredictBody;
    expect(one.predictions).toEqual(all.predictions.slice(0, 1));
    const threshold = (all.predictions[1]!.score + all.predictions[2]!.score) / 2;
    const above = (await (
      await app.request(`/v1/projects/${PROJECT}/predict?topK=4&minScore=${threshold}`, jpeg(aPhoto()))
    ).json()) as PredictBody;
    expect(above.predictions).toEqual(all.predictions.slice(0, 2));
  });

  it('accepts multipart with a field "image" and JSON base64, scoring exactly as the raw body', async () => {
    const { app } = testApp(fx, store);
    const photo = aPhoto();
    const raw = (await (
      await app.request(`/v1/projects/${PROJECT}/predict`, jpeg(photo))
    ).json()) as PredictBody;
    const form = new FormData();
    form.append('image', new Blob([photo], { type: 'image/jpeg' }), 'photo.jpg');
    const multipart = await app.request(`/v1/projects/${PROJECT}/predict`, { method: 'POST', body: form });
    expect(multipart.status).toBe(200);
    expect(((await multipart.json()) as PredictBody).predictions).toEqual(raw.predictions);
    const json = await app.request(`/v1/projects/${PROJECT}/predict`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ image: Buffer.from(photo).toString('base64') }),
    });
    expect(json.status).toBe(200);
    expect(((await json.json()) as PredictBody).predictions).toEqual(raw.predictions);
  });

  it('labels most held-out fixture photos correctly', async () => {
    const { app } = testApp(fx, store);
    const photos = evalPhotos();
    let correct = 0;
    for (const p of photos) {
      const res = await app.request(`/v1/projects/${PROJECT}/predict`, jpeg(p.bytes));
      const { predictions } = (await res.json()) as PredictBody;
      if (predictions[0]?.label === p.label) correct++;
    }
    expect(correct / photos.length).toBeGreaterThanOrEqual(0.75);
  });
});

/** The fixture backbone, recording the batch size of every extract call. */
function recordingBackbone(inner: Backbone, calls: number[]): Backbone {
  return {
    manifest: inner.manifest,
    inputSize: inner.inputSize,
    featureDim: inner.featureDim,
    extract: (images) => {
      calls.push(images.length);
      return inner.extract(images);
    },
    extractTensor: (batch) => inner.extractTensor(batch),
    dispose: () => {},
  };
}

describe('POST /v1/projects/{project}/predict/batch', () => {
  interface BatchBody {
    model: { version: string };
    results: (
      | { index: number; predictions: PredictBody['predictions'] }
      | { index: number; error: ErrorBody['error'] }
    )[];
    timingsMs: PredictBody['timingsMs'];
  }

  it('classifies repeated multipart fields in order, in one backbone batch, as single requests would', async () => {
    const calls: number[] = [];
    const { app } = testApp(fx, store, {}, recordingBackbone(fx.backbone, calls));
    const photos = evalPhotos().filter((_, i) => i % 4 === 0);
    const form = new FormData();
    for (const p of photos) form.append('image', new Blob([p.bytes], { type: 'image/jpeg' }), 'p.jpg');
    const res = await app.request(`/v1/projects/${PROJECT}/predict/batch?topK=2`, {
      method: 'POST',
      body: form,
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as BatchBody;
    expect(calls).toEqual([photos.length]);
    expect(body.results.map((r) => r.index)).toEqual(photos.map((_, i) => i));
    const single = (await (
      await app.request(`/v1/projects/${PROJECT}/predict?topK=2`, jpeg(photos[2]!.bytes))
    ).json()) as PredictBody;
    const third = body.results[2]!;
    expect('predictions' in third && third.predictions.map((p) => p.label)).toEqual(
      single.predictions.map((p) => p.label),
    );
    if ('predictions' in third) {
      third.predictions.forEach((p, i) => {
        expect(p.score).toBeCloseTo(single.predictions[i]!.score, 4);
      });
    }
  });

  it('takes JSON {"images": [...]} and reports an undecodable image without failing the others', async () => {
    const { app } = testApp(fx, store);
    const images = [aPhoto(), malformed('truncated.jpg'), evalPhotos()[7]!.bytes].map((b) =>
      Buffer.from(b).toString('base64'),
    );
    const res = await app.request(`/v1/projects/${PROJECT}/predict/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ images }),
    });
    expect(res.status).toBe(200);
    const body = (await res.json()) as BatchBody;
    expect(body.results).toHaveLength(3);
    expect('predictions' in body.results[0]!).toBe(true);
    expect(body.results[1]).toMatchObject({ index: 1, error: { code: 'corrupt_image' } });
    expect('predictions' in body.results[2]!).toBe(true);
  });

  it('sends a form with two images on /predict to /predict/batch, and refuses a text field among batch parts', async () => {
    const { app } = testApp(fx, store);
    const two = new FormData();
    for (const name of ['a.jpg', 'b.jpg']) two.append('image', new Blob([aPhoto()]), name);
    const single = await app.request(`/v1/projects/${PROJECT}/predict`, { method: 'POST', body: two });
    const message = await expectError(single, 400, 'invalid_form');
    expect(message).toMatch(/\/predict takes one image and this form has 2 "image" parts/);
    expect(message).toMatch(/\/predict\/batch/);
    const mixed = new FormData();
    mixed.append('image', new Blob([aPhoto()]), 'a.jpg');
    mixed.append('image', 'just text');
    const batch = await app.request(`/v1/projects/${PROJECT}/predict/batch`, { method: 'POST', body: mixed });
    expect(await expectError(batch, 400, 'invalid_form')).toMatch(/must be a file part, not a text field/);
  });

  it(`refuses more than ${MAX_BATCH_IMAGES} images with 400`, async () => {
    const { app } = testApp(fx, store);
    const images = Array.from({ length: MAX_BATCH_IMAGES + 1 }, () => 'AAAA');
    const res = await app.request(`/v1/projects/${PROJECT}/predict/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ images }),
    });
    expect(await expectError(res, 400, 'invalid_json')).toMatch(/16/);
  });
});

describe('error responses', () => {
  const predict = (
    app: { request: (p: string, i?: RequestInit) => Response | Promise<Response> },
    init: RequestInit,
    project = PROJECT,
    query = '',
  ) => app.request(`/v1/projects/${project}/predict${query}`, init);

  it('400 for a malformed project name, query, or body', async () => {
    const { app } = testApp(fx, store);
    await expectError(await predict(app, jpeg(aPhoto()), 'Not_Valid'), 400, 'invalid_param');
    await expectError(await predict(app, jpeg(aPhoto()), PROJECT, '?topK=0'), 400, 'invalid_query');
    await expectError(await predict(app, jpeg(aPhoto()), PROJECT, '?topK=many'), 400, 'invalid_query');
    await expectError(await predict(app, jpeg(aPhoto()), PROJECT, '?minScore=2'), 400, 'invalid_query');
    await expectError(await predict(app, jpeg(new Uint8Array(0))), 400, 'missing_image');
    await expectError(await predict(app, { method: 'POST' }), 400, 'missing_image');
    const json = (body: string) => ({
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body,
    });
    await expectError(await predict(app, json('{"image": ')), 400, 'malformed_body');
    await expectError(await predict(app, json('{"picture": "AAAA"}')), 400, 'invalid_json');
    await expectError(await predict(app, json('{"image": "not base64!"}')), 400, 'invalid_json');
    const form = new FormData();
    form.append('photo', new Blob([aPhoto()]), 'p.jpg');
    expect(
      await expectError(await predict(app, { method: 'POST', body: form }), 400, 'invalid_form'),
    ).toMatch(/^image: no file part "image" in the form/);
    const text = new FormData();
    text.append('image', 'just text');
    await expectError(await predict(app, { method: 'POST', body: text }), 400, 'invalid_form');
  });

  it('401 without a key or with a non-Bearer Authorization, 403 with a wrong key', async () => {
    const { app } = testApp(fx, store, { requireKeys: true });
    const missing = await predict(app, jpeg(aPhoto()));
    expect(await expectError(missing, 401, 'missing_api_key')).toMatch(/keys create/);
    expect(missing.headers.get('www-authenticate')).toBe('Bearer');
    await expectError(
      await predict(app, jpeg(aPhoto(), { authorization: 'Basic dXNlcjpwYXNz' })),
      401,
      'invalid_authorization',
    );
    await expectError(
      await predict(app, jpeg(aPhoto(), { authorization: 'Bearer nonsense' })),
      403,
      'invalid_api_key',
    );
    const forged = `hs_0123456789abcdef_${'A'.repeat(43)}`;
    await expectError(
      await predict(app, jpeg(aPhoto(), { authorization: `Bearer ${forged}` })),
      403,
      'invalid_api_key',
    );
  });

  it('404 for an unknown route, an unknown project (saying how to upload), and a project without a model', async () => {
    const { app } = testApp(fx, store);
    await expectError(await app.request('/v1/nothing'), 404, 'not_found');
    const unknown = await expectError(
      await predict(app, jpeg(aPhoto()), 'no-such-project'),
      404,
      'unknown_project',
    );
    expect(unknown).toContain('uploads/no-such-project/<label>/<file>');
    expect(unknown).toContain('npx headstart upload');
    await store.put('uploads/fresh/hat/a.jpg', aPhoto());
    const noModel = await expectError(await predict(app, jpeg(aPhoto()), 'fresh'), 404, 'no_model');
    expect(noModel).toContain('uploads/fresh/<label>/');
    await expectError(await app.request('/v1/projects/fresh/model'), 404, 'no_model');
  });

  it('413 from Content-Length before reading, and while reading a body that has none', async () => {
    const { app } = testApp(fx, store, { maxBodyBytes: 4096 });
    const declared = await predict(app, jpeg(aPhoto(), { 'content-length': String(10 * 1024 * 1024) }));
    expect(await expectError(declared, 413, 'payload_too_large')).toMatch(/4096/);
    let pulled = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        pulled++;
        if (pulled > 1000) controller.close();
        else controller.enqueue(new Uint8Array(1024));
      },
    });
    const chunked = await predict(app, {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg' },
      body: stream,
      duplex: 'half',
    } as RequestInit);
    await expectError(chunked, 413, 'payload_too_large');
    expect(pulled).toBeLessThan(20);
  });

  it('415 for a Content-Type the route does not take', async () => {
    const { app } = testApp(fx, store);
    const xml = await predict(app, {
      method: 'POST',
      body: '<hello/>',
      headers: { 'content-type': 'application/xml' },
    });
    expect(await expectError(xml, 415, 'unsupported_media_type')).toMatch(/image\/jpeg/);
    // Plain text is what a text project takes: an image project says so.
    const text = await predict(app, {
      method: 'POST',
      body: 'hello',
      headers: { 'content-type': 'text/plain' },
    });
    expect(await expectError(text, 415, 'modality_mismatch')).toMatch(/image project.*image\/jpeg/);
    const batchRaw = await app.request(`/v1/projects/${PROJECT}/predict/batch`, jpeg(aPhoto()));
    await expectError(batchRaw, 415, 'unsupported_media_type');
  });

  it.each([
    ['truncated.jpg', 'corrupt_image'],
    ['not-an-image.jpg', 'unsupported_format'],
    ['image.gif', 'unsupported_format'],
    ['huge-dims.png', 'too_many_pixels'],
    ['zero-width.png', 'zero_dimension'],
  ])('422 for %s (%s)', async (file, code) => {
    const { app } = testApp(fx, store);
    await expectError(await predict(app, jpeg(malformed(file))), 422, code);
  });

  it('422 when the image has more pixels than the configured limit', async () => {
    const { app } = testApp(fx, store, { maxPixels: 100 * 100 });
    expect(await expectError(await predict(app, jpeg(aPhoto())), 422, 'too_many_pixels')).toMatch(/10000/);
  });

  it('503 when the backbone cannot be loaded, saying why', async () => {
    const broken = createApp({
      store,
      backbone: async () => {
        throw new Error('weights missing');
      },
      config: { requireKeys: false },
    });
    expect(await expectError(await predict(broken, jpeg(aPhoto())), 503, 'backbone_unavailable')).toMatch(
      /weights missing/,
    );
  });

  it('503 when the store is unreachable and nothing is loaded yet', async () => {
    const flaky = instrument(store);
    flaky.down = true;
    const { app } = testApp(fx, flaky.store);
    const res = await predict(app, jpeg(aPhoto()));
    await expectError(res, 503, 'store_unavailable');
    expect(res.headers.get('retry-after')).toMatch(/^\d+$/);
  });

  it('500 for an unexpected failure, with no internals in the body', async () => {
    const failing: Backbone = {
      ...fx.backbone,
      manifest: fx.backbone.manifest,
      inputSize: fx.backbone.inputSize,
      featureDim: fx.backbone.featureDim,
      extract: async () => {
        throw new TypeError('secret internal detail');
      },
      extractTensor: (b) => fx.backbone.extractTensor(b),
      dispose: () => {},
    };
    const { app } = testApp(fx, store, {}, failing);
    const message = await expectError(await predict(app, jpeg(aPhoto())), 500, 'internal_error');
    expect(message).not.toContain('secret');
  });
});

describe('API keys', () => {
  it('accepts a key of the project, refuses it on another project, and stops accepting it after revocation', async () => {
    const clock = manualClock();
    await publishTestModel(store, 'other', fx.trained, { version: 'v1' });
    const { key, info } = await createKey(store, PROJECT, { name: 'test' });
    const { app } = testApp(fx, store, { requireKeys: true, clock: clock.now, pointerTtlSeconds: 30 });
    const auth = { authorization: `Bearer ${key}` };
    expect((await app.request(`/v1/projects/${PROJECT}/predict`, jpeg(aPhoto(), auth))).status).toBe(200);
    expect((await app.request(`/v1/projects/${PROJECT}/model`, { headers: auth })).status).toBe(200);
    await expectError(
      await app.request('/v1/projects/other/predict', jpeg(aPhoto(), auth)),
      403,
      'invalid_api_key',
    );
    await expectError(
      await app.request('/v1/projects/other/model', { headers: auth }),
      403,
      'invalid_api_key',
    );
    const tampered = `${key.slice(0, -1)}${key.endsWith('A') ? 'B' : 'A'}`;
    await expectError(
      await app.request(
        `/v1/projects/${PROJECT}/predict`,
        jpeg(aPhoto(), { authorization: `Bearer ${tampered}` }),
      ),
      403,
      'invalid_api_key',
    );
    await revokeKey(store, PROJECT, info.keyId);
    clock.advance(31_000);
    await expectError(
      await app.request(`/v1/projects/${PROJECT}/predict`, jpeg(aPhoto(), auth)),
      403,
      'invalid_api_key',
    );
  });

  it('leaves health, readiness and the OpenAPI document open', async () => {
    const { app } = testApp(fx, store, { requireKeys: true });
    expect((await app.request('/healthz')).status).toBe(200);
    expect((await app.request('/readyz')).status).toBe(200);
    expect((await app.request('/openapi.json')).status).toBe(200);
  });
});

describe('model info, health and readiness', () => {
  it('GET /model gives labels, metrics, backbone and creation time of the current version', async () => {
    const { app } = testApp(fx, store);
    const res = await app.request(`/v1/projects/${PROJECT}/model`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as Record<string, unknown>;
    expect(body).toMatchObject({
      project: PROJECT,
      version,
      labels: fx.trained.result.head.labels,
      backbone: {
        id: fx.pkg.manifest.id,
        inputSize: fx.backbone.inputSize,
        featureDim: fx.backbone.featureDim,
      },
      metrics: { accuracy: fx.trained.result.metrics.accuracy },
    });
    expect(Date.parse(body.createdAt as string)).not.toBeNaN();
  });

  it('/healthz answers without touching the store; /readyz needs the backbone and the store', async () => {
    const flaky = instrument(store);
    const { app } = testApp(fx, flaky.store);
    expect(await (await app.request('/readyz')).json()).toEqual({
      status: 'ready',
      backbone: fx.pkg.manifest.id,
      store: 'reachable',
    });
    flaky.down = true;
    flaky.reset();
    const health = await app.request('/healthz');
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(flaky.calls.get + flaky.calls.head + flaky.calls.getIfChanged).toBe(0);
    expect(await expectError(await app.request('/readyz'), 503, 'not_ready')).toMatch(/store unreachable/);
  });
});

describe('GET /openapi.json', () => {
  it('documents every route with the schemas that validate it', async () => {
    const { app } = testApp(fx, store);
    const doc = (await (await app.request('/openapi.json')).json()) as {
      openapi: string;
      paths: Record<
        string,
        Record<
          string,
          { parameters?: { name: string; in: string }[]; requestBody?: { content: Record<string, unknown> } }
        >
      >;
      components: { securitySchemes: Record<string, unknown> };
    };
    expect(doc.openapi).toMatch(/^3\./);
    expect(Object.keys(doc.paths).sort()).toEqual([
      '/healthz',
      '/readyz',
      '/v1/projects/{project}/model',
      '/v1/projects/{project}/predict',
      '/v1/projects/{project}/predict/batch',
    ]);
    const predict = doc.paths['/v1/projects/{project}/predict']!.post!;
    expect(predict.parameters!.map((p) => `${p.in}:${p.name}`).sort()).toEqual([
      'path:project',
      'query:minScore',
      'query:rejectUnknown',
      'query:topK',
    ]);
    expect(Object.keys(predict.requestBody!.content)).toEqual(
      expect.arrayContaining(['image/jpeg', 'multipart/form-data', 'application/json']),
    );
    expect(Object.keys(doc.paths['/v1/projects/{project}/predict']!.post!)).toContain('responses');
    expect(doc.components.securitySchemes).toHaveProperty('Bearer');
  });
});

describe('flip-averaged prediction (a version with serving.flip)', () => {
  const FLIP = 'clothing-flip';
  let pair: { photo: Uint8Array; mirrored: Uint8Array };

  beforeAll(async () => {
    await publishTestModel(store, FLIP, fx.trained, {
      version: 'f1',
      manifest: (m) => {
        m.serving = { flip: true };
      },
    });
    // Lossless and already at the input size, so decoding the mirrored file gives exactly the mirrored pixels.
    const size = fx.backbone.inputSize;
    const { data } = await decodeImage(evalPhotos()[5]!.bytes, { size });
    const raw = { raw: { width: size, height: size, channels: 3 as const } };
    pair = {
      photo: new Uint8Array(await sharp(data, raw).png().toBuffer()),
      mirrored: new Uint8Array(await sharp(data, raw).flop().png().toBuffer()),
    };
  });

  const png = (body: Uint8Array): RequestInit => ({
    method: 'POST',
    body,
    headers: { 'content-type': 'image/png' },
  });
  const scores = async (app: TestApp['app'], project: string, body: Uint8Array) => {
    const res = await app.request(`/v1/projects/${project}/predict?topK=10`, png(body));
    expect(res.status).toBe(200);
    return (await res.json()) as PredictBody & { model: { flip: boolean } };
  };

  it('gives a mirrored photo the same scores as the photo, running both views as one batch of 2', async () => {
    const calls: number[] = [];
    const { app } = testApp(fx, store, {}, recordingBackbone(fx.backbone, calls));
    const a = await scores(app, FLIP, pair.photo);
    const b = await scores(app, FLIP, pair.mirrored);
    expect(calls).toEqual([2, 2]);
    expect(a.model.flip).toBe(true);
    expect(b.predictions.map((p) => p.label)).toEqual(a.predictions.map((p) => p.label));
    a.predictions.forEach((p, i) => {
      expect(b.predictions[i]!.score).toBeCloseTo(p.score, 5);
    });
    // The same head without averaging tells the two apart: the equality above is the averaging's doing.
    const plainA = await scores(app, PROJECT, pair.photo);
    const plainB = await scores(app, PROJECT, pair.mirrored);
    expect(plainA.model.flip).toBe(false);
    const gap = Math.max(
      ...plainA.predictions.map((p) =>
        Math.abs(p.score - plainB.predictions.find((q) => q.label === p.label)!.score),
      ),
    );
    expect(gap).toBeGreaterThan(1e-3);
  });

  it('averages each photo of a batch with its own mirror, in order', async () => {
    const { app } = testApp(fx, store);
    const photos = evalPhotos().filter((_, i) => i % 5 === 0);
    const form = new FormData();
    for (const p of photos) form.append('image', new Blob([p.bytes], { type: 'image/jpeg' }), 'p.jpg');
    const res = await app.request(`/v1/projects/${FLIP}/predict/batch?topK=10`, {
      method: 'POST',
      body: form,
    });
    const batch = (await res.json()) as { results: { predictions: PredictBody['predictions'] }[] };
    for (const [i, p] of photos.entries()) {
      const one = (await (
        await app.request(`/v1/projects/${FLIP}/predict?topK=10`, jpeg(p.bytes))
      ).json()) as PredictBody;
      batch.results[i]!.predictions.forEach((q, j) => {
        expect(q.label).toBe(one.predictions[j]!.label);
        expect(q.score).toBeCloseTo(one.predictions[j]!.score, 4);
      });
    }
  });

  it('mirrors only the photos its single view is unsure of (top score under flipBelow), as a second batch', async () => {
    const photos = evalPhotos()
      .filter((_, i) => i % 3 === 0)
      .slice(0, 6);
    const { app } = testApp(fx, store);
    const predict = async (project: string, bytes: Uint8Array) =>
      (await (
        await app.request(`/v1/projects/${project}/predict?topK=10`, jpeg(bytes))
      ).json()) as PredictBody & { model: { flip: boolean; flipBelow: number | null } };
    const plain = await Promise.all(photos.map((p) => predict(PROJECT, p.bytes)));
    const averaged = await Promise.all(photos.map((p) => predict(FLIP, p.bytes)));
    const tops = plain.map((b) => b.predictions[0]!.score);
    const sorted = [...tops].sort((a, b) => a - b);
    expect(sorted[3]).toBeGreaterThan(sorted[2]!);
    const below = (sorted[2]! + sorted[3]!) / 2;
    await publishTestModel(store, 'clothing-unsure', fx.trained, {
      version: 'u1',
      manifest: (m) => {
        m.serving = { flip: true, flipBelow: below };
      },
    });
    const calls: number[] = [];
    const { app: gated } = testApp(fx, store, {}, recordingBackbone(fx.backbone, calls));
    const form = new FormData();
    for (const p of photos) form.append('image', new Blob([p.bytes], { type: 'image/jpeg' }), 'p.jpg');
    const res = await gated.request('/v1/projects/clothing-unsure/predict/batch?topK=10', {
      method: 'POST',
      body: form,
    });
    const batch = (await res.json()) as {
      model: { flip: boolean; flipBelow: number | null };
      results: (Pick<PredictBody, 'predictions' | 'mirrored'> & { index: number })[];
    };
    expect(batch.model).toMatchObject({ flip: true, flipBelow: below });
    // Every photo once, then the mirrors of the three under the threshold.
    expect(calls).toEqual([6, 3]);
    for (const [i, r] of batch.results.entries()) {
      expect(r.mirrored).toBe(tops[i]! < below);
      // An unsure photo gets the flip-averaged scores; a sure one keeps its single view's.
      const expected = r.mirrored ? averaged[i]! : plain[i]!;
      r.predictions.forEach((q, j) => {
        expect(q.label).toBe(expected.predictions[j]!.label);
        expect(q.score).toBeCloseTo(expected.predictions[j]!.score, 4);
      });
    }
    expect(averaged.every((b) => b.mirrored && b.model.flipBelow === null)).toBe(true);
  });

  it('leaves no tensors behind across requests, mirroring in the same batch or a second one', async () => {
    // flipBelow 1: every photo is unsure, so each request runs the second batch.
    await publishTestModel(store, 'clothing-always-unsure', fx.trained, {
      version: 'a1',
      manifest: (m) => {
        m.serving = { flip: true, flipBelow: 1 };
      },
    });
    const { app } = testApp(fx, store);
    await scores(app, FLIP, pair.photo);
    expect((await scores(app, 'clothing-always-unsure', pair.photo)).mirrored).toBe(true);
    const before = tf.memory().numTensors;
    for (let i = 0; i < 6; i++) {
      await scores(app, i % 3 ? FLIP : 'clothing-always-unsure', i % 2 ? pair.photo : pair.mirrored);
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('serves a fine-tuned version flip-averaged too, mirroring the photo before its trunk', async () => {
    const ft = await fineTunedTestTop();
    const s = await fx.newStore();
    await publishFineTunedModel(s, 'tuned-flip', ft, {
      version: 't1',
      manifest: (m) => {
        m.serving = { flip: true };
      },
    });
    const calls: number[] = [];
    const { app } = testApp(fx, s, {}, fx.backbone, async () => recordingBackbone(ft.trunk, calls));
    const a = await scores(app, 'tuned-flip', pair.photo);
    const b = await scores(app, 'tuned-flip', pair.mirrored);
    expect(a.model).toMatchObject({ flip: true, backbone: ft.trunk.manifest.id });
    expect(calls).toEqual([2, 2]);
    a.predictions.forEach((p, i) => {
      expect(b.predictions[i]!.label).toBe(p.label);
      expect(b.predictions[i]!.score).toBeCloseTo(p.score, 5);
    });
  });
});
