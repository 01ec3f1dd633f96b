import { mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, inject, it } from 'vitest';
import { createDatasetIndex } from '../../shared/dataset/dataset-index.js';
import type { ObjectStore } from '../../shared/store/index.js';
import { motoBucket } from '../../test/support/moto.js';
import { resolveTarget } from './cli-context.js';
import { startDashboard } from './dashboard-command.js';

/** One indexed photo of `shop`, as extraction would record it. */
async function indexOnePhoto(store: ObjectStore) {
  await createDatasetIndex(store).apply('shop', {
    key: 'uploads/shop/hat/a.jpg',
    state: 'example',
    label: 'hat',
    sha256: 'a'.repeat(64),
    bytes: 10,
    sequencer: '0001',
    at: '2026-01-01T00:00:00.000Z',
  });
}

async function projectsPage(url: string): Promise<{ status: number; html: string }> {
  const res = await fetch(url);
  return { status: res.status, html: await res.text() };
}

// The user's own credentials, found by the SDK's default chain as for every other command.
process.env.AWS_ACCESS_KEY_ID ??= 'test';
process.env.AWS_SECRET_ACCESS_KEY ??= 'test';

describe('headstart dashboard', () => {
  it('serves the pages on 127.0.0.1 over a home, and nowhere else', async () => {
    const home = mkdtempSync(join(tmpdir(), 'headstart-dash-'));
    mkdirSync(join(home, 'store'));
    const target = resolveTarget({ home }, {}, { requireStore: true });
    await indexOnePhoto(target.store);
    const d = await startDashboard(target, { port: 0 });
    try {
      expect(d.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/ui\/$/);
      const page = await projectsPage(d.url);
      expect(page.status).toBe(200);
      expect(page.html).toContain('href="/ui/p/shop/data"');
      // Only the dashboard is served: the prediction API is not on this port.
      expect((await fetch(d.url.replace('/ui/', '/v1/projects/shop/model'))).status).toBe(404);
    } finally {
      await d.close();
    }
  });

  const motoEndpoint = inject('motoEndpoint');
  it.skipIf(!motoEndpoint)(
    'opens a deployed bucket from --bucket with the caller’s credentials',
    async () => {
      const { bucket, store } = await motoBucket(motoEndpoint, 'dash');
      await indexOnePhoto(store);
      const target = resolveTarget(
        { bucket, endpoint: motoEndpoint, region: 'us-east-1' },
        {
          AWS_ACCESS_KEY_ID: 'test',
          AWS_SECRET_ACCESS_KEY: 'test',
        },
      );
      const d = await startDashboard(target, { port: 0 });
      try {
        const page = await projectsPage(d.url);
        expect(page.html).toContain(`s3://${bucket}`);
        expect(page.html).toContain('href="/ui/p/shop/data"');
        const data = await projectsPage(`${d.url}p/shop/data`);
        expect(data.html).toContain('uploads/shop/hat/a.jpg');
      } finally {
        await d.close();
      }
    },
  );
});
