import {
  DeleteObjectCommand,
  GetObjectCommand,
  GetObjectTaggingCommand,
  HeadBucketCommand,
  HeadObjectCommand,
  ListObjectsV2Command,
  type ListObjectsV2CommandOutput,
  PutObjectCommand,
  PutObjectTaggingCommand,
  S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { z } from 'zod';
import type {
  ListOptions,
  NotModified,
  ObjectInfo,
  ObjectStore,
  PutOptions,
  StoredObject,
} from './object-store.js';
import {
  InvalidOptionsError,
  NoSuchKeyError,
  PreconditionFailedError,
  StoreError,
  StoreUnavailableError,
} from './store-errors.js';
import {
  assertValidKey,
  assertValidPrefix,
  DEFAULT_CONTENT_TYPE,
  encodeTagging,
  parsePutOptions,
  parseTags,
  toBytes,
} from './store-input.js';

export interface S3StoreOptions {
  bucket: string;
  /** A ready client (custom retries, timeouts, credentials). Without one the store creates its own. */
  client?: S3Client;
  /** S3-compatible endpoint such as `http://127.0.0.1:5000`; with `client` it only feeds `description`. */
  endpoint?: string;
  region?: string;
  /** Path-style URLs (`endpoint/bucket/key`), which most S3-compatible servers need. */
  forcePathStyle?: boolean;
  /** Explicit credentials for a created client; otherwise the SDK's default provider chain applies. */
  credentials?: S3ClientConfig['credentials'];
}

const optionsSchema = z.object({
  bucket: z.string().min(3).max(63),
  client: z.instanceof(S3Client).optional(),
  endpoint: z.string().url().optional(),
  region: z.string().min(1).optional(),
  forcePathStyle: z.boolean().optional(),
  credentials: z.unknown().optional(),
});

/**
 * An object store over one S3 bucket (AWS or S3-compatible). Keys go to S3 verbatim. Conditional writes are
 * S3's own (`If-None-Match: *`, `If-Match`), so they are atomic on AWS whatever the number of writers.
 *
 * Checked against moto_server 5.2.1 (the test server): it honours `If-None-Match: *` and `If-Match` on
 * PutObject (412 PreconditionFailed, 404 NoSuchKey for If-Match on a missing key, as AWS) and `If-None-Match`
 * on GetObject (304). But its PutObject checks the condition and then stores without a lock in a threaded
 * server, so under concurrency it does not promise what AWS does (no race was seen in hundreds of tries); it
 * never answers 409 ConditionalRequestConflict; it drops metadata names containing '_' and trims or mangles
 * values, which is why metadata is validated before it leaves (see object-store.ts). Tags: it reads the
 * `x-amz-tagging` header of PutObject (URL-encoded, checked with spaces, `/`, `+`, `=`, `@`, `:`), implements
 * PutObjectTagging (404 NoSuchKey for a missing key, as AWS; it refuses an empty tag set) and GetObjectTagging,
 * and keeps ETag and LastModified across a PutObjectTagging, as AWS does.
 */
export function createS3Store(options: S3StoreOptions): ObjectStore {
  const parsed = optionsSchema.safeParse(options);
  if (!parsed.success) {
    throw new InvalidOptionsError(
      `invalid S3 store options: ${parsed.error.issues.map((i) => i.message).join('; ')}`,
    );
  }
  return new S3ObjectStore(clientFor(options), options.bucket, options.endpoint);
}

function clientFor(options: S3StoreOptions): S3Client {
  return (
    options.client ??
    new S3Client({
      region: options.region ?? 'us-east-1',
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      ...(options.forcePathStyle !== undefined ? { forcePathStyle: options.forcePathStyle } : {}),
      ...(options.credentials ? { credentials: options.credentials } : {}),
      // The default (WHEN_SUPPORTED) adds CRC32 trailers that several S3-compatible servers reject or ignore.
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    })
  );
}

/**
 * Fails with `StoreError` code `no_such_bucket` (saying how to create it) when the bucket does not exist, so a
 * long-running command can refuse at once instead of after minutes of work; other failures are translated as
 * for any request (`StoreUnavailableError` for an unreachable endpoint).
 */
export async function assertBucketExists(options: S3StoreOptions): Promise<void> {
  const client = clientFor(options);
  try {
    await client.send(new HeadBucketCommand({ Bucket: options.bucket }));
  } catch (err) {
    if (statusOf(err) === 404 || (err as AwsLikeError | undefined)?.name === 'NotFound') {
      const endpoint = options.endpoint ? ` --endpoint-url ${options.endpoint}` : '';
      throw new StoreError(
        'no_such_bucket',
        `bucket ${options.bucket} does not exist${options.endpoint ? ` on ${options.endpoint}` : ''}; create it with: aws s3 mb s3://${options.bucket}${endpoint}`,
        { cause: err },
      );
    }
    throw translate(err, `check bucket ${options.bucket}`);
  } finally {
    if (!options.client) client.destroy();
  }
}

interface AwsLikeError {
  name?: string;
  code?: string;
  message?: string;
  $metadata?: { httpStatusCode?: number };
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
]);
const UNAVAILABLE_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'ThrottlingException',
]);

