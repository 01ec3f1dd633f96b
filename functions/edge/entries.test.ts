import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import type { CloudFrontEdgeEvent } from 'hono/lambda-edge';
import { afterAll, beforeAll, describe, expect, inject, it, vi } from 'vitest';
import { createKey } from '../../shared/auth/index.js';
import { createJsonLogger, localStoreRoot, type StoreConfig, silentLogger } from '../../shared/http/index.js';
import { layout } from '../../shared/layout/index.js';
import { listReviewItems } from '../../shared/review/index.js';
import { createFsStore, createS3Store, type ObjectStore } from '../../shared/store/index.js';
import {
  aPhoto,
  type EdgeFixture,
  edgeFixture,
  instrument,
  manualClock,
} from '../../test/support/edge-test-support.js';
import { installBackbone, publishTestModel } from '../../test/support/publish-test-model.js';
import { createLambdaEdgeHandler } from './lambda-edge.js';
import { type LocalServer, startLocalServer } from './local-server.js';

const PROJECT = 'clothing';
const motoEndpoint = inject('motoEndpoint');
if (!motoEndpoint) console.warn(`[edge entry tests against S3] skipped: ${inject('motoSkipReason')}`);
let fx: EdgeFixture;
let store: ObjectStore;
let key: string;

beforeAll(async () => {
  fx = await edgeFixture();
  store = await fx.newStore();
  await publishTestModel(store, PROJECT, fx.trained, { version: 'v1' });
  ({ key } = await createKey(store, PROJECT));
});

describe('local Node entry over real HTTP', () => {
  let server: LocalServer;
  beforeAll(async () => {
    server = await startLocalServer({
      config: { store: { kind: 'fs', root: '/unused' }, logLevel: 'silent', app: { requireKeys: true } },
      port: 0,
      host: '127.0.0.1',
      overrides: { store, backbone: async () => fx.backbone, logger: silentLogger },
    });
  });
  afterAll(() => server.close());

  const url = (path: string) => `${server.url}${path}`;
  const auth = () => ({ authorization: `Bearer ${key}` });

  it('classifies a JPEG body and a multipart upload', async () => {
    const raw = await fetch(url(`/v1/projects/${PROJECT}/predict?topK=1`), {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg', ...auth() },
      body: aPhoto(),
    });
    expect(raw.status).toBe(200);
    const body = (await raw.json()) as { predictions: { label: string }[] };
    expect(body.predictions).toHaveLength(1);
    const form = new FormData();
    form.append('image', new Blob([aPhoto()], { type: 'image/jpeg' }), 'a.jpg');
    const multipart = await fetch(url(`/v1/projects/${PROJECT}/predict?topK=1`), {
      method: 'POST',
      headers: auth(),
      body: form,
    });
    expect(multipart.status).toBe(200);
    expect(await multipart.json()).toMatchObject({ predictions: body.predictions });
  });

  it('answers 401, 404, 415 and 413 as JSON errors', async () => {
    const post = (path: string, init: RequestInit) => fetch(url(path), { method: 'POST', ...init });
    const noKey = await post(`/v1/projects/${PROJECT}/predict`, {
      headers: { 'content-type': 'image/jpeg' },
      body: aPhoto(),
    });
    expect([noKey.status, ((await noKey.json()) as { error: { code: string } }).error.code]).toEqual([
      401,
      'missing_api_key',
    ]);
    const unknown = await fetch(url('/v1/elsewhere'));
    expect(unknown.status).toBe(404);
    const text = await post(`/v1/projects/${PROJECT}/predict`, {
      headers: { 'content-type': 'text/plain', ...auth() },
      body: 'hi',
    });
    expect(text.status).toBe(415);
    const big = await post(`/v1/projects/${PROJECT}/predict`, {
      headers: { 'content-type': 'image/jpeg', ...auth() },
      body: new Uint8Array(7 * 1024 * 1024),
    });
    expect(big.status).toBe(413);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('payload_too_large');
  });

  it('refuses a chunked body once it passes the limit', async () => {
    let sent = 0;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 256 * 1024;
        if (sent > 64 * 1024 * 1024) controller.close();
        else controller.enqueue(new Uint8Array(256 * 1024));
      },
    });
    const res = await fetch(url(`/v1/projects/${PROJECT}/predict`), {
      method: 'POST',
      headers: { 'content-type': 'image/jpeg', ...auth() },
      body,
      duplex: 'half',
    } as RequestInit).catch((e: unknown) => e);
    // The server may close the socket while the client is still sending; either way it did not read 64 MB.
    if (res instanceof Response) expect(res.status).toBe(413);
    expect(sent).toBeLessThan(64 * 1024 * 1024);
  });

  it('says at start-up when API keys are not required', async () => {
    const lines: string[] = [];
    const open = await startLocalServer({
      config: { store: { kind: 'fs', root: '/unused' }, logLevel: 'info', app: { requireKeys: false } },
      port: 0,
      host: '127.0.0.1',
      overrides: {
        store,
        backbone: async () => fx.backbone,
        logger: createJsonLogger({ write: (l) => lines.push(l) }),
      },
    });
    try {
      expect(lines.some((l) => /API keys are not required/.test(l))).toBe(true);
      const res = await fetch(`${open.url}/v1/projects/${PROJECT}/model`);
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });
});

