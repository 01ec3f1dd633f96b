// Load behaviour, not speed: nothing here is timed (latency and throughput are in bench/predict-bench.ts).
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { clothingMini } from '../../test/support/fixtures.js';
import { installBackbone, publishTestModel, trainTestHead } from '../../test/support/publish-test-model.js';
import { type Backbone, buildDefaultBackbone, loadBackbone } from '../backbone/index.js';
import { decodeImage } from '../image/index.js';
import { createFsStore, type ObjectStore } from '../store/index.js';
import { initTf, tf } from '../tf/tf-runtime.js';
import { createApp } from './app.js';

const P = 'clothing';
let store: ObjectStore;
let backbone: Backbone;

// The default backbone's exact graph, built at 96 px instead of 224: the same ops and tensors per request at a
// fifth of the cost, so thousands of requests fit in the suite's time budget.
beforeAll(async () => {
  await initTf();
  const fidelityImages = await Promise.all(
    clothingMini('eval')
      .filter((_, i) => i % 5 === 0)
      .map(async (f) => (await decodeImage(f.bytes, { size: 96 })).data),
  );
  const { pkg } = await buildDefaultBackbone({ fidelityImages, inputSize: 96, minCosineMean: 0 });
  backbone = await loadBackbone(pkg);
  store = createFsStore({ root: mkdtempSync(join(tmpdir(), 'headstart-edge-load-')) });
  await installBackbone(store, pkg);
  await publishTestModel(store, P, await trainTestHead(backbone), { version: 'v1' });
});

const photo = () => clothingMini('eval')[3]!.bytes;
const request = (): RequestInit => ({
  method: 'POST',
  body: photo(),
  headers: { 'content-type': 'image/jpeg' },
});

describe('under load', () => {
  // The issue asks for 10,000 sequential requests; bench/predict-bench.ts runs those over HTTP. 2,000 here keep
  // the suite fast while still showing a per-request leak (a single leaked tensor would add 2,000).
  it('serves 2,000 sequential requests without errors, leaked tensors or runaway memory', async () => {
    const app = createApp({ store, backbone: async () => backbone, config: { requireKeys: false } });
    for (let i = 0; i < 100; i++)
      expect((await app.request(`/v1/projects/${P}/predict`, request())).status).toBe(200);
    global.gc?.();
    const tensors = tf.memory().numTensors;
    const bytes = tf.memory().numBytes;
    const rss = process.memoryUsage().rss;
    const statuses = new Map<number, number>();
    for (let i = 0; i < 2000; i++) {
      const res = await app.request(`/v1/projects/${P}/predict`, request());
      await res.arrayBuffer();
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
    }
    expect([...statuses]).toEqual([[200, 2000]]);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(tf.memory().numBytes).toBe(bytes);
    global.gc?.();
    // Loose: the GC may not have given back young garbage, but a leak of one decoded image per request would
    // be 2,000 x 27 KB = 55 MB at this size, and a leaked request body 2,000 x the JPEG.
    expect((process.memoryUsage().rss - rss) / 1024 / 1024).toBeLessThan(150);
    // Not a speed check: 2,000 predictions take ~30 s alone, several times that beside other test files.
  }, 300_000);

  it('answers a burst of 50 concurrent requests, all 200, with tensors back to where they were', async () => {
    const app = createApp({ store, backbone: async () => backbone, config: { requireKeys: false } });
    expect((await app.request(`/v1/projects/${P}/predict`, request())).status).toBe(200);
    const tensors = tf.memory().numTensors;
    const responses = await Promise.all(
      Array.from({ length: 50 }, () => app.request(`/v1/projects/${P}/predict`, request())),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(50).fill(200));
    expect(tf.memory().numTensors).toBe(tensors);
  });

  it('bounds the queue: beyond it requests get 503 overloaded with Retry-After, the rest succeed', async () => {
    const app = createApp({
      store,
      backbone: async () => backbone,
      config: { requireKeys: false, maxConcurrent: 1, maxQueue: 4 },
    });
    expect((await app.request(`/v1/projects/${P}/predict`, request())).status).toBe(200);
    const responses = await Promise.all(
      Array.from({ length: 20 }, () => app.request(`/v1/projects/${P}/predict`, request())),
    );
    const ok = responses.filter((r) => r.status === 200);
    const refused = responses.filter((r) => r.status === 503);
    expect(ok.length + refused.length).toBe(20);
    expect(ok.length).toBeGreaterThanOrEqual(5);
    expect(refused.length).toBeGreaterThan(0);
    expect(refused[0]!.headers.get('retry-after')).toBe('1');
    expect(((await refused[0]!.json()) as { error: { code: string } }).error.code).toBe('overloaded');
  });
});