function statusOf(err: unknown): number | undefined {
  return (err as AwsLikeError | undefined)?.$metadata?.httpStatusCode;
}

function isMissing(err: unknown): boolean {
  const name = (err as AwsLikeError | undefined)?.name;
  return name === 'NoSuchKey' || name === 'NotFound' || statusOf(err) === 404;
}

/** A missing object, as opposed to a missing bucket (also a 404), for calls that must not swallow the latter. */
function isMissingObject(err: unknown): boolean {
  return isMissing(err) && (err as AwsLikeError | undefined)?.name !== 'NoSuchBucket';
}

function translate(err: unknown, what: string): Error {
  const e = (err ?? {}) as AwsLikeError;
  const status = statusOf(err);
  const label = `${e.name ?? 'Error'}${status ? ` (HTTP ${status})` : ''}: ${e.message ?? String(err)}`;
  if (status === 412 || e.name === 'PreconditionFailed') {
    return new PreconditionFailedError(`${what}: precondition failed`, { cause: err });
  }
  // S3 answers 409 when another conditional write to the same key raced ours; ours lost either way.
  if (e.name === 'ConditionalRequestConflict') {
    return new PreconditionFailedError(`${what}: a concurrent conditional write won`, { cause: err });
  }
  if (
    (status !== undefined && (status >= 500 || status === 429)) ||
    (e.name !== undefined && UNAVAILABLE_NAMES.has(e.name)) ||
    (e.code !== undefined && NETWORK_CODES.has(e.code))
  ) {
    return new StoreUnavailableError(`${what}: S3 unavailable: ${label}`, { cause: err });
  }
  return new StoreError('s3_request_failed', `${what}: ${label}`, { cause: err });
}

function quoted(etag: string): string {
  return etag.startsWith('"') || etag.startsWith('W/') ? etag : `"${etag}"`;
}

