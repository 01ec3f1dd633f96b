import { randomBytes } from 'node:crypto';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, inject, it, vi } from 'vitest';
import { isNotModified } from './object-store.js';
import { describeObjectStoreConformance } from './object-store-conformance.js';
import { createS3Store } from './s3-store.js';
import {
  NoSuchKeyError,
  PreconditionFailedError,
  StoreError,
  StoreUnavailableError,
} from './store-errors.js';

const endpoint = inject('motoEndpoint');
if (!endpoint) console.warn(`[s3-store tests] skipped: ${inject('motoSkipReason')}`);

const credentials = { accessKeyId: 'test', secretAccessKey: 'test' };

describe.skipIf(!endpoint)('S3 store against moto_server', () => {
  describeObjectStoreConformance(
    'S3 store',
    async () => {
      const bucket = `headstart-store-${randomBytes(6).toString('hex')}`;
      const admin = new S3Client({ region: 'us-east-1', endpoint, forcePathStyle: true, credentials });
      await admin.send(new CreateBucketCommand({ Bucket: bucket }));
      admin.destroy();
      return createS3Store({ bucket, endpoint, forcePathStyle: true, region: 'us-east-1', credentials });
    },
    // S3 decides concurrent conditional writes atomically; moto_server, which these tests run against, does not.
    { atomicConcurrentWrites: false },
  );

  it('describes itself with bucket and endpoint', () => {
    const store = createS3Store({ bucket: 'some-bucket', endpoint, forcePathStyle: true, credentials });
    expect(store.description).toBe(`s3://some-bucket (${endpoint})`);
  });

  it('reports a missing bucket as a StoreError that is not "unavailable"', async () => {
    const store = createS3Store({
      bucket: 'no-such-bucket-here',
      endpoint,
      forcePathStyle: true,
      credentials,
    });
    const err = await store.put('k', 'v').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreError);
    expect(err).not.toBeInstanceOf(StoreUnavailableError);
    expect((err as StoreError).message).toContain('NoSuchBucket');
    // A missing bucket is not a missing object, for tagging either.
    const tagErr = await store.putTags('k', { a: 'b' }).catch((e: unknown) => e);
    expect(tagErr).toBeInstanceOf(StoreError);
    expect(tagErr).not.toBeInstanceOf(NoSuchKeyError);
  });
});

describe('S3 store', () => {
  it('maps an unreachable endpoint to StoreUnavailableError', async () => {
    const client = new S3Client({
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9',
      forcePathStyle: true,
      credentials,
      maxAttempts: 1,
      requestHandler: { connectionTimeout: 1000, requestTimeout: 2000 },
    });
    const store = createS3Store({ bucket: 'any-bucket', client, endpoint: 'http://127.0.0.1:9' });
    await expect(store.get('k')).rejects.toBeInstanceOf(StoreUnavailableError);
    await expect(store.put('k', 'v')).rejects.toMatchObject({ code: 'store_unavailable' });
    const listing = (async () => {
      for await (const _ of store.list('')) break;
    })();
    await expect(listing).rejects.toBeInstanceOf(StoreUnavailableError);
  });

  // moto never answers 409 ConditionalRequestConflict, 503 SlowDown or AWS's 'NotModified'-named 304, so these
  // mappings are checked against the error shapes the SDK produces for them.
  function storeFailingWith(error: Error & { $metadata: { httpStatusCode: number } }) {
    const client = new S3Client({ region: 'us-east-1', credentials });
    vi.spyOn(client, 'send').mockRejectedValue(error as never);
    return createS3Store({ bucket: 'any-bucket', client });
  }
  function sdkError(name: string, status: number) {
    return Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status } });
  }

  it('maps 409 ConditionalRequestConflict to PreconditionFailedError', async () => {
    const store = storeFailingWith(sdkError('ConditionalRequestConflict', 409));
    await expect(store.put('k', 'v', { ifNoneMatch: '*' })).rejects.toBeInstanceOf(PreconditionFailedError);
  });

  it('maps 503 SlowDown to StoreUnavailableError, keeping the cause', async () => {
    const cause = sdkError('SlowDown', 503);
    const err = await storeFailingWith(cause)
      .put('k', 'v')
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(StoreUnavailableError);
    expect((err as Error).cause).toBe(cause);
  });

  it('treats a 304 named NotModified (as AWS sends it) as not-modified', async () => {
    const store = storeFailingWith(sdkError('NotModified', 304));
    expect(isNotModified(await store.getIfChanged('k', 'abc'))).toBe(true);
  });
});
