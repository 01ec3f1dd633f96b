import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { listKeys } from '../auth/index.js';
import { layout } from '../layout/index.js';
import { writeVersion } from '../models/index.js';
import { listProjects } from '../pipeline/project-status.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { createUiApp } from './index.js';

const TOKEN = 'test-token';
const XSS = '<script>alert(1)</script>';

function setUp() {
  const store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-ui-app-')) });
  const app = createUiApp({ store, csrfToken: TOKEN });
  const get = (path: string, headers: Record<string, string> = {}) =>
    app.request(`http://127.0.0.1:8787${path}`, { headers: { host: '127.0.0.1:8787', ...headers } });
  const post = (path: string, form: Record<string, string>, headers: Record<string, string> = {}) =>
    app.request(`http://127.0.0.1:8787${path}`, {
      method: 'POST',
      headers: { host: '127.0.0.1:8787', 'content-type': 'application/x-www-form-urlencoded', ...headers },
      body: new URLSearchParams(form).toString(),
    });
  return { store, get, post };
}

/** A version whose label is markup, with an evaluation that names it in every table. */
async function publishMarkupVersion(store: ObjectStore, project: string) {
  await writeVersion(
    store,
    {
      schemaVersion: 1,
      project,
      version: 'v20260101T000000000Z-000001',
      createdAt: '2026-01-01T00:00:00.000Z',
      labels: [XSS, 'shoes'],
      backbone: { id: 'b', weightsSha256: '0'.repeat(64), inputSize: 160, featureDim: 2 },
      head: { format: 'tfjs-layers', type: 'softmax' },
      metrics: { accuracy: 0.5, macroF1: 0.5, n: 2 },
      datasetSnapshot: '0'.repeat(64),
      training: { config: {} },
    } as never,
    {
      'head.json': '{}',
      'head.bin': new Uint8Array(4),
      'evaluation.json': JSON.stringify({
        validation: {
          n: 2,
          accuracy: 0.5,
          macroF1: 0.5,
          perLabel: [
            { label: XSS, precision: 1, recall: 0.5, f1: 0.67, support: 2 },
            { label: 'shoes', precision: 0, recall: 0, f1: 0, support: 0 },
          ],
          confusion: [
            [1, 1],
            [0, 0],
          ],
        },
        validationExamples: [],
      }),
    },
  );
}