class S3ObjectStore implements ObjectStore {
  readonly description: string;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
    endpoint: string | undefined,
  ) {
    this.description = endpoint ? `s3://${bucket} (${endpoint})` : `s3://${bucket}`;
  }

  async get(key: string): Promise<StoredObject | undefined> {
    assertValidKey(key);
    return this.fetch(key, undefined) as Promise<StoredObject | undefined>;
  }

  async getIfChanged(key: string, etag: string): Promise<StoredObject | NotModified | undefined> {
    assertValidKey(key);
    if (typeof etag !== 'string' || etag.length === 0)
      throw new InvalidOptionsError('getIfChanged needs an etag');
    return this.fetch(key, quoted(etag));
  }

  private async fetch(
    key: string,
    ifNoneMatch: string | undefined,
  ): Promise<StoredObject | NotModified | undefined> {
    const what = `get ${this.description}/${key}`;
    try {
      const res = await this.client.send(
        new GetObjectCommand({
          Bucket: this.bucket,
          Key: key,
          ...(ifNoneMatch ? { IfNoneMatch: ifNoneMatch } : {}),
        }),
      );
      const body = res.Body ? await res.Body.transformToByteArray() : new Uint8Array();
      return {
        key,
        body,
        etag: res.ETag ?? '',
        contentType: res.ContentType ?? DEFAULT_CONTENT_TYPE,
        metadata: { ...res.Metadata },
        lastModified: res.LastModified ?? new Date(0),
      };
    } catch (err) {
      // The SDK surfaces a 304 as an error whose name varies ('NotModified' on AWS, 'Unknown' on moto), so the
      // status code is the reliable signal.
      if (ifNoneMatch && (statusOf(err) === 304 || (err as AwsLikeError).name === 'NotModified')) {
        return { notModified: true, etag: ifNoneMatch };
      }
      if (isMissing(err)) return undefined;
      throw translate(err, what);
    }
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    assertValidKey(key);
    try {
      const res = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: key }));
      return {
        key,
        size: res.ContentLength ?? 0,
        etag: res.ETag ?? '',
        lastModified: res.LastModified ?? new Date(0),
      };
    } catch (err) {
      if (isMissing(err)) return undefined;
      throw translate(err, `head ${this.description}/${key}`);
    }
  }

  async put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }> {
    assertValidKey(key);
    const opts = parsePutOptions(options);
    const bytes = toBytes(body);
    try {
      const res = await this.client.send(
        new PutObjectCommand({
          Bucket: this.bucket,
          Key: key,
          Body: bytes,
          ContentLength: bytes.byteLength,
          ContentType: opts.contentType,
          Metadata: opts.metadata,
          ...(Object.keys(opts.tags).length > 0 ? { Tagging: encodeTagging(opts.tags) } : {}),
          ...(opts.ifNoneMatch ? { IfNoneMatch: opts.ifNoneMatch } : {}),
          ...(opts.ifMatch ? { IfMatch: quoted(opts.ifMatch) } : {}),
        }),
      );
      return { etag: res.ETag ?? '' };
    } catch (err) {
      // If-Match on a missing key is answered 404 NoSuchKey (AWS and moto alike): no object has that ETag.
      if (opts.ifMatch && isMissing(err)) {
        throw new PreconditionFailedError(
          `put ${this.description}/${key}: no object to match ${opts.ifMatch}`,
          {
            cause: err,
          },
        );
      }
      throw translate(err, `put ${this.description}/${key}`);
    }
  }

  async putTags(key: string, tags: Record<string, string>): Promise<void> {
    assertValidKey(key);
    const valid = parseTags(tags);
    const what = `tag ${this.description}/${key}`;
    try {
      await this.client.send(
        new PutObjectTaggingCommand({
          Bucket: this.bucket,
          Key: key,
          Tagging: { TagSet: Object.entries(valid).map(([Key, Value]) => ({ Key, Value })) },
        }),
      );
    } catch (err) {
      if (isMissingObject(err)) throw new NoSuchKeyError(`${what}: no such object`, { cause: err });
      throw translate(err, what);
    }
  }

  async getTags(key: string): Promise<Record<string, string> | undefined> {
    assertValidKey(key);
    try {
      const res = await this.client.send(new GetObjectTaggingCommand({ Bucket: this.bucket, Key: key }));
      return Object.fromEntries((res.TagSet ?? []).map((t) => [t.Key ?? '', t.Value ?? '']));
    } catch (err) {
      if (isMissingObject(err)) return undefined;
      throw translate(err, `get tags ${this.description}/${key}`);
    }
  }

  async delete(key: string): Promise<void> {
    assertValidKey(key);
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: key }));
    } catch (err) {
      // S3 already answers 204 for a missing key; a 404 here would come from a stricter S3-compatible server.
      if ((err as AwsLikeError).name === 'NoSuchKey') return;
      throw translate(err, `delete ${this.description}/${key}`);
    }
  }

  async *list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    assertValidPrefix(prefix);
    if (options?.startAfter !== undefined) assertValidPrefix(options.startAfter, 'startAfter');
    let continuationToken: string | undefined;
    do {
      let page: ListObjectsV2CommandOutput;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({
            Bucket: this.bucket,
            Prefix: prefix,
            ...(continuationToken
              ? { ContinuationToken: continuationToken }
              : options?.startAfter
                ? { StartAfter: options.startAfter }
                : {}),
          }),
        );
      } catch (err) {
        throw translate(err, `list ${this.description}/${prefix}`);
      }
      for (const item of page.Contents ?? []) {
        if (item.Key === undefined) continue;
        yield {
          key: item.Key,
          size: item.Size ?? 0,
          etag: item.ETag ?? '',
          lastModified: item.LastModified ?? new Date(0),
        };
      }
      continuationToken = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (continuationToken);
  }
}