/** An origin-request event as CloudFront sends it, body included (base64). */
function cloudFrontEvent(options: {
  uri: string;
  querystring?: string;
  body?: Uint8Array;
  truncated?: boolean;
  headers?: Record<string, string>;
  originHeaders?: Record<string, string>;
}): CloudFrontEdgeEvent {
  const cf = (h: Record<string, string>) =>
    Object.fromEntries(Object.entries(h).map(([k, v]) => [k.toLowerCase(), [{ key: k, value: v }]]));
  return {
    Records: [
      {
        cf: {
          config: {
            distributionDomainName: 'd111111abcdef8.cloudfront.net',
            distributionId: 'EDFDVBD6EXAMPLE',
            eventType: 'origin-request',
            requestId: '4TyzHTaYWb1GX1qTfsHhEqV6HUDd_BzoBZnwfnvQc_1oF26ClkoUSEQ==',
          },
          request: {
            clientIp: '203.0.113.178',
            headers: cf({
              Host: 'd111111abcdef8.cloudfront.net',
              'User-Agent': 'Amazon CloudFront',
              Via: '2.0 2afae0d44e2540f472c0635ab62c232b.cloudfront.net (CloudFront)',
              ...options.headers,
            }),
            method: 'POST',
            querystring: options.querystring ?? '',
            uri: options.uri,
            ...(options.body
              ? {
                  body: {
                    action: 'read-only',
                    encoding: 'base64',
                    inputTruncated: options.truncated ?? false,
                    data: Buffer.from(options.body).toString('base64'),
                  },
                }
              : {}),
            origin: {
              custom: {
                customHeaders: cf(options.originHeaders ?? {}),
                domainName: 'origin.example.com',
                keepaliveTimeout: 5,
                path: '',
                port: 443,
                protocol: 'https',
                readTimeout: 30,
                sslProtocols: ['TLSv1.2'],
              },
            },
          },
        },
      },
    ],
  };
}