describe('the dashboard app', () => {
  it('refuses a POST without the page token, from another site, or to another host name, writing nothing', async () => {
    const { store, post, get } = setUp();
    const none = await post('/ui/p/shop/keys/create', { name: 'x' });
    expect(none.status).toBe(403);
    expect(await none.text()).toContain('invalid_csrf_token');
    const wrong = await post('/ui/p/shop/keys/create', { name: 'x', _csrf: 'guess' });
    expect(wrong.status).toBe(403);
    const crossSite = await post(
      '/ui/p/shop/keys/create',
      { _csrf: TOKEN },
      { 'sec-fetch-site': 'cross-site' },
    );
    expect(crossSite.status).toBe(403);
    const otherOrigin = await post(
      '/ui/p/shop/keys/create',
      { _csrf: TOKEN },
      { origin: 'http://evil.example' },
    );
    expect(otherOrigin.status).toBe(403);
    expect(await listKeys(store, 'shop')).toEqual([]);
    // A DNS-rebinding page reaches 127.0.0.1 under its own name.
    expect((await get('/ui/', { host: 'evil.example:8787' })).status).toBe(421);
    const ok = await post('/ui/p/shop/keys/create', { _csrf: TOKEN, name: 'phone' });
    expect(ok.status).toBe(201);
    expect(await listKeys(store, 'shop')).toHaveLength(1);
  });

  it('sends every page with a script policy of its own origin, no sniffing and no framing', async () => {
    const { get } = setUp();
    for (const page of [
      '/ui/',
      '/ui/p/shop/data',
      '/ui/p/shop/model',
      '/ui/p/shop/mistakes',
      '/ui/p/shop/nope',
    ]) {
      const res = await get(page);
      expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(res.headers.get('x-frame-options')).toBe('DENY');
    }
  });

  it('serves a thumbnail with the type sniffed from its bytes, whatever the upload was stored as', async () => {
    const { store, get } = setUp();
    const photo = clothingMini('eval')[0]!;
    await store.put('uploads/shop/hat/a.jpg', photo.bytes, { contentType: 'text/html' });
    const res = await get(`/ui/p/shop/thumb?key=${encodeURIComponent('uploads/shop/hat/a.jpg')}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/jpeg');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    const body = new Uint8Array(await res.arrayBuffer());
    expect([...body.subarray(0, 3)]).toEqual([0xff, 0xd8, 0xff]);
    // Cached by the source's ETag: asked again with that thumbnail's ETag, nothing is sent.
    const again = await get(`/ui/p/shop/thumb?key=${encodeURIComponent('uploads/shop/hat/a.jpg')}`, {
      'if-none-match': res.headers.get('etag')!,
    });
    expect(again.status).toBe(304);
    await store.put('uploads/shop/hat/b.jpg', '<html><script>alert(1)</script></html>', {
      contentType: 'image/jpeg',
    });
    const fake = await get(`/ui/p/shop/thumb?key=${encodeURIComponent('uploads/shop/hat/b.jpg')}`);
    expect(fake.status).toBe(422);
    expect(fake.headers.get('content-type')).not.toContain('image');
    const other = await get(`/ui/p/shop/thumb?key=${encodeURIComponent('uploads/other/hat/a.jpg')}`);
    expect(other.status).toBe(400);
  });

  it("serves a text upload's words as plain text, and shows a text review item's text escaped", async () => {
    const { store, get } = setUp();
    const text = `${XSS} where is my card`;
    const key = 'uploads/intents/card_arrival/a.txt';
    await store.put(key, text);
    const res = await get(`/ui/p/intents/text?key=${encodeURIComponent(key)}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(await res.text()).toBe(text);
    await store.put('uploads/intents/card_arrival/p.jpg', clothingMini('eval')[0]!.bytes);
    const photo = await get(
      `/ui/p/intents/text?key=${encodeURIComponent('uploads/intents/card_arrival/p.jpg')}`,
    );
    expect(photo.status).toBe(400);
    const other = await get(`/ui/p/closet/text?key=${encodeURIComponent(key)}`);
    expect(other.status).toBe(400);

    const id = 'ab'.repeat(32);
    await store.put(
      layout.reviewItem('intents', id),
      JSON.stringify({
        id,
        format: 'txt',
        bytes: text.length,
        prediction: { label: 'card_arrival', score: 0.4 },
        unknown: null,
        outlierScore: null,
        reason: 'low_score',
        createdAt: '2026-01-01T00:00:00.000Z',
        version: 'v1',
        text,
      }),
    );
    const review = await (await get('/ui/p/intents/review')).text();
    expect(review).toContain('&lt;script&gt;alert(1)&lt;/script&gt; where is my card');
    expect(review).not.toContain(XSS);
  });

  it('escapes a label of markup wherever a page shows it', async () => {
    const { store, get } = setUp();
    await publishMarkupVersion(store, 'shop');
    for (const page of [
      '/ui/p/shop/mistakes',
      `/ui/p/shop/mistakes?label=${encodeURIComponent(XSS)}&predicted=shoes`,
    ]) {
      const html = await (await get(page)).text();
      expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
      expect(html).not.toContain(XSS);
    }
  });

  it('lists each project once, whether it has photos, versions or both', async () => {
    const { store } = setUp();
    await store.put('datasets/shop/index/aa.json', '{}');
    await store.put('datasets/shop/index/bb.json', '{}');
    await store.put('datasets/a-b/index/aa.json', '{}');
    await publishMarkupVersion(store, 'shop');
    await publishMarkupVersion(store, 'zoo');
    expect(await listProjects(store)).toEqual(['a-b', 'shop', 'zoo']);
  });
});
