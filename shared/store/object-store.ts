/**
 * The storage seam between Headstart and wherever its bytes live: S3 (or an S3-compatible server) in the cloud,
 * a directory on one machine. Semantics follow S3 so code tested against one store behaves the same on the other.
 *
 * Keys are at most 1,024 UTF-8 bytes with no control characters. Metadata names are lowercase `[a-z0-9.-]`
 * (S3 lowercases names, and moto/werkzeug and common proxies drop header names with underscores); values are
 * printable ASCII without leading or trailing spaces (S3 carries them in HTTP headers, which trim and mangle
 * the rest). The whole metadata map is at most 2 KB, S3's limit. Object tags follow S3's limits: at most 10,
 * keys of 1-128 and values of up to 256 characters, letters, digits, spaces and `+ - = . _ : / @`, no `aws:`
 * prefix. Stores reject anything else with `InvalidOptionsError` instead of silently storing something different
 * from what was asked.
 */
export interface StoredObject {
  key: string;
  body: Uint8Array;
  /** Quoted hex MD5 of the body for single-part uploads, exactly as S3 reports it. */
  etag: string;
  /** Always present: stores write `application/octet-stream` when the caller gave none, as S3 does. */
  contentType: string;
  metadata: Record<string, string>;
  lastModified: Date;
}

export interface ObjectInfo {
  key: string;
  size: number;
  etag: string;
  lastModified: Date;
}

/** What `getIfChanged` resolves to when the caller's copy is current: no body was transferred. */
export interface NotModified {
  notModified: true;
  etag: string;
}

export interface PutOptions {
  contentType?: string;
  metadata?: Record<string, string>;
  /** `'*'`: create only if no object exists under the key, else `PreconditionFailedError`. */
  ifNoneMatch?: '*';
  /** Replace only if the current object's ETag equals this one (quotes optional), else `PreconditionFailedError`. */
  ifMatch?: string;
  /**
   * Object tags (S3's, which lifecycle rules can filter on), stored with the object. A put without tags stores an
   * object without tags, as S3 does, even when it replaces a tagged one.
   */
  tags?: Record<string, string>;
}

export interface ListOptions {
  /** Only keys strictly after this one in byte order, like S3's StartAfter. */
  startAfter?: string;
}

export interface ObjectStore {
  /** Where the objects live, for logs and error messages: `s3://bucket (endpoint)` or `file:///path`. */
  readonly description: string;
  /** The object, or undefined when nothing is stored under the key. */
  get(key: string): Promise<StoredObject | undefined>;
  /**
   * Conditional GET: when `etag` is still the object's ETag, resolves to `{ notModified: true, etag }` without
   * transferring the body; otherwise to the current object (or undefined when it is gone). A separate method
   * rather than an option on `get` so plain `get` callers never have to narrow a not-modified result away.
   */
  getIfChanged(key: string, etag: string): Promise<StoredObject | NotModified | undefined>;
  head(key: string): Promise<ObjectInfo | undefined>;
  put(key: string, body: Uint8Array | string, options?: PutOptions): Promise<{ etag: string }>;
  /**
   * Replaces the tags of an existing object; body, ETag, metadata and last-modified time stay as they are.
   * Never creates an object: a missing key fails with `NoSuchKeyError` (S3's PutObjectTagging).
   */
  putTags(key: string, tags: Record<string, string>): Promise<void>;
  /** The object's tags (`{}` when it has none), or undefined when nothing is stored under the key. */
  getTags(key: string): Promise<Record<string, string> | undefined>;
  /** Succeeds whether or not the object existed. */
  delete(key: string): Promise<void>;
  /** Objects whose key starts with `prefix`, in UTF-8 byte order of keys like S3; pages internally. */
  list(prefix: string, options?: ListOptions): AsyncIterable<ObjectInfo>;
}

export function isNotModified(result: StoredObject | NotModified | undefined): result is NotModified {
  return result !== undefined && 'notModified' in result && result.notModified === true;
}