describe('Lambda@Edge entry', () => {
  const origin = { 'X-Headstart-Bucket': 'headstart-data-123', 'X-Headstart-Region': 'eu-west-1' };

  it('predicts from a base64 body, taking bucket and region from the origin custom headers', async () => {
    const seen: StoreConfig[] = [];
    const handler = createLambdaEdgeHandler({
      createStore: (config) => {
        seen.push(config);
        return store;
      },
      overrides: { backbone: async () => fx.backbone, logger: silentLogger },
    });
    const event = cloudFrontEvent({
      uri: `/v1/projects/${PROJECT}/predict`,
      querystring: 'topK=2',
      body: aPhoto(),
      headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${key}` },
      originHeaders: origin,
    });
    const result = (await handler(event)) as {
      status: string;
      headers: Record<string, unknown>;
      body: string;
    };
    expect(result.status).toBe('200');
    expect(result.headers['content-type']).toEqual([{ key: 'content-type', value: 'application/json' }]);
    const body = JSON.parse(result.body) as { predictions: unknown[]; model: { version: string } };
    expect(body.predictions).toHaveLength(2);
    expect(body.model.version).toBe('v1');
    expect(seen).toEqual([{ kind: 's3', bucket: 'headstart-data-123', region: 'eu-west-1' }]);
    await handler(event);
    expect(seen).toHaveLength(1);
  });

  it("answers 413 when CloudFront truncated the body at Lambda@Edge's 1 MB", async () => {
    const handler = createLambdaEdgeHandler({
      baked: { bucket: 'baked-bucket', region: 'us-east-1' },
      createStore: () => store,
      overrides: { backbone: async () => fx.backbone, logger: silentLogger },
    });
    const result = (await handler(
      cloudFrontEvent({
        uri: `/v1/projects/${PROJECT}/predict`,
        body: aPhoto().subarray(0, 1000),
        truncated: true,
        headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${key}` },
      }),
    )) as { status: string; body: string };
    expect(result.status).toBe('413');
    const { error } = JSON.parse(result.body) as { error: { code: string; message: string } };
    expect(error.code).toBe('payload_too_large');
    expect(error.message).toMatch(/1 MB/);
  });

  it('finishes the review write before handing back the response, since Lambda freezes after it', async () => {
    const project = 'reviewed';
    await publishTestModel(store, project, fx.trained, { version: 'v1' });
    await store.put(layout.projectSettings(project), JSON.stringify({ review: { enabled: true, below: 1 } }));
    const created = await createKey(store, project);
    const handler = createLambdaEdgeHandler({
      baked: { bucket: 'baked-bucket', region: 'us-east-1' },
      createStore: () => store,
      overrides: { backbone: async () => fx.backbone, logger: silentLogger },
    });
    const result = (await handler(
      cloudFrontEvent({
        uri: `/v1/projects/${project}/predict`,
        body: aPhoto(),
        headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${created.key}` },
      }),
    )) as { status: string; body: string };
    expect(result.status, result.body).toBe('200');
    const { items } = await listReviewItems(store, project);
    expect(items.map((i) => i.id)).toEqual([createHash('sha256').update(aPhoto()).digest('hex')]);
  });

  it('answers 503 naming the fix when neither the build nor the origin names a bucket', async () => {
    const handler = createLambdaEdgeHandler({ overrides: { logger: silentLogger } });
    const result = (await handler(cloudFrontEvent({ uri: `/v1/projects/${PROJECT}/model` }))) as {
      status: string;
      body: string;
    };
    expect(result.status).toBe('503');
    expect(JSON.parse(result.body)).toMatchObject({ error: { code: 'not_configured' } });
    expect(result.body).toContain('x-headstart-bucket');
  });
});

describe('Function URL entry', () => {
  it('serves from the environment configuration, loading the backbone from the store', async () => {
    const home = mkdtempSync(join(tmpdir(), 'headstart-fnurl-'));
    const homeStore = createFsStore({ root: localStoreRoot(home) });
    await installBackbone(homeStore, fx.pkg);
    await publishTestModel(homeStore, PROJECT, fx.trained, { version: 'v7' });
    const created = await createKey(homeStore, PROJECT);
    vi.stubEnv('HEADSTART_HOME', home);
    vi.stubEnv('HEADSTART_BUCKET', '');
    try {
      const { handler } = await import('./function-url.js');
      const path = `/v1/projects/${PROJECT}/predict`;
      const res = await handler({
        version: '2.0',
        routeKey: '$default',
        rawPath: path,
        rawQueryString: 'topK=1',
        headers: {
          'content-type': 'image/jpeg',
          host: 'abcdefg.lambda-url.us-east-1.on.aws',
          authorization: `Bearer ${created.key}`,
        },
        requestContext: {
          accountId: 'anonymous',
          apiId: 'abcdefg',
          domainName: 'abcdefg.lambda-url.us-east-1.on.aws',
          domainPrefix: 'abcdefg',
          http: { method: 'POST', path, protocol: 'HTTP/1.1', sourceIp: '203.0.113.9', userAgent: 'test' },
          requestId: 'c6af9ac6-7b61-11e6-9a41-93e8deadbeef',
          routeKey: '$default',
          stage: '$default',
          time: '12/Mar/2025:19:03:58 +0000',
          timeEpoch: 1741806238000,
        },
        body: Buffer.from(aPhoto()).toString('base64'),
        isBase64Encoded: true,
      } as unknown as Parameters<typeof handler>[0]);
      expect(res.statusCode).toBe(200);
      expect(JSON.parse(res.body)).toMatchObject({ model: { version: 'v7' } });
    } finally {
      vi.unstubAllEnvs();
    }
  });
});

describe.skipIf(!motoEndpoint)('Lambda@Edge entry against S3 (moto_server)', () => {
  it('loads the backbone and head from the bucket and polls the pointer with conditional GETs', async () => {
    const bucket = `headstart-edge-${Date.now().toString(36)}`;
    const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };
    const admin = new S3Client({
      region: 'us-east-1',
      endpoint: motoEndpoint,
      forcePathStyle: true,
      credentials,
    });
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
    admin.destroy();
    const s3 = createS3Store({
      bucket,
      endpoint: motoEndpoint,
      forcePathStyle: true,
      region: 'us-east-1',
      credentials,
    });
    await installBackbone(s3, fx.pkg);
    await publishTestModel(s3, PROJECT, fx.trained, { version: 'v1' });
    const created = await createKey(s3, PROJECT);
    const counted = instrument(s3);
    const clock = manualClock();
    const handler = createLambdaEdgeHandler({
      createStore: () => counted.store,
      overrides: { logger: silentLogger, clock: clock.now },
    });
    const event = () =>
      cloudFrontEvent({
        uri: `/v1/projects/${PROJECT}/predict`,
        body: aPhoto(),
        headers: { 'Content-Type': 'image/jpeg', Authorization: `Bearer ${created.key}` },
        originHeaders: { 'X-Headstart-Bucket': bucket, 'X-Headstart-Region': 'us-east-1' },
      });
    const version = async () => {
      const r = (await handler(event())) as { status: string; body: string };
      expect(r.status, r.body).toBe('200');
      return (JSON.parse(r.body) as { model: { version: string } }).model.version;
    };
    expect(await version()).toBe('v1');
    counted.reset();
    clock.advance(31_000);
    expect(await version()).toBe('v1');
    // One 304 from S3 for the pointer; the key verdict expired too, so its record is read again.
    expect(counted.calls.getIfChanged).toBe(1);
    expect(counted.gets.filter((k) => !k.startsWith('keys/'))).toEqual([]);
    await publishTestModel(s3, PROJECT, fx.trained, { version: 'v2' });
    clock.advance(31_000);
    expect(await version()).toBe('v2');
  });
});
